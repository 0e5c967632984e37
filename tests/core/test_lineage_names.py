"""Every name of a dataset, and composites recorded under the operator the user called.

* a dataset reused under a second name lists both names (``Result.names``, ``Result.name``
  the one just given, ``catalog ls``, the STAC and PROV exports);
* a composite's output is recorded under the composite (operator, version, parameters,
  the composite's own inputs), its sub-steps beneath it with their operators and
  datasets; the record's inputs stay what the output was computed from, and the hidden
  intermediates keep their own sub-step records; lineage, STAC and PROV show the
  composite and its sub-steps; a record without sub-steps (as written before) still
  exports;
* ``minjiang plan`` plans for the executor ``run`` uses by default (Ray, the machine's
  CPUs as workers) without starting Ray.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
from minjiang.core import ArrayOutput, Composite, Input, Map, Operator, SubStep, hookimpl
from minjiang.core.cli import app
from minjiang.core.testing import make_dataset, tmp_plugin
from pydantic import BaseModel, ConfigDict
from typer.testing import CliRunner

runner = CliRunner(env={"COLUMNS": "250"})


# ---------------------------------------------------------------- names
def test_a_reused_dataset_lists_every_name(runtime) -> None:
    values = np.arange(24.0).reshape(4, 6)
    first = make_dataset(runtime, {"v": values}, dims=("y", "x"), name="lab/first")
    second = make_dataset(runtime, {"v": values}, dims=("y", "x"), name="lab/second")
    assert second.reused and second.id == first.id
    assert second.names == ["lab/first", "lab/second"]
    assert second.name == "lab/second"  # the name this run gave it
    assert first.names == ["lab/first", "lab/second"]  # the record stays as published
    assert runtime.catalog.get(first.id).names == ["lab/first"]

    # a name moved to another dataset is no longer one of this one's
    other = make_dataset(runtime, {"v": values + 1}, dims=("y", "x"), name="lab/second")
    assert runtime.catalog.names_of(first.id) == ["lab/first"]
    assert runtime.catalog.names_of(other.id) == ["lab/second"]

    out = runner.invoke(app, ["catalog", "ls", "--store", str(runtime.store.url)])
    assert out.exit_code == 0, out.output
    row = next(line for line in out.output.splitlines() if first.id in line)
    assert "lab/first" in row and "lab/second" not in row
    assert "lab/second" in next(line for line in out.output.splitlines() if other.id in line)

    make_dataset(runtime, {"v": values}, dims=("y", "x"), name="lab/third")
    out = runner.invoke(app, ["catalog", "ls", "--store", str(runtime.store.url)])
    row = next(line for line in out.output.splitlines() if first.id in line)
    assert "lab/first, lab/third" in row
    stac = runtime.catalog.to_stac(first.id)
    assert stac["properties"]["minjiang:names"] == ["lab/first", "lab/third"]
    prov = runtime.catalog.to_prov(first.id)
    assert prov["entity"][f"mjdata:{first.id}"]["minjiang:names"] == "lab/first lab/third"


def test_an_operator_result_reused_under_a_second_name(runtime) -> None:
    src = make_dataset(runtime, {"v": np.ones((5, 5))}, dims=("y", "x"))
    params = {"dims": ["y"], "stat": "sum"}
    a = runtime.run("array.reduce", inputs={"x": f"{src.id}:v"}, params=params, name="lab/sum")
    b = runtime.run("array.reduce", inputs={"x": f"{src.id}:v"}, params=params, name="lab/total")
    assert b.reused and (a.id, b.name, b.names) == (b.id, "lab/total", ["lab/sum", "lab/total"])
    assert [r.id for r in runtime.catalog.list(name="lab/total")] == [a.id]


# ---------------------------------------------------------------- composites
class AffineParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    scale: float = 2.0
    offset: float = 1.0


class FactorParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    k: float


def times_kernel(arrays, params, ctx):
    return {"y": arrays["x"] * params.k}


def plus_kernel(arrays, params, ctx):
    return {"y": arrays["x"] + params.k}


TIMES = Operator(
    name="lintest.times",
    version="3",
    inputs=(Input("x"),),
    outputs=(ArrayOutput("y"),),
    pattern=Map(times_kernel),
    params=FactorParams,
)
PLUS = Operator(
    name="lintest.plus",
    version="5",
    inputs=(Input("x"),),
    outputs=(ArrayOutput("y"),),
    pattern=Map(plus_kernel),
    params=FactorParams,
)


def _affine(params: AffineParams, inputs):
    return [
        SubStep("scale", TIMES, {"x": "x"}, {"k": params.scale}),
        SubStep("shift", PLUS, {"x": "scale"}, {"k": params.offset}),
    ]


AFFINE = Operator(
    name="lintest.affine",
    version="7",
    inputs=(Input("x"),),
    outputs=(ArrayOutput("y"),),
    pattern=Composite(_affine),
    params=AffineParams,
)


class LineagePlugin:
    @hookimpl
    def minjiang_register_operators(self):
        return [TIMES, PLUS, AFFINE]


@pytest.fixture
def affine(runtime):
    values = np.arange(20.0).reshape(4, 5)
    src = make_dataset(runtime, {"v": values}, dims=("y", "x"), name="lab/src")
    with tmp_plugin(runtime, LineagePlugin(), name="lintest"):
        res = runtime.run(
            "lintest.affine",
            inputs={"x": f"{src.id}:v"},
            params={"scale": 3.0, "offset": 0.5},
            name="lab/affine",
        )
        yield runtime, src, res, values


def test_a_composite_is_recorded_under_the_operator_called(affine) -> None:
    runtime, src, res, values = affine
    np.testing.assert_array_equal(res.to_xarray()["y"].values, values * 3.0 + 0.5)
    rec = res.record
    assert rec.producer["operator"] == "lintest.affine" and rec.producer["version"] == "7"
    assert rec.producer["params"] == {"scale": 3.0, "offset": 0.5}
    assert rec.producer["pattern"] == "composite"
    assert rec.producer["inputs"] == {"x": src.id}  # as the user gave them
    steps = rec.producer["steps"]
    assert [(s["id"], s["operator"], s["version"]) for s in steps] == [
        ("scale", "lintest.times", "3"),
        ("shift", "lintest.plus", "5"),
    ]
    assert steps[0]["params"] == {"k": 3.0} and steps[1]["params"] == {"k": 0.5}
    assert steps[0]["inputs"] == {"x": src.id} and steps[1]["inputs"] == {"x": steps[0]["dataset"]}
    assert steps[-1]["dataset"] == res.id
    # the record's inputs are what the output was computed from: the last sub-step's
    assert rec.inputs == {"x": steps[0]["dataset"]}
    # the hidden intermediate keeps its own sub-step record
    hidden = runtime.catalog.get(steps[0]["dataset"])
    assert hidden.hidden and hidden.producer["operator"] == "lintest.times"
    assert hidden.inputs == {"x": src.id}
    # the plugin is that of the composite; the dataset's attributes name it too
    assert rec.producer["plugin"]["name"] == "lintest"
    assert res.to_xarray().attrs["minjiang_operator"] == "lintest.affine"
    # listings show the composite; lineage walks through its sub-steps beneath it
    assert [r.id for r in runtime.catalog.list(operator="lintest.affine")] == [res.id]
    assert runtime.catalog.list(operator="lintest.plus") == []
    graph = runtime.catalog.lineage(res.id)
    assert sorted(graph.edges) == sorted(
        [(src.id, steps[0]["dataset"], "x"), (steps[0]["dataset"], res.id, "x")]
    )
    assert graph.nodes[res.id].operator == "lintest.affine"
    assert graph.nodes[steps[0]["dataset"]].operator == "lintest.times"


def test_a_composite_in_the_exports_and_the_cli(affine) -> None:
    runtime, src, res, _ = affine
    stac = runtime.catalog.to_stac(res.id)["properties"]
    assert stac["processing:lineage"] == (
        "Computed by lintest.affine 7 (sub-steps scale: lintest.times 3; shift: lintest.plus 5)"
        f" from x={src.id}."
    )
    assert [s["operator"] for s in stac["processing:expression"]["expression"]["steps"]] == [
        "lintest.times",
        "lintest.plus",
    ]
    prov = runtime.catalog.to_prov(res.id)
    act = prov["activity"][f"mjrun:{res.id}"]
    assert act["prov:label"] == "lintest.affine"
    assert act["minjiang:steps"] == f"mjrun:{res.id}.scale mjrun:{res.id}.shift"
    sub = prov["activity"][f"mjrun:{res.id}.scale"]
    assert sub["prov:label"] == "lintest.times" and sub["minjiang:partOf"] == f"mjrun:{res.id}"

    store = str(runtime.store.url)
    out = runner.invoke(app, ["catalog", "ls", "--store", store])
    row = next(line for line in out.output.splitlines() if res.id in line)
    assert "lintest.affine" in row and "lab/affine" in row
    out = runner.invoke(app, ["catalog", "show", "lab/affine", "--store", store])
    shown = json.loads(out.output)
    assert [s["id"] for s in shown["producer"]["steps"]] == ["scale", "shift"]


def test_records_without_sub_steps_still_export(runtime) -> None:
    # a record as written before composites listed their sub-steps
    src = make_dataset(runtime, {"v": np.ones((3, 3))}, dims=("y", "x"))
    out = runtime.run("array.reduce", inputs={"x": f"{src.id}:v"}, params={"dims": ["y"]})
    assert "steps" not in out.record.producer
    assert "sub-steps" not in runtime.catalog.to_stac(out.id)["properties"]["processing:lineage"]
    act = runtime.catalog.to_prov(out.id)["activity"][f"mjrun:{out.id}"]
    assert "minjiang:steps" not in act


# ---------------------------------------------------------------- plan == run
def test_plan_plans_for_the_executor_run_uses_without_starting_ray(
    runtime, tmp_path, monkeypatch
) -> None:
    make_dataset(runtime, {"v": np.ones((64, 48))}, dims=("y", "x"), chunks=8, name="lab/cube")
    pipe = tmp_path / "p.yaml"
    pipe.write_text(
        "steps:\n  - id: g\n    operator: array.gaussian\n"
        "    inputs: {x: 'lab/cube:v'}\n    params: {sigma: 1}\n"
    )
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    from minjiang.core._executors import running_cluster

    def plan(*args: str) -> str:
        out = runner.invoke(app, ["plan", str(pipe), "--store", str(runtime.store.url), *args])
        assert out.exit_code == 0, out.output
        return out.output

    def ray_running() -> bool:
        ray = sys.modules.get("ray")
        return ray is not None and ray.is_initialized()

    assert "executor local · 1 workers" in plan("--executor", "local")
    if ray_running():  # the session's Ray: plan and run both use it as it is
        ray = sys.modules["ray"]
        assert f"executor ray · {int(ray.cluster_resources()['CPU'])} workers" in plan()
        return
    # the local Ray `run --new-cluster` would start: its CPUs, and Ray is not started
    assert "executor ray · 3 workers" in plan("--new-cluster", "--num-cpus", "3")
    assert not ray_running()
    if running_cluster() is None:  # else plan and run would both join that cluster
        assert f"executor ray · {os.cpu_count()} workers" in plan()
        assert not ray_running()

"""Block coordinates are decoded only for tasks that will run.

A task carries its block's coordinate values (``TaskSpec.coords``: what a kernel's
``ctx.coords`` holds). The provisional plan that fixes a step's layout and the plan of
a reused step are never run, so their tasks carry none and planning them decodes no
coordinates; the rest of their plan is the same.
"""

from __future__ import annotations

import numpy as np
import pytest
from minjiang.core._planner import StepPlanner
from minjiang.core._runtime import Runtime
from minjiang.storage import open_dataset_info, read_coord_values

from tests._data import ingest_array

PIPE = {
    "steps": [
        {
            "id": "smooth",
            "operator": "array.gaussian",
            "inputs": {"x": "t/cube"},
            "params": {"sigma": {"time": 0, "y": 1.0, "x": 1.0}},
        }
    ]
}


@pytest.fixture
def cube(runtime, tmp_path, rng):
    times = np.arange("2001-01-01", "2001-01-21", dtype="datetime64[D]").astype("datetime64[ns]")
    coords = {"time": times, "y": np.linspace(10.0, 20.0, 6), "x": np.linspace(-5.0, 5.0, 8)}
    return ingest_array(
        runtime,
        tmp_path,
        "t/cube",
        rng.normal(size=(20, 6, 8)),
        ("time", "y", "x"),
        (5, 6, 8),
        coords=coords,
    )


def _count_block_contexts(monkeypatch) -> list[int]:
    calls: list[int] = []
    original = StepPlanner._block_ctx

    def counted(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(StepPlanner, "_block_ctx", counted)
    return calls


def _tasks(plan):
    return [t for s in plan.steps[-1].stages for t in s.tasks]


def test_tasks_that_run_carry_their_block_coordinates(runtime, cube, monkeypatch) -> None:
    calls = _count_block_contexts(monkeypatch)
    small = Runtime(store=runtime.store.url, executor="local", memory_budget="64KiB")
    try:
        plan = small.plan(PIPE)
    finally:
        small.close()
    tasks = _tasks(plan)
    assert not plan.steps[-1].reused and len(tasks) > 1
    # one block context per task of the final plan: none for the provisional one
    assert len(calls) == len(tasks)
    info = open_dataset_info(runtime.store, cube.id)
    decoded = {d: read_coord_values(runtime.store, info.coords[d]) for d in ("time", "y", "x")}
    assert decoded["time"].dtype == np.dtype("datetime64[ns]")
    for t in tasks:
        assert set(t.coords) == {"time", "y", "x"}
        for dim, sl in zip(t.dims, t.region, strict=True):
            got, want = t.coords[dim], decoded[dim][sl]
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want, strict=True)


def test_a_reused_step_is_planned_whole_without_decoding_coordinates(
    runtime, cube, monkeypatch
) -> None:
    computed = runtime.plan(PIPE)
    runtime.run_pipeline(PIPE)
    calls = _count_block_contexts(monkeypatch)
    decoded: list[str] = []
    original = Runtime.coord_values

    def counted(self, info):
        decoded.append(info.name)
        return original(self, info)

    monkeypatch.setattr(Runtime, "coord_values", counted)
    fresh = Runtime(store=runtime.store.url, executor="local", memory_budget="2GiB")
    try:
        plan = fresh.plan(PIPE)
    finally:
        fresh.close()
    step, before = plan.steps[-1], computed.steps[-1]
    assert step.reused
    assert (calls, decoded) == ([], [])
    assert step.n_tasks == before.n_tasks
    assert step.layout() == before.layout()
    assert [s.name for s in step.stages] == [s.name for s in before.stages]
    assert [(t.key, t.region, t.memory) for t in _tasks(plan)] == [
        (t.key, t.region, t.memory) for t in _tasks(computed)
    ]
    assert all(t.coords == {} for t in _tasks(plan))
    assert all(t.coords for t in _tasks(computed))

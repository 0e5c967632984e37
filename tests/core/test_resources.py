"""A step's resources reach every task: Ray's request and numba's thread cap."""

from __future__ import annotations

import numpy as np
import pytest
from minjiang.core.errors import PipelineError

from tests._data import ingest_array
from tests.core import _resourceops


def _pipe(src, resources):
    return {
        "steps": [
            {
                "id": "p",
                "operator": "testlab.resource_probe",
                "inputs": {"x": src.id},
                "resources": resources,
            }
        ]
    }


def _tasks(plan):
    return [t for s in plan.steps[-1].stages for t in s.tasks]


def test_resources_reach_every_task_of_the_plan(runtime, tmp_path, rng) -> None:
    runtime.register(_resourceops, name="resourceops")
    src = ingest_array(runtime, tmp_path, "t/x", rng.normal(size=(8, 6)), ("y", "x"), (2, 6))
    plan = runtime.plan(_pipe(src, {"cpus": 2, "GPU": 0.5, "licence": 1, "memory": 1 << 30}))
    tasks = _tasks(plan)
    assert len(tasks) >= 1
    for t in tasks:
        assert t.cpus == 2.0
        assert t.gpus == 0.0  # a CPU step's tasks ask for no GPU
        assert t.resources == (("licence", 1.0),)
        assert t.memory >= 1 << 30
    plain = _tasks(runtime.plan(_pipe(src, {})))
    assert all(t.cpus == 1.0 and not t.resources for t in plain)


def test_the_thread_cap_follows_the_step_cpus(runtime, tmp_path, rng) -> None:
    import numba

    runtime.register(_resourceops, name="resourceops")
    src = ingest_array(runtime, tmp_path, "t/x", rng.normal(size=(8, 6)), ("y", "x"), (4, 6))
    want = min(2, numba.config.NUMBA_NUM_THREADS)
    res = runtime.run_pipeline(_pipe(src, {"CPU": 2})).output
    assert (res.to_xarray()["threads"].values == want).all()
    # resources are not part of what a dataset is: another input, or the result is reused
    other = ingest_array(runtime, tmp_path, "t/y", rng.normal(size=(8, 6)), ("y", "x"), (4, 6))
    res = runtime.run_pipeline(_pipe(other, {"CPU": 1})).output
    assert (res.to_xarray()["threads"].values == 1).all()


@pytest.mark.parametrize(
    ("resources", "match"),
    [
        ({"CPU": -1}, "CPU"),
        ({"CPU": 0}, "more than 0"),
        ({"GPU": float("inf")}, "finite"),
        ({"bad name!": 1}, "resource name"),
        ({"cpus": 1, "CPU": 2}, "twice"),
    ],
)
def test_bad_resources_are_refused_before_planning(runtime, resources, match) -> None:
    from minjiang.core._pipeline import Pipeline

    with pytest.raises((PipelineError, ValueError), match=match):
        Pipeline.model_validate(
            {"steps": [{"id": "a", "operator": "array.gaussian", "resources": resources}]}
        )


@pytest.mark.ray
def test_ray_tasks_ask_for_the_step_resources(ray_runtime, tmp_path, rng, monkeypatch) -> None:
    ray_runtime.register(_resourceops, name="resourceops")
    src = ingest_array(ray_runtime, tmp_path, "t/x", rng.normal(size=(8, 6)), ("y", "x"), (4, 6))
    executor = ray_runtime.executor
    real = executor._remote
    asked: list[dict] = []

    class Recording:
        def options(self, **opts):
            asked.append(dict(opts))
            # the session cluster has no custom resources: schedule without them
            return real.options(**{k: v for k, v in opts.items() if k != "resources"})

    monkeypatch.setattr(executor, "_remote", Recording())
    # the session Ray has no 'licence': let the tasks reach the stand-in, which strips it
    monkeypatch.setattr(executor, "_check_feasible", lambda tasks: None)
    res = ray_runtime.run_pipeline(_pipe(src, {"CPU": 2, "licence": 1})).output
    assert asked and all(o["num_cpus"] == 2.0 for o in asked)
    assert all(o["resources"] == {"licence": 1.0} for o in asked)
    ds = res.to_xarray()
    np.testing.assert_array_equal(ds["cpus"].values, 2.0)  # what Ray assigned each task
    assert (ds["threads"].values == 2).all()

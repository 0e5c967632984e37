"""The Ray executor: same answer as the local oracle, survives killed workers and drivers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from tests._data import ingest_array
from tests.core import _slowops

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[2]


def _values(shape=(40, 16), seed=3):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_ray_matches_local(ray_runtime, runtime, tmp_path) -> None:
    x = _values((30, 9, 11))
    params = {"sigma": 1.2}
    out = {}
    for rt in (ray_runtime, runtime):
        src = ingest_array(
            rt, tmp_path / rt.executor_name, "t/x", x, ("time", "y", "x"), (7, 4, 11)
        )
        out[rt.executor_name] = rt.run("array.gaussian", inputs={"x": src}, params=params)
    assert out["ray"].id == out["local"].id
    assert out["ray"].record.checksums == out["local"].record.checksums


@pytest.mark.slow
def test_killed_worker_is_retried_with_identical_output(ray_runtime, runtime, tmp_path) -> None:
    x = _values()
    marker = tmp_path / "crashed"
    params = {"delay": 0.0, "crash_marker": str(marker), "crash_task": 1}
    ray_runtime.register(_slowops, name="slowops")
    ray_runtime.memory_budget = runtime.memory_budget = 4096  # one chunk per task: several tasks
    src = ingest_array(ray_runtime, tmp_path, "t/x", x, ("y", "x"), (4, 16))
    res = ray_runtime.run("testlab.slow_affine", inputs={"x": src}, params=params)
    assert marker.exists(), "the worker was not killed"
    runtime.register(_slowops, name="slowops")
    src2 = ingest_array(runtime, tmp_path / "oracle", "t/x", x, ("y", "x"), (4, 16))
    oracle = runtime.run("testlab.slow_affine", inputs={"x": src2}, params=params)
    assert res.record.checksums == oracle.record.checksums
    np.testing.assert_array_equal(res.to_xarray()["y"].values, x * 2 + 1)


DRIVER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    import minjiang as mj
    from tests.core import _slowops
    rt = mj.Runtime(store={store!r}, executor="local", plugins=[_slowops], memory_budget="2KiB")
    rt.run("testlab.slow_affine", inputs={{"x": "t/x"}}, params={{"delay": 0.25}}, name="t/y")
""")


@pytest.mark.slow
def test_resume_after_killing_the_driver(tmp_path) -> None:
    from minjiang.core._runtime import Runtime

    x = _values()
    store = tmp_path / "store"
    rt = Runtime(store=store, executor="local", plugins=[_slowops], memory_budget="2KiB")
    ingest_array(rt, tmp_path, "t/x", x, ("y", "x"), (4, 16))
    plan = rt.plan(
        {
            "steps": [
                {
                    "id": "s",
                    "operator": "testlab.slow_affine",
                    "inputs": {"x": "t/x"},
                    "params": {"delay": 0.25},
                }
            ]
        }
    )
    step = plan.steps[-1]
    total = step.n_tasks
    assert total >= 6
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER.format(root=str(ROOT), store=str(store))],
        start_new_session=True,
    )
    tasks_dir = store / "datasets" / step.dataset_id / "_tasks"
    deadline = time.time() + 120
    while time.time() < deadline:
        done = list(tasks_dir.rglob("*.json")) if tasks_dir.exists() else []
        if len(done) >= total // 3:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not rt.catalog.exists(step.dataset_id), "the driver finished before it was killed"
    res = rt.run("testlab.slow_affine", inputs={"x": "t/x"}, params={"delay": 0.25}, name="t/y")
    kinds = [e.kind for e in rt.last_run_events]
    assert 0 < kinds.count("task_skipped") < total
    assert kinds.count("task_finished") == total - kinds.count("task_skipped")
    # identical to an undisturbed run
    clean = Runtime(store=tmp_path / "clean", executor="local", plugins=[_slowops])
    src = ingest_array(clean, tmp_path / "c", "t/x", x, ("y", "x"), (4, 16))
    ref = clean.run("testlab.slow_affine", inputs={"x": src}, params={"delay": 0.0})
    assert res.record.checksums == ref.record.checksums
    np.testing.assert_array_equal(res.to_xarray()["y"].values, x * 2 + 1)


def test_a_local_ray_leaves_the_builtin_print(tmp_path) -> None:
    """A driver that prints its workers' logs lets Ray swap builtins.print for its
    tqdm-safe function, after which numba cannot compile an @njit function that prints
    (porespy then fails to import); minjiang's Ray keeps the builtin."""
    import subprocess
    import sys

    code = (
        "import builtins, time, numba, ray\n"
        "import minjiang as mj\n"
        f"rt = mj.Runtime(store={str(tmp_path / 'store')!r}, executor='ray', num_cpus=1)\n"
        "rt.executor\n"
        "@ray.remote\n"
        "def talk():\n"
        "    print('a line of worker log for the driver')\n"
        "    return 1\n"
        "assert ray.get(talk.remote()) == 1\n"
        "time.sleep(3)  # the driver prints the worker's log batch\n"
        "rt.close()\n"
        "assert type(builtins.print).__name__ == 'builtin_function_or_method', builtins.print\n"
        "@numba.njit\n"
        "def f(x):\n"
        "    print('x')\n"
        "    return x + 1\n"
        "assert f(1) == 2\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")

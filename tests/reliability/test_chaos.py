"""Chaos: killed workers and killed drivers never change a result.

* Ray workers killed mid-task on N ∈ {2, 4, 8} tasks: Ray retries them, the dataset's
  chunk digests equal an undisturbed run's, and nothing but the committed arrays is
  left under the dataset.
* The driver SIGKILLed at seeded points — after the k-th finished task, and at three
  points of the commit (staged but not published, published but not named, named but
  not cleaned up): a re-run completes, with digests equal to an undisturbed run's, and
  recomputes no finished task beyond the executor's in-flight window.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from tests._data import ingest_array
from tests.reliability import _chaosops

ROOT = Path(__file__).resolve().parents[2]
SHAPE, CHUNKS = (48, 16), (4, 16)  # 12 chunks of 256 B
STAGING = ("_tasks", "_scratch", "_recompute")
STEP = {"id": "s", "operator": "chaoslab.affine", "inputs": {"x": "t/x"}}


def _values() -> np.ndarray:
    return np.random.default_rng(11).normal(size=SHAPE).astype(np.float32)


def _files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _leftovers(store: Path, prefix: str) -> list[str]:
    """Files under a committed dataset that are not part of it."""
    root = store / prefix
    out = []
    for rel in _files_under(root):
        parts = Path(rel).parts
        name = parts[-1]
        if parts[0] in STAGING or name.startswith(".tmp") or name.endswith(".partial"):
            out.append(rel)
    return out


def _n_tasks(rt, params: dict) -> int:
    """Tasks of the step as the runtime plans it (the budget makes it several)."""
    return rt.plan({"steps": [{**STEP, "params": params}]}).steps[-1].n_tasks


def _oracle(tmp_path: Path, params: dict) -> dict:
    import minjiang as mj

    with mj.Runtime(
        store=tmp_path / "oracle", executor="local", plugins=[_chaosops], memory_budget="2KiB"
    ) as rt:
        src = ingest_array(rt, tmp_path / "oracle-src", "t/x", _values(), ("y", "x"), CHUNKS)
        res = rt.run("chaoslab.affine", inputs={"x": src}, params=params)
        return dict(res.record.checksums)


@pytest.mark.chaos
@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize("kills", [2, 4, 8])
def test_killed_workers_give_identical_output(
    kills: int, ray_runtime, tmp_path: Path, reliability_report
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    ray_runtime.register(_chaosops, name="chaosops")
    ray_runtime.memory_budget = 4096  # one or two chunks per task: several tasks per worker
    src = ingest_array(ray_runtime, tmp_path / "src", "t/x", _values(), ("y", "x"), CHUNKS)
    n_tasks = _n_tasks(ray_runtime, {})
    assert n_tasks >= 8, f"the budget gives {n_tasks} tasks; the test needs at least 8"
    crash = tuple(sorted(random.Random(kills).sample(range(n_tasks), kills)))
    params = {"markers": str(markers), "crash_tasks": list(crash)}
    t0 = time.perf_counter()
    res = ray_runtime.run("chaoslab.affine", inputs={"x": src}, params=params)
    seconds = time.perf_counter() - t0
    killed = sorted(int(p.name.split("-")[1]) for p in markers.iterdir())
    assert killed == list(crash), "not every chosen worker was killed"
    assert res.record.timings["tasks"] == n_tasks
    store = Path(ray_runtime.store.url.removeprefix("file://"))
    leftovers = _leftovers(store, res.record.prefix)
    # every marker exists now, so the oracle runs the same params without dying
    same = res.record.checksums == _oracle(tmp_path, params)
    np.testing.assert_array_equal(res.to_xarray()["y"].values, _values() * 3.0 - 1.0)
    reliability_report(
        workers_killed=kills,
        tasks=n_tasks,
        identical_digests=same,
        leftover_files=len(leftovers),
        seconds=round(seconds, 2),
    )
    assert same
    assert leftovers == []


DRIVER = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {root!r})
    import minjiang as mj
    from minjiang.storage import Catalog
    from tests.reliability import _chaosops

    point = {point!r}

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    rt = mj.Runtime(store={store!r}, executor="local", plugins=[_chaosops], memory_budget="2KiB")
    if {k}:
        k = {k}
        seen = []

        def observe(event):
            if event.kind == "task_finished":
                seen.append(event)
                if len(seen) == k:
                    die()

        rt.subscribe(observe)
    else:
        publish, set_name = Catalog.publish, Catalog.set_name

        def patched_publish(self, record):
            if point == "commit:before_publish":
                die()
            won = publish(self, record)
            if point == "commit:after_publish":
                die()
            return won

        def patched_set_name(self, name, dataset_id):
            set_name(self, name, dataset_id)
            if point == "commit:after_name":
                die()

        Catalog.publish, Catalog.set_name = patched_publish, patched_set_name
    rt.run("chaoslab.affine", inputs={{"x": "t/x"}}, params={{"delay": 0.02}}, name="t/y")
    print("the driver was not killed", file=sys.stderr)
    sys.exit(3)
""")

# after the k-th finished task, for eight distinct k drawn (seeded) from the step's tasks
_TASK_POINTS = 8
POINTS = [f"task#{i}" for i in range(_TASK_POINTS)] + [
    "commit:before_publish",
    "commit:after_publish",
    "commit:after_name",
]


@pytest.mark.chaos
@pytest.mark.parametrize("point", POINTS)
def test_resume_after_the_driver_is_killed(point: str, tmp_path: Path, reliability_report) -> None:
    import minjiang as mj

    store = tmp_path / "store"
    params = {"delay": 0.02}
    with mj.Runtime(store=store, executor="local", plugins=[_chaosops], memory_budget="2KiB") as rt:
        ingest_array(rt, tmp_path, "t/x", _values(), ("y", "x"), CHUNKS)
        n_tasks = _n_tasks(rt, params)
    assert n_tasks > _TASK_POINTS, f"the budget gives {n_tasks} tasks; the test needs more"
    k = 0
    if point.startswith("task#"):
        ks = sorted(random.Random(20261206).sample(range(1, n_tasks), _TASK_POINTS))
        k = ks[int(point[len("task#") :])]
    driver = DRIVER.format(root=str(ROOT), store=str(store), point=point, k=k)
    proc = subprocess.run(
        [sys.executable, "-c", driver],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    finished_before_kill = k if k else n_tasks
    with mj.Runtime(store=store, executor="local", plugins=[_chaosops], memory_budget="2KiB") as rt:
        window = 1  # the local executor runs one task at a time
        res = rt.run("chaoslab.affine", inputs={"x": "t/x"}, params=params, name="t/y")
        kinds = [e.kind for e in rt.last_run_events]
        recomputed = kinds.count("task_finished")
        assert rt.catalog.resolve("t/y") == res.id
        leftovers = _leftovers(store, res.record.prefix)
    wasted = recomputed - (n_tasks - finished_before_kill)
    same = res.record.checksums == _oracle(tmp_path, params)
    reliability_report(
        kill_point=point if not k else f"task:{k}",
        tasks=n_tasks,
        finished_before_kill=finished_before_kill,
        recomputed=recomputed,
        recomputed_beyond_unfinished=wasted,
        window=window,
        identical_digests=same,
        leftover_files=len(leftovers),
    )
    assert same
    assert 0 <= wasted <= window
    np.testing.assert_array_equal(res.to_xarray()["y"].values, _values() * 3.0 - 1.0)
    assert leftovers == [], leftovers

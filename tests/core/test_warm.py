"""Warm workers without Ray: what makes one stale, its idle exit, which tasks it takes
(on a real cluster: tests/core/test_cluster_ray.py)."""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
import threading
import time

import pytest
from minjiang.core._warm import WarmPool, WarmWorker, pool_key


def test_a_changed_module_file_makes_the_worker_stale(tmp_path, monkeypatch) -> None:
    (tmp_path / "warm_probe_mod.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    worker = WarmWorker("k", [], idle_s=0)
    assert worker.changed() == ([], 0)
    importlib.import_module("warm_probe_mod")  # imported after the worker started
    try:
        assert worker.changed() == ([], 0)
        path = tmp_path / "warm_probe_mod.py"
        path.write_text("VALUE = 22\n")
        later = time.time() + 5
        os.utime(path, (later, later))
        assert worker.changed()[0] == [str(path)]
    finally:
        sys.modules.pop("warm_probe_mod", None)


def test_a_run_gathering_the_worker_makes_it_forget_cached_records(runtime, tmp_path) -> None:
    """Between two runs the store may be rebuilt: a worker reads records from its
    cache, so a run's check (``changed``) empties it."""
    import numpy as np
    from minjiang.storage._catalog import load_record

    from tests._data import ingest_array

    src = ingest_array(runtime, tmp_path, "w/x", np.zeros((2, 3)), ("y", "x"), (2, 3))
    worker = WarmWorker("k", [], idle_s=0)
    assert load_record(runtime.store, src.id) is not None  # now in this process's cache
    runtime.store.delete(f"catalog/records/{src.id}.json")
    assert load_record(runtime.store, src.id) is not None  # the cached copy
    worker.changed()
    assert load_record(runtime.store, src.id) is None  # read from the store again


def test_the_worker_takes_the_drivers_import_path(tmp_path) -> None:
    before = list(sys.path)
    try:
        WarmWorker("k", [str(tmp_path)], idle_s=0)
        assert sys.path[0] == str(tmp_path)
    finally:
        sys.path[:] = before


def test_an_idle_worker_exits_and_a_busy_one_does_not() -> None:
    ended = threading.Event()
    worker = WarmWorker("k", [], idle_s=0.2, exit=lambda code: ended.set())
    with worker._lock:
        worker._busy = 1  # a task running
    assert not ended.wait(0.8)
    with worker._lock:
        worker._busy = 0
        worker._last = time.monotonic()
    assert ended.wait(5)


def test_the_key_follows_the_import_path(monkeypatch, tmp_path) -> None:
    key = pool_key()
    assert pool_key() == key
    monkeypatch.syspath_prepend(str(tmp_path))
    assert pool_key() != key


@pytest.mark.parametrize(
    ("change", "taken"),
    [
        ({}, True),
        ({"gpus": 1.0}, False),
        ({"resources": (("licence", 1.0),)}, False),
        ({"cpus": 2.0}, False),
    ],
)
def test_only_one_cpu_tasks_without_resources_go_to_warm_workers(change, taken) -> None:
    @dataclasses.dataclass(frozen=True)
    class Spec:
        cpus: float = 1.0
        gpus: float = 0.0
        resources: tuple = ()

    assert WarmPool.takes(Spec(**change)) is taken  # type: ignore[arg-type]

"""Every run event kind the hookspecs advertise is emitted, with its fields."""

from __future__ import annotations

import typing

import pytest
from minjiang.core._events import EventKind

from tests._data import ingest_array


def test_a_run_emits_every_advertised_event(runtime, tmp_path, rng, monkeypatch) -> None:
    from minjiang.plugins.array import _operators as ops

    seen: list = []
    runtime.subscribe(seen.append)
    src = ingest_array(runtime, tmp_path, "t/x", rng.normal(size=(8, 6)), ("y", "x"), (4, 6))
    params = {"dims": ["y"], "stat": "mean"}
    runtime.run("array.reduce", inputs={"x": src}, params=params)
    runtime.run("array.reduce", inputs={"x": src}, params=params)  # reused

    def broken(state, p, ctx):
        raise RuntimeError("kernel failed on purpose")

    monkeypatch.setattr(ops, "reduce_finalize", broken)
    with pytest.raises(Exception, match="on purpose"):
        runtime.run("array.reduce", inputs={"x": src}, params={"dims": ["x"]})
    kinds = {e.kind for e in seen}
    assert any("on purpose" in e.message for e in seen if e.kind == "run_failed")
    # task_skipped needs an interrupted run: tests/core/test_ray.py resumes one
    assert set(typing.get_args(EventKind)) - kinds == {"task_skipped"}
    planned = [e for e in seen if e.kind == "step_planned"]
    assert {e.data["status"] for e in planned} == {"run", "reuse"}
    computed = next(
        e for e in planned if e.operator == "array.reduce" and e.data["status"] == "run"
    )
    assert computed.tasks_total >= 1 and computed.dataset_id and computed.data["backend"] == "cpu"

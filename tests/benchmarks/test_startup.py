"""The start-up benchmark reads what it reports from a real run: the step's row of
the results table and the task timings of its catalog record."""

from __future__ import annotations

import os

from benchmarks.startup import PIPELINE, _computed, _minjiang, _task_timings


def test_a_computed_step_is_found_with_its_task_timings(tmp_path) -> None:
    from minjiang.core._demo import make_demo_inputs

    cube, _ = make_demo_inputs(tmp_path / "data", years=1, ny=8, nx=8)
    pipe = tmp_path / "p.yaml"
    pipe.write_text(PIPELINE)
    env = dict(os.environ, COLUMNS="200")
    args = ["run", str(pipe), "--store", str(tmp_path / "s"), "-i", f"cube={cube}"]
    _, out = _minjiang(env, *args, "--executor", "local")
    found = _computed(out, "p90")
    assert found is not None, out
    seconds, dataset_id = found
    assert seconds > 0 and len(dataset_id) == 32
    timings = _task_timings(tmp_path / "s", dataset_id)
    assert set(timings) == {"read_s", "kernel_s", "write_s"}
    assert all(v >= 0 for v in timings.values()) and timings["kernel_s"] > 0
    _, again = _minjiang(env, *args, "--executor", "local")
    assert _computed(again, "p90") is None  # reused: not a computed row

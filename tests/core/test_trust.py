"""Two trust invariants the runtime holds: a content id fixes the layout (and the
partition of a split fold), and a committed dataset is never rewritten (a recompute
is staged apart and compared)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests._data import ingest_array


def _chunks(plan) -> dict[str, tuple[int, ...]]:
    (step,) = [s for s in plan.steps if hasattr(s, "stages")]
    return {a.name: a.chunks for a in step.arrays.values() if not a.scratch}


def test_one_id_never_has_two_layouts(runtime, tmp_path, rng) -> None:
    """A full-axis step's pencils depend on the budget: two budgets that give two
    layouts give two ids; a map's layout does not depend on it, so its id is shared."""
    from minjiang.core._runtime import Runtime

    x = rng.normal(size=(60, 12, 16))
    src = ingest_array(runtime, tmp_path, "test/slabs", x, ("time", "y", "x"), (5, 12, 16))
    quantile = {
        "steps": [
            {"id": "q", "operator": "array.quantile", "inputs": {"x": src.id}, "params": {"q": 0.5}}
        ]
    }
    smooth = {
        "steps": [
            {
                "id": "g",
                "operator": "array.gaussian",
                "inputs": {"x": src.id},
                "params": {"sigma": 1},
            }
        ]
    }
    seen: dict[str, dict[str, tuple[int, ...]]] = {}
    ids = {"q": set(), "g": set()}
    for budget in ("1GiB", "200KiB", "320KiB"):
        rt = Runtime(store=runtime.store.url, executor="local", memory_budget=budget)
        for key, pipe in (("q", quantile), ("g", smooth)):
            plan = rt.plan(pipe)
            did, layout = plan.outputs[key], _chunks(plan)
            assert seen.setdefault(did, layout) == layout, f"{did} planned with two layouts"
            ids[key].add(did)
    assert len(ids["q"]) > 1  # the budgets did change the pencils, hence the id
    assert len(ids["g"]) == 1  # the same layout under every budget: one id, reusable


@pytest.mark.parametrize("op", ["array.reduce", "array.label_stats"])
def test_a_fold_split_another_way_is_another_dataset(runtime, tmp_path, rng, op) -> None:
    """A reduction in one pass and split into partial states, or an aggregate over
    other blocks, adds its floating-point values in another order: other last bits.
    The partition is part of the id, so a recompute under another budget is another
    dataset, never a false "output changed"; under the same budget it is the same
    dataset, recomputed bit for bit."""
    from minjiang.core._runtime import Runtime

    x = rng.normal(size=(96, 24, 32))
    src = ingest_array(runtime, tmp_path, f"test/fold-{op}", x, ("t", "y", "x"), (8, 12, 16))
    if op == "array.reduce":
        inputs, params = {"x": src}, {"dims": ["t"], "stat": "mean"}
    else:
        lab = rng.integers(0, 5, size=x.shape)
        labels = ingest_array(runtime, tmp_path, "test/fold-l", lab, ("t", "y", "x"), (8, 12, 16))
        inputs, params = {"values": src, "labels": labels}, {}
    rt = Runtime(store=runtime.store.url, executor="local", memory_budget="64MiB")
    whole = rt.run(op, inputs=inputs, params=params)
    rt.memory_budget = 160 << 10
    split = rt.run(op, inputs=inputs, params=params, reuse=False)
    assert split.id != whole.id
    again = rt.run(op, inputs=inputs, params=params, reuse=False)  # compared, not rewritten
    assert again.id == split.id
    if op == "array.reduce":
        a, b = (r.to_xarray()["mean"].values for r in (whole, split))
        np.testing.assert_allclose(a, b, rtol=1e-12)
        assert not np.array_equal(a, b)  # the split did change last bits
    else:
        a, b = (r.table("stats").to_pydict()["sum"] for r in (whole, split))
        np.testing.assert_allclose(a, b, rtol=1e-12)
        assert a != b


def _recompute(runtime, src, monkeypatch, change: bool):
    from minjiang.plugins.array import _operators as ops

    params = {"dims": ["time"], "stat": "mean"}
    first = runtime.run("array.reduce", inputs={"x": src}, params=params)
    group = Path(runtime.store.local_path(f"datasets/{first.id}"))
    record = Path(runtime.store.local_path(f"catalog/records/{first.id}.json"))
    before = {p: p.read_bytes() for p in [record, *sorted(group.rglob("*"))] if p.is_file()}
    if change:  # the kernel's output changes, its version does not
        real = ops.reduce_finalize
        monkeypatch.setattr(
            ops,
            "reduce_finalize",
            lambda state, p, ctx: {k: v + 1 for k, v in real(state, p, ctx).items()},
        )
    return first, group, before, params


def test_no_reuse_with_unchanged_output_leaves_the_dataset_alone(
    runtime, tmp_path, rng, monkeypatch
) -> None:
    x = rng.normal(size=(20, 12, 10))
    src = ingest_array(runtime, tmp_path, "test/c", x, ("time", "y", "x"), (5, 6, 10))
    first, group, before, params = _recompute(runtime, src, monkeypatch, change=False)
    again = runtime.run("array.reduce", inputs={"x": src}, params=params, reuse=False)
    assert again.id == first.id
    after = {p: p.read_bytes() for p in [*before, *sorted(group.rglob("*"))] if p.is_file()}
    assert after == before  # nothing committed was touched, no staging left behind
    assert "task_finished" in [e.kind for e in runtime.last_run_events]


def test_no_reuse_with_changed_output_is_a_typed_error(runtime, tmp_path, rng, monkeypatch) -> None:
    from minjiang.core.errors import ExecutionError
    from minjiang.errors import OutputChangedError

    x = rng.normal(size=(20, 12, 10))
    src = ingest_array(runtime, tmp_path, "test/c", x, ("time", "y", "x"), (5, 6, 10))
    first, group, before, params = _recompute(runtime, src, monkeypatch, change=True)
    with pytest.raises(OutputChangedError, match=r"array\.reduce.*version") as err:
        runtime.run("array.reduce", inputs={"x": src}, params=params, reuse=False)
    assert isinstance(err.value, ExecutionError)
    after = {p: p.read_bytes() for p in [*before, *sorted(group.rglob("*"))] if p.is_file()}
    assert after == before  # committed chunks, metadata and record untouched; staging removed
    np.testing.assert_allclose(runtime.open(first.id)["mean"].values, x.mean(axis=0))


def _committed_bytes(runtime, did: str) -> dict[Path, tuple[int, bytes]]:
    """Every committed file's inode and bytes (a rewrite, even of equal bytes, is a
    new file: both writers replace files by renaming a temporary one)."""
    group = Path(runtime.store.local_path(f"datasets/{did}"))
    record = Path(runtime.store.local_path(f"catalog/records/{did}.json"))
    return {
        p: (p.stat().st_ino, p.read_bytes())
        for p in [record, *sorted(group.rglob("*"))]
        if p.is_file()
    }


def test_ingest_with_no_reuse_leaves_the_committed_dataset_alone(runtime, tmp_path, rng) -> None:
    x = rng.normal(size=(20, 12))
    first = ingest_array(runtime, tmp_path, "test/i", x, ("y", "x"), (5, 6))
    before = _committed_bytes(runtime, first.id)
    path = tmp_path / "test_i.zarr"
    again = runtime.ingest("array.zarr", [path], name="test/i", reuse=False)
    assert again.id == first.id
    assert _committed_bytes(runtime, first.id) == before  # nothing rewritten, nothing left
    np.testing.assert_array_equal(runtime.open(first.id)["data"].values, x)


def test_ingest_with_no_reuse_and_other_data_is_a_typed_error(
    runtime, tmp_path, rng, monkeypatch
) -> None:
    """A reader that gives other values for the same sources (the id hashes the
    sources, so only a changed reader can) is refused; the committed bytes stay."""
    from minjiang.core.errors import ExecutionError, OutputChangedError
    from minjiang.plugins.array._operators import ZarrReader

    x = rng.normal(size=(20, 12))
    first = ingest_array(runtime, tmp_path, "test/i", x, ("y", "x"), (5, 6))
    before = _committed_bytes(runtime, first.id)
    real = ZarrReader.open
    monkeypatch.setattr(ZarrReader, "open", lambda self, files, p: real(self, files, p) * 2)
    with pytest.raises(OutputChangedError, match=r"array\.zarr.*version") as err:
        runtime.ingest("array.zarr", [tmp_path / "test_i.zarr"], reuse=False)
    assert isinstance(err.value, ExecutionError)
    assert first.id in str(err.value) and "data/c/" in str(err.value)
    assert _committed_bytes(runtime, first.id) == before
    np.testing.assert_array_equal(runtime.open(first.id)["data"].values, x)

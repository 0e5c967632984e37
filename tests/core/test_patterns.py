"""The chunk patterns: one registry, typed payloads, declared reduction states."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
from minjiang.core.errors import ContractError, ExecutionError

from tests._data import ingest_array
from tests.core import _mapops, _stateops


def test_every_per_step_pattern_has_one_planner_and_typed_payloads(runtime, tmp_path, rng):
    from minjiang.core import Aggregate, Composite, FullAxis, Map, Reduce
    from minjiang.core._patterns import EXPANDERS, PLANNERS
    from minjiang.core._planner import TaskSpec

    assert set(PLANNERS) == {Map, Reduce, FullAxis, Aggregate}
    assert set(EXPANDERS) == {Composite}
    assert not {"kind", "extra"} & {f.name for f in dataclasses.fields(TaskSpec)}
    src = ingest_array(runtime, tmp_path, "t/x", rng.normal(size=(8, 6)), ("y", "x"), (2, 6))
    plan = runtime.plan(
        {
            "steps": [
                {
                    "id": "g",
                    "operator": "array.gaussian",
                    "inputs": {"x": src.id},
                    "params": {"sigma": 1},
                }
            ]
        }
    )
    for task in (t for s in plan.steps[-1].stages for t in s.tasks):
        assert dataclasses.is_dataclass(task.payload)
        with pytest.raises(dataclasses.FrozenInstanceError):
            task.payload.kernel = "x:y"  # type: ignore[misc]


def _cube(runtime, tmp_path, rng):
    # a column spanning t does not fit the budget below: the reduction is partitioned
    x = rng.normal(size=(48, 40, 30))
    x[rng.random(x.shape) < 0.1] = np.nan
    return x, ingest_array(runtime, tmp_path, "t/c", x, ("t", "y", "x"), (4, 40, 30))


def test_a_state_with_a_trailing_dim_is_partitioned_and_combined(runtime, tmp_path, rng):
    from minjiang.core._runtime import Runtime

    rt = Runtime(store=runtime.store.url, executor="local", memory_budget="400KiB")
    rt.register(_stateops, name="stateops")
    x, src = _cube(rt, tmp_path, rng)
    plan = rt.plan(
        {"steps": [{"id": "m", "operator": "testlab.state_mean", "inputs": {"x": src.id}}]}
    )
    step = plan.steps[-1]
    assert [s.name for s in step.stages] == ["partial", "combine"]
    state = step.arrays["state_acc"]
    parts = state.shape[0]
    assert parts > 1 and state.scratch and state.shape == (parts, 40, 30, 2)
    assert state.chunks[0] == 1 and state.chunks[-1] == 2
    res = rt.run("testlab.state_mean", inputs={"x": src})
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(
            res.to_xarray()["mean"].values, np.nanmean(x, axis=0), rtol=1e-12
        )


@pytest.mark.parametrize(
    ("stat", "arrays"),
    [("mean", ["count", "mean"]), ("min", ["min"]), ("var", ["count", "mean", "m2"])],
)
def test_array_reduce_partials_hold_only_what_the_statistic_needs(
    runtime, tmp_path, rng, stat, arrays
):
    """A mean's partials are a count and a mean (16 bytes a cell), not the five arrays
    of the full moments state; the combined result is the same as NumPy's."""
    from minjiang.core._runtime import Runtime

    rt = Runtime(store=runtime.store.url, executor="local", memory_budget="500KiB")
    x, src = _cube(rt, tmp_path, rng)
    step = rt.plan(_one_step("array.reduce", {"x": src}, {"dims": ["t"], "stat": stat})).steps[-1]
    assert [s.name for s in step.stages] == ["partial", "combine"]
    assert sorted(n for n in step.arrays if n.startswith("state_")) == sorted(
        f"state_{a}" for a in arrays
    )
    for a in arrays:
        spec = step.arrays[f"state_{a}"]
        assert spec.scratch and spec.shape[1:] == (40, 30) and np.dtype(spec.dtype).itemsize == 8
    res = rt.run("array.reduce", inputs={"x": src}, params={"dims": ["t"], "stat": stat})
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = {"mean": np.nanmean, "min": np.nanmin, "var": np.nanvar}[stat](x, axis=0)
    np.testing.assert_allclose(res.to_xarray()[stat].values, want, rtol=1e-12)


def test_a_partial_works_its_block_in_steps_along_the_reduced_dims(
    runtime, tmp_path, rng, monkeypatch
):
    """A partial task reads one chunk along the reduced dim at a time and folds each
    step's state into its own with ``combine``: the same answer, memory projected from
    a step, and a state that views the step's buffer is not overwritten by the next."""
    from minjiang.core import _blocks
    from minjiang.core._runtime import Runtime

    rt = Runtime(store=runtime.store.url, executor="local", memory_budget="700KiB")
    rt.register(_stateops, name="stateops")
    x, src = _cube(rt, tmp_path, rng)
    steps = _one_step("array.reduce", {"x": src}, {"dims": ["t"], "stat": "var"})
    monkeypatch.setattr(_blocks, "STREAM_STEP_BYTES", 1 << 40)
    whole = rt.plan(steps).steps[-1].stages[0]
    monkeypatch.setattr(_blocks, "STREAM_STEP_BYTES", 0)
    stage = rt.plan(steps).steps[-1].stages[0]
    assert stage.name == "partial"
    assert {t.payload.step for t in stage.tasks} == {(4, 40, 30)}
    assert max(t.region[0].stop - t.region[0].start for t in stage.tasks) > 4
    assert max(t.memory for t in stage.tasks) < max(t.memory for t in whole.tasks)
    events = []
    rt.subscribe(events.append)
    res = rt.run("array.reduce", inputs={"x": src}, params={"dims": ["t"], "stat": "var"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        np.testing.assert_allclose(res.to_xarray()["var"].values, np.nanvar(x, axis=0), rtol=1e-12)
    partials = [e.task for e in events if e.kind == "task_finished" and "partial/" in e.task.key]
    assert partials and all(r.cpu["read"] > 0 for r in partials)
    plan = rt.plan(
        {"steps": [{"id": "f", "operator": "testlab.state_first", "inputs": {"x": src.id}}]}
    )
    assert plan.steps[-1].stages[0].tasks[0].payload.step == (4, 40, 30)
    first = rt.run("testlab.state_first", inputs={"x": src})
    np.testing.assert_array_equal(first.to_xarray()["first"].values, x[0])


def _streamed_cube(rt, tmp_path, rng):
    x = rng.normal(size=(12, 40, 30))
    t = np.arange(12) * 0.5 + 3.0
    src = ingest_array(rt, tmp_path, "t/m", x, ("t", "y", "x"), (3, 8, 10), coords={"t": t})
    return x, t, src


def _one_step(op, inputs, params=None):
    step = {"id": "m", "operator": op, "inputs": {k: v.id for k, v in inputs.items()}}
    return {"steps": [{**step, "params": params or {}}]}


def test_one_task_over_the_whole_array_has_the_runs_whole_budget(
    runtime, tmp_path, rng, monkeypatch
):
    """A step planned as one task over the whole array runs with nothing beside it:
    it may use the run's whole budget, not a worker's share; over that it is refused
    with the budget it had. A composite asks ``plan.fits`` and takes that task where
    it fits, another path where it does not (two-argument expands keep working)."""
    from minjiang.core._runtime import Runtime
    from minjiang.core.errors import MemoryBudgetError

    x = rng.normal(size=(16, 20, 24))  # 61,440 bytes in, as many out: 8 copies ~ 1 MB
    rt = Runtime(store=runtime.store.url, executor="local", memory_budget="1500KiB")
    rt.register(_mapops, name="mapops")
    monkeypatch.setattr(rt.executor, "workers", lambda: 2)  # planned as for two workers
    src = ingest_array(rt, tmp_path, "t/w", x, ("t", "y", "x"), (4, 20, 24))
    step = rt.plan(_one_step("testlab.centred", {"x": src})).steps[-1]
    (stage,) = step.stages
    assert stage.name == "full_axis" and len(stage.tasks) == 1
    assert 750 * 1024 < step.task_memory <= 1500 * 1024  # over a worker's share
    plan = rt.plan(_one_step("testlab.whole_or_blocks", {"x": src}))
    assert [s.operator.name for s in plan.steps] == ["testlab.centred"]

    rt.memory_budget = 600 * 1024
    with pytest.raises(MemoryBudgetError, match=r"its one task .* the memory budget is 600.0 KiB"):
        rt.plan(_one_step("testlab.centred", {"x": src}))
    plan = rt.plan(_one_step("testlab.whole_or_blocks", {"x": src}))
    assert [s.operator.name for s in plan.steps] == ["testlab.same"]
    assert len(plan.steps[-1].stages[0].tasks) > 1
    rt.close()


def test_a_map_without_halo_works_its_block_a_step_at_a_time(runtime, tmp_path, rng, monkeypatch):
    """With steps of one chunk, a task reads, computes and writes one chunk at a time:
    its memory is projected from a step, each step's kernel sees that step's region and
    coordinates, and the step's reads and writes count as reading and writing."""
    from minjiang.core import _blocks
    from minjiang.core._runtime import Runtime

    monkeypatch.setattr(_blocks, "STREAM_STEP_BYTES", 0)
    rt = Runtime(store=runtime.store.url, executor="local")
    rt.register(_mapops, name="mapops")
    x, t, src = _streamed_cube(rt, tmp_path, rng)
    stage = rt.plan(_one_step("testlab.located", {"x": src})).steps[-1].stages[0]
    assert stage.tasks[0].payload.step == (3, 8, 10)
    assert any(
        math.prod(s.stop - s.start for s in task.region) > 3 * 8 * 10 for task in stage.tasks
    )
    monkeypatch.setattr(_blocks, "STREAM_STEP_BYTES", 32 << 20)  # the same blocks, whole
    whole = rt.plan(_one_step("testlab.located", {"x": src})).steps[-1].stages[0]
    assert [t.region for t in whole.tasks] == [t.region for t in stage.tasks]
    assert whole.tasks[0].payload.step == ()
    assert max(t.memory for t in stage.tasks) < max(t.memory for t in whole.tasks)
    monkeypatch.setattr(_blocks, "STREAM_STEP_BYTES", 0)
    events = []
    rt.subscribe(events.append)
    res = rt.run("testlab.located", inputs={"x": src}, reuse=False)
    want = x + 1e3 * t[:, None, None] + 1e6 * np.arange(40)[None, :, None]
    np.testing.assert_array_equal(res.to_xarray()["y"].values, want)
    done = [e.task for e in events if e.kind == "task_finished"]
    assert done and all(r.read_s > 0 and r.cpu["read"] > 0 and r.write_s > 0 for r in done)
    assert all(r.kernel_s >= 0 and r.cpu["kernel"] >= 0 for r in done)
    assert sum(r.bytes_decoded for r in done) == x.nbytes
    assert sum(r.bytes_written for r in done) == want.nbytes


def test_a_stepped_map_hands_its_kernel_the_same_output_memory_each_step(
    runtime, tmp_path, rng, monkeypatch
):
    """``ctx.empty`` gives a task worked in steps one output buffer, refilled step after
    step; each step is written before the next overwrites it, so the output is right.
    Band math fills it too."""
    from minjiang.core import _blocks
    from minjiang.core._runtime import Runtime

    monkeypatch.setattr(_blocks, "STREAM_STEP_BYTES", 0)
    rt = Runtime(store=runtime.store.url, executor="local")
    rt.register(_mapops, name="mapops")
    x, t, src = _streamed_cube(rt, tmp_path, rng)
    _mapops.FILLED.clear()
    res = rt.run("testlab.located_into", inputs={"x": src}, reuse=False)
    want = x + 1e3 * t[:, None, None] + 1e6 * np.arange(40)[None, :, None]
    np.testing.assert_array_equal(res.to_xarray()["y"].values, want)
    by_task: dict[int, list[np.ndarray]] = {}
    for task, out in _mapops.FILLED:
        by_task.setdefault(task, []).append(out)
    _mapops.FILLED.clear()
    assert any(len(outs) > 1 for outs in by_task.values())  # tasks of several steps ...
    assert all(o is outs[0] for outs in by_task.values() for o in outs)  # ... one buffer
    other = ingest_array(rt, tmp_path, "t/b", rng.normal(size=x.shape), ("t", "y", "x"), (3, 8, 10))
    ratio = rt.run(
        "array.band_math",
        inputs={"a": src, "b": other},
        params={"expression": "(a - b) / (a + b)"},
        reuse=False,
    )
    b = other.to_xarray()[next(iter(other.to_xarray().data_vars))].values
    np.testing.assert_allclose(ratio.to_xarray()["result"].values, (x - b) / (x + b), rtol=1e-12)


def test_an_aggregate_partial_works_its_block_in_steps(runtime, tmp_path, rng, monkeypatch):
    """Without a halo, an aggregate's partial task over blocks of pencil-like chunks
    reads one chunk at a time and folds each step's state into its own with
    ``combine``: memory projected from a step, the steps in the partition (the id),
    the same values as whole blocks give, and a state that views the step's buffer
    copied before the next step overwrites it. Slab chunks are not stepped."""
    from minjiang.core import _blocks
    from minjiang.core._runtime import Runtime

    rt = Runtime(store=runtime.store.url, executor="local", memory_budget="2MiB")
    rt.register(_mapops, name="mapops")
    x, _, src = _streamed_cube(rt, tmp_path, rng)
    steps = _one_step("testlab.collect", {"x": src})
    monkeypatch.setattr(_blocks, "STREAM_STEP_BYTES", 1 << 40)
    whole = rt.plan(steps).steps[-1]
    monkeypatch.setattr(_blocks, "STREAM_STEP_BYTES", 0)
    stepped = rt.plan(steps).steps[-1]
    (stage, _), (whole_stage, _) = stepped.stages, whole.stages
    assert stage.name == "partial" and len(stage.tasks) == len(whole_stage.tasks)
    assert {t.payload.step for t in stage.tasks} == {(3, 8, 10)}
    assert not any(t.payload.step for t in whole_stage.tasks)
    assert max(t.memory for t in stage.tasks) < max(t.memory for t in whole_stage.tasks)
    assert stepped.partition[3:] == [3, 8, 10] and stepped.dataset_id != whole.dataset_id
    res = rt.run("testlab.collect", inputs={"x": src}, reuse=False)
    table = res.table("values").to_pydict()
    np.testing.assert_array_equal(table["index"], np.arange(x.size))
    np.testing.assert_array_equal(table["value"], x.reshape(-1))

    labels = ingest_array(
        rt, tmp_path, "t/l", rng.integers(0, 5, size=x.shape), ("t", "y", "x"), (3, 8, 10)
    )
    stats = rt.run("array.label_stats", inputs={"values": src, "labels": labels}, reuse=False)
    got = stats.table("stats").to_pydict()
    lab = labels.to_xarray()[next(iter(labels.to_xarray().data_vars))].values
    assert sorted(got["label"]) == [1, 2, 3, 4]  # 0 is the background
    for i, label in enumerate(got["label"]):
        v = x[lab == label]
        assert got["count"][i] == v.size
        assert got["sum"][i] == pytest.approx(v.sum(), rel=1e-12)
        assert (got["min"][i], got["max"][i]) == (v.min(), v.max())

    slabs = ingest_array(rt, tmp_path, "t/s", x, ("t", "y", "x"), (3, 40, 30))
    plan = rt.plan(_one_step("testlab.collect", {"x": slabs})).steps[-1]
    assert not any(t.payload.step for t in plan.stages[0].tasks)


def test_a_map_that_returns_its_block_is_written_before_the_next_step(
    runtime, tmp_path, rng, monkeypatch
) -> None:
    """Steps decode into the same buffer; a kernel that returns the buffer itself has
    its step written before the next step overwrites it."""
    from minjiang.core import _blocks
    from minjiang.core._runtime import Runtime

    monkeypatch.setattr(_blocks, "STREAM_STEP_BYTES", 0)
    rt = Runtime(store=runtime.store.url, executor="local")
    rt.register(_mapops, name="mapops")
    x, _, src = _streamed_cube(rt, tmp_path, rng)
    assert rt.plan(_one_step("testlab.same", {"x": src})).steps[-1].stages[0].tasks[0].payload.step
    res = rt.run("testlab.same", inputs={"x": src}, reuse=False)
    np.testing.assert_array_equal(res.to_xarray()["y"].values, x)


def test_a_reduction_spanning_its_dims_works_in_steps_along_the_kept_ones(
    runtime, tmp_path, rng, monkeypatch
) -> None:
    """A reduce task over the whole time axis reads, reduces and writes one chunk of
    the kept dims at a time: the same answer, memory projected from a step."""
    from minjiang.core import _blocks
    from minjiang.core._runtime import Runtime

    monkeypatch.setattr(_blocks, "STREAM_STEP_BYTES", 0)
    rt = Runtime(store=runtime.store.url, executor="local")
    x = rng.normal(size=(12, 40, 30))
    x[rng.random(x.shape) < 0.1] = np.nan
    src = ingest_array(rt, tmp_path, "t/r", x, ("t", "y", "x"), (6, 8, 10))
    steps = _one_step("array.reduce", {"x": src}, {"dims": ["t"], "stat": "std"})
    stage = rt.plan(steps).steps[-1].stages[0]
    assert stage.name == "reduce" and stage.tasks[0].payload.step == (12, 8, 10)
    monkeypatch.setattr(_blocks, "STREAM_STEP_BYTES", 32 << 20)
    whole = rt.plan(steps).steps[-1].stages[0]
    assert [t.region for t in whole.tasks] == [t.region for t in stage.tasks]
    assert max(t.memory for t in stage.tasks) < max(t.memory for t in whole.tasks)
    monkeypatch.setattr(_blocks, "STREAM_STEP_BYTES", 0)
    events = []
    rt.subscribe(events.append)
    res = rt.run("array.reduce", inputs={"x": src}, params={"dims": ["t"], "stat": "std"})
    np.testing.assert_allclose(res.to_xarray()["std"].values, np.nanstd(x, axis=0), rtol=1e-12)
    done = [e.task for e in events if e.kind == "task_finished"]
    assert done and all(r.cpu["read"] > 0 and r.write_s > 0 for r in done)


def test_maps_that_cannot_be_stepped_keep_whole_blocks(runtime, tmp_path, rng, monkeypatch):
    """A halo, or a second input chunked unlike the first, keeps the whole block."""
    from minjiang.core import _blocks

    monkeypatch.setattr(_blocks, "STREAM_STEP_BYTES", 0)
    x, _, src = _streamed_cube(runtime, tmp_path, rng)
    other = ingest_array(runtime, tmp_path, "t/o", x, ("t", "y", "x"), (6, 8, 10))
    gauss = _one_step("array.gaussian", {"x": src}, {"sigma": 1})
    mixed = _one_step("array.band_math", {"a": src, "b": other}, {"expression": "a - b"})
    for steps in (gauss, mixed):
        for task in runtime.plan(steps).steps[-1].stages[0].tasks:
            assert task.payload.step == ()
    same = _one_step("array.band_math", {"a": src, "b": src}, {"expression": "a - b"})
    assert runtime.plan(same).steps[-1].stages[0].tasks[0].payload.step


@pytest.mark.parametrize(
    ("how", "match"),
    [("extra_key", "oops"), ("shape", r"\(40, 30, 2\)"), ("dtype", "declared float64")],
)
def test_a_partial_that_breaks_its_declaration_names_the_key(
    runtime, tmp_path, rng, how, match
) -> None:
    from minjiang.core._runtime import Runtime

    rt = Runtime(store=runtime.store.url, executor="local", memory_budget="400KiB")
    rt.register(_stateops, name="stateops")
    _, src = _cube(rt, tmp_path, rng)
    with pytest.raises(ExecutionError, match=match):
        rt.run("testlab.state_mean", inputs={"x": src}, params={"how": how})


def test_state_declarations_are_checked() -> None:
    from minjiang.core import State, StateArray

    with pytest.raises(ContractError, match="unique"):
        State((StateArray("a"), StateArray("a")))
    with pytest.raises(ContractError, match=">= 1"):
        StateArray("a", extra=(0,))
    with pytest.raises(ContractError, match="name"):
        StateArray("1bad")
    assert State((StateArray("n", "int64"), StateArray("s", extra=(3,)))).nbytes(10) == 320


def test_a_full_axis_step_read_from_storage_works_its_block_in_steps(
    runtime, tmp_path, rng, monkeypatch
):
    """Input chunks that span the full axis are read, computed and written one chunk
    across the other dims at a time (whole along the axis), as a map's are: each step
    decodes into and encodes from contiguous memory, its memory is projected from a
    step, and the result is the whole block's."""
    import pandas as pd
    import xarray as xr
    from minjiang.core import _blocks
    from minjiang.core._runtime import Runtime

    time = pd.date_range("2001-01-01", periods=40, freq="D")
    x = rng.normal(size=(40, 12, 16))
    rt = Runtime(store=runtime.store.url, executor="local")
    src = ingest_array(
        rt, tmp_path, "t/pencils", x, ("time", "y", "x"), (40, 4, 8), coords={"time": time}
    )
    pipe = {"steps": [{"id": "a", "operator": "array.deseason", "inputs": {"x": src.id}}]}
    monkeypatch.setattr(_blocks, "STREAM_STEP_BYTES", 32 << 20)
    (whole,) = rt.plan(pipe).steps[-1].stages
    monkeypatch.setattr(_blocks, "STREAM_STEP_BYTES", 0)
    (stage,) = rt.plan(pipe).steps[-1].stages
    assert stage.name == whole.name == "full_axis"
    assert [t.region for t in stage.tasks] == [t.region for t in whole.tasks]
    assert {t.payload.step for t in stage.tasks} == {(40, 4, 8)}
    assert whole.tasks[0].payload.step == ()
    assert max(t.memory for t in stage.tasks) < max(t.memory for t in whole.tasks)
    res = rt.run("array.deseason", inputs={"x": src.id}, reuse=False)
    da = xr.DataArray(x, dims=("time", "y", "x"), coords={"time": time})
    ref = da.groupby("time.dayofyear") - da.groupby("time.dayofyear").mean("time")
    np.testing.assert_allclose(res.to_xarray()["anomaly"].values, ref.values, atol=1e-12)


def _pencil_request(chunks: tuple[int, ...], shape: tuple[int, ...], itemsize: int = 4):
    from types import SimpleNamespace

    return SimpleNamespace(
        inputs={"x": SimpleNamespace(array=object())},
        itemsize=itemsize,
        chunks=chunks,
        shape=shape,
        dims=tuple(f"d{i}" for i in range(len(shape))),
    )


def test_a_rechunk_pencil_fills_its_target_with_extents_the_chunks_allow():
    """Extents rounded down one dim at a time left 32 x 56 of a 512 x 448 slab (half the
    cells the target allows); each extent still divides its chunk or is a multiple of
    it, and no extent can take its next allowed size without passing the target."""
    from minjiang.core._patterns.full_axis import PENCIL_TARGET_BYTES, _next_extent, pencil_chunks

    slab = _pencil_request((15, 512, 448), (1095, 512, 448))
    assert pencil_chunks(12 << 30, slab, {0: 1095}) == (1095, 64, 56)
    rng = np.random.default_rng(7)
    for _ in range(200):
        chunks = tuple(int(c) for c in rng.integers(1, 400, size=2))
        shape = tuple(int(c * rng.integers(1, 6) - rng.integers(0, c)) for c in chunks)
        r = _pencil_request((10, *chunks), (365, *shape))
        budget = int(rng.choice([1 << 20, 8 << 20, PENCIL_TARGET_BYTES]))
        got = pencil_chunks(budget, r, {0: 365})
        max_cells = max(1, (min(budget, PENCIL_TARGET_BYTES) // 4) // (4 * 4 * 365))
        assert got[0] == 365
        assert math.prod(got[1:]) <= max_cells, (chunks, shape, budget, got)
        for i, (t, c, n) in enumerate(zip(got[1:], chunks, shape, strict=True)):
            assert t == n or (c % t == 0 if t < c else t % c == 0), (chunks, shape, got)
            nxt = _next_extent(t, c, n)
            if nxt is not None:
                grown = list(got[1:])
                grown[i] = nxt
                assert math.prod(grown) > max_cells, (chunks, shape, budget, got)


def test_a_rechunked_full_axis_output_groups_thin_slabs_along_the_axis(runtime, tmp_path, rng):
    """After a rechunk into pencils, the output is chunked like the intermediate: the
    pencil across the other dims and the input's thin slabs grouped along the full
    axis, not one slab by one pencil (a chunk of a few kB whose per-file cost would
    outweigh its bytes)."""
    import pandas as pd
    import xarray as xr
    from minjiang.core._runtime import Runtime

    time = pd.date_range("2001-01-01", periods=120, freq="D")
    x = rng.normal(size=(120, 24, 32))
    # a budget that cannot hold the whole axis of the input's slabs: rechunked
    rt = Runtime(store=runtime.store.url, executor="local", memory_budget="2MiB")
    src = ingest_array(
        rt, tmp_path, "t/slabs", x, ("time", "y", "x"), (5, 24, 32), coords={"time": time}
    )
    pipe = {"steps": [{"id": "a", "operator": "array.deseason", "inputs": {"x": src.id}}]}
    step = rt.plan(pipe).steps[-1]
    assert [s.name for s in step.stages] == ["rechunk", "full_axis"]
    inter, out = step.arrays["rechunk_x"], step.arrays["anomaly"]
    assert inter.scratch and not out.scratch
    assert out.chunks == inter.chunks
    assert out.chunks[0] > 5 and out.chunks[0] % 5 == 0, out.chunks  # slabs grouped
    assert out.chunks[1:] != (24, 32), out.chunks  # pencils across
    res = rt.run("array.deseason", inputs={"x": src.id})
    got = res.to_xarray()["anomaly"]
    assert got.encoding["chunks"] == out.chunks
    da = xr.DataArray(x, dims=("time", "y", "x"), coords={"time": time})
    ref = da.groupby("time.dayofyear") - da.groupby("time.dayofyear").mean("time")
    np.testing.assert_allclose(got.values, ref.values, atol=1e-12)

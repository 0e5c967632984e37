"""Task shapes tile the array with whole chunks and respect the memory budget."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from minjiang.core._blocks import choose_block, iter_blocks


@st.composite
def grids(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(1, 40)) for _ in range(ndim))
    chunks = tuple(draw(st.integers(1, s)) for s in shape)
    halo = tuple(draw(st.integers(0, 5)) for _ in range(ndim))
    return shape, chunks, halo


@settings(max_examples=200, deadline=None)
@given(grids(), st.integers(1, 8), st.integers(1, 4))
def test_blocks_are_chunk_aligned_and_within_budget(grid, budget_chunks, workers) -> None:
    shape, chunks, halo = grid
    chunk_bytes = math.prod(chunks) * 4
    budget = budget_chunks * chunk_bytes * 4
    mem = lambda block: 2 * math.prod(b + 2 * h for b, h in zip(block, halo, strict=True)) * 4  # noqa: E731
    choice = choose_block(
        shape, chunks, itemsize=4, halo=halo, memory=mem, budget=budget, workers=workers
    )
    if choice is None:
        assert mem(tuple(min(c, s) for c, s in zip(chunks, shape, strict=True))) > budget
        return
    assert choice.task_memory <= budget
    for b, c, s in zip(choice.block, chunks, shape, strict=True):
        assert b == s or b % c == 0
    cells = sum(math.prod(sl.stop - sl.start for sl in r) for r in iter_blocks(shape, choice.block))
    assert cells == math.prod(shape)
    assert len(iter_blocks(shape, choice.block)) == choice.n_tasks
    assert choice.decode_amplification >= 1.0


def test_halo_prefers_spanning_blocks() -> None:
    # 3-D cube with slab chunks: spanning the plane needs no halo decode along y/x.
    choice = choose_block(
        (64, 64, 64),
        (8, 64, 64),
        itemsize=4,
        halo=(0, 3, 3),
        memory=lambda b: math.prod(b) * 16,
        budget=64 << 20,
        workers=2,
    )
    assert choice is not None
    assert choice.decode_amplification == 1.0


def test_a_costly_kernel_is_split_over_the_workers_despite_its_halo() -> None:
    """Pencils of 32 x 32 with an 8-cell halo: splitting decodes neighbouring chunks
    again, so by bytes alone one task is cheapest; a kernel that costs as much as
    decoding makes two tasks (one per worker) cheaper."""
    shape, chunks, halo = (730, 96, 160), (730, 32, 32), (8, 8, 8)

    def padded_cells(block: tuple[int, ...]) -> int:
        return math.prod(min(b + 2 * h, s) for b, h, s in zip(block, halo, shape, strict=True))

    common = {
        "itemsize": 4,
        "halo": halo,
        "memory": lambda b: math.prod(b) * 16,
        "budget": 1 << 30,
        "workers": 2,
    }
    io_only = choose_block(shape, chunks, **common)
    costly = choose_block(shape, chunks, **common, compute=lambda b: padded_cells(b) * 51 / 4e9)
    assert io_only is not None and costly is not None
    assert io_only.n_tasks == 1
    assert costly.n_tasks >= 2
    assert costly.cost > io_only.cost  # the kernel time is part of the projection


def test_tasks_that_would_hold_much_memory_are_split(monkeypatch) -> None:
    """A map over a 1 GB cube of pencils on two workers: by decode cost alone a few
    large tasks are cheapest; past TASK_MEMORY_TARGET_BYTES of projected memory a
    task pays for what it holds, so the planner picks more, smaller tasks."""
    from minjiang.core import _blocks

    target = _blocks.TASK_MEMORY_TARGET_BYTES
    shape, chunks = (1095, 512, 448), (1095, 64, 64)
    common = {
        "itemsize": 4,
        "halo": (0, 0, 0),
        "memory": lambda b: 3 * math.prod(b) * 4,  # two inputs and the output
        "budget": 16 << 30,
        "workers": 2,
    }
    held = choose_block(shape, chunks, **common)
    monkeypatch.setattr(_blocks, "TASK_MEMORY_TARGET_BYTES", 1 << 40)
    unheld = choose_block(shape, chunks, **common)
    assert held is not None and unheld is not None
    assert unheld.task_memory > 2 * _blocks.TASK_TARGET_BYTES
    assert held.n_tasks > unheld.n_tasks
    assert held.task_memory < unheld.task_memory
    assert held.task_memory <= 2 * target


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 60), st.integers(1, 60), st.integers(1, 60), st.integers(0, 9))
def test_chunks_touched_is_the_most_any_task_touches(size, chunk, block, halo) -> None:
    from minjiang.core._planner import chunks_touched

    chunk, block = min(chunk, size), min(block, size)
    counts = []
    for start in range(0, size, block):
        lo, hi = max(start - halo, 0), min(start + block + halo, size)
        counts.append(len({i // chunk for i in range(lo, hi)}))
    assert chunks_touched(size, chunk, block, halo) == max(counts)


def test_codec_buffers_are_three_chunks_per_chunk_in_flight() -> None:
    """Zarr's buffers: 3 decoded chunks per chunk in flight, at most
    TASK_ZARR_CONCURRENCY in flight, sized by the largest chunk on either side."""
    from minjiang.core._executors import TASK_ZARR_CONCURRENCY
    from minjiang.core._planner import codec_bytes

    mib = 1 << 20
    assert TASK_ZARR_CONCURRENCY == 4
    # a halo read of 9 chunks of 8 MiB, one chunk written: 4 in flight
    assert codec_bytes([(9, 8 * mib)], [(1, 8 * mib)]) == 96 * mib
    # one chunk decoded, one encoded: one in flight
    assert codec_bytes([(1, 8 * mib)], [(1, 8 * mib)]) == 24 * mib
    # the larger side counts, and the largest chunk among the arrays
    assert codec_bytes([(1, mib), (1, 2 * mib)], [(3, mib // 2)]) == 3 * 3 * 2 * mib
    assert codec_bytes([], []) == 0


def test_the_plan_carries_the_figure_the_block_was_checked_against(tmp_path) -> None:
    """One task-memory figure: the operator's formula plus zarr's codec buffers, the
    same in the block choice, in StepPlan.task_memory and in the largest TaskSpec."""
    import numpy as np
    from minjiang.core._operator import TaskSize
    from minjiang.core._runtime import Runtime

    from tests._data import ingest_array

    x = np.zeros((64, 48, 48), dtype=np.float32)
    chunk_bytes = 64 * 8 * 8 * 4
    with Runtime(store=tmp_path / "store", executor="local", memory_budget="512KiB") as rt:
        src = ingest_array(rt, tmp_path, "t/x", x, ("t", "y", "x"), (64, 8, 8))
        step = {"id": "g", "operator": "array.gaussian", "inputs": {"x": src.id}}
        step["params"] = {"sigma": 1}
        plan = rt.plan({"steps": [step]}).steps[-1]
        op = rt.operators["array.gaussian"]
    tasks = [t for s in plan.stages for t in s.tasks]
    assert len(tasks) > 1
    assert plan.task_memory == plan.block.task_memory == max(t.memory for t in tasks)
    assert plan.task_memory <= 512 << 10
    # the first task: a whole block whose halo (padded at the edge) touches its
    # neighbours' chunks, so 4 chunks in flight
    first = tasks[0]
    block = tuple(s.stop - s.start for s in first.region)
    in_bytes = (
        math.prod(
            (s.stop - s.start) + lo + hi
            for s, (lo, hi) in zip(first.region, first.halo, strict=True)
        )
        * 4
    )
    size = TaskSize(in_bytes, math.prod(block) * 4, block, 4, ("t", "y", "x"))
    formula = int(op.memory(size, plan.params))
    assert first.memory == formula + 3 * 4 * chunk_bytes


def test_a_streamed_step_is_whole_chunks_grown_from_the_last_dim() -> None:
    from minjiang.core._blocks import stream_step

    # 64 × 64 pencils of 1,095 days (18 MB): one pencil a step
    assert stream_step((1095, 256, 448), (1095, 64, 64), 4) == (1095, 64, 64)
    # 15-day slabs of a 512 × 448 plane (13.8 MB): two slabs a step, at most 32 MiB
    assert stream_step((120, 512, 448), (15, 512, 448), 4) == (30, 512, 448)
    # the last dim grows first; an earlier one takes more than a chunk once it is whole
    block, chunks = (100, 40, 50), (10, 8, 10)
    assert stream_step(block, chunks, 8, target=10 * 8 * 30 * 8) == (10, 8, 30)
    assert stream_step(block, chunks, 8, target=10 * 16 * 50 * 8) == (10, 16, 50)
    assert stream_step(block, chunks, 8, target=0) == (10, 8, 10)
    assert stream_step(block, chunks, 8, target=1 << 30) == block
    # dims in ``whole`` stay whole (a reduction's reduced dims); the rest step by chunks
    assert stream_step(block, chunks, 8, target=0, whole=(0,)) == (100, 8, 10)
    assert stream_step((1095, 256, 448), (365, 64, 64), 4, whole=(0,)) == (1095, 64, 64)

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

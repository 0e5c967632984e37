"""Task shapes: how many storage chunks one task covers, per dim.

A task always covers whole storage chunks, so every output chunk is written by
exactly one task and no chunk is ever read-modified-written. Within that rule the
planner picks, among blocks of ``k_d`` chunks per dim, the one that

* fits the per-task memory budget (projected by the operator's memory formula),
* keeps enough tasks to feed every worker,
* and costs least, where cost = bytes decoded (halo reads decode whole neighbouring
  chunks: *decode amplification*) + partial states written and read back when a
  reduction does not span its reduced dims + a fixed per-task overhead.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Mapping, Sequence

__all__ = ["BlockChoice", "choose_block", "iter_blocks"]

#: Fixed cost of one task, expressed as bytes of decoding it is worth (≈ 40 ms at 0.4 GB/s).
TASK_OVERHEAD_BYTES = 16 << 20


@dataclasses.dataclass(frozen=True)
class BlockChoice:
    """The chosen block (in cells per dim) and what the planner projected for it."""

    block: tuple[int, ...]
    n_tasks: int
    task_memory: int
    decode_amplification: float
    cost: float


def _candidates(n_chunks: int) -> list[int]:
    ks = {n_chunks}
    k = 1
    while k < n_chunks:
        ks.add(k)
        k *= 2
    # also exact divisors near powers of two, so blocks tile the array evenly
    for d in range(1, min(n_chunks, 64) + 1):
        if n_chunks % d == 0:
            ks.add(d)
    return sorted(ks)


def _decoded_extent(k: int, chunk: int, size: int, halo: int) -> int:
    """Cells decoded along one dim for an interior task of ``k`` chunks with ``halo``."""
    extra = math.ceil(halo / chunk) if halo else 0
    return min((k + 2 * extra) * chunk, size)


def choose_block(
    shape: Sequence[int],
    chunks: Sequence[int],
    *,
    itemsize: int,
    halo: Sequence[int],
    memory: Callable[[tuple[int, ...]], int],
    budget: int,
    workers: int,
    span: Sequence[bool] = (),
    partial_bytes: Callable[[tuple[int, ...]], int] | None = None,
    fixed: Mapping[int, int] | None = None,
) -> BlockChoice | None:
    """Choose the block shape; ``None`` if even the smallest block is over ``budget``.

    Parameters
    ----------
    memory
        Projected peak bytes of one task for a block shape (cells per dim).
    span
        Per dim, whether spanning the whole dim avoids a partial/combine stage
        (reductions); blocks that don't span pay ``partial_bytes`` per task.
    fixed
        Dims whose block extent is imposed (e.g. the whole axis of a full_axis step).
    """
    ndim = len(shape)
    fixed = dict(fixed or {})
    per_dim: list[list[int]] = []
    for d in range(ndim):
        n = max(1, math.ceil(shape[d] / chunks[d]))
        if d in fixed:
            per_dim.append([max(1, math.ceil(fixed[d] / chunks[d]))])
        else:
            per_dim.append(_candidates(n))
    best: BlockChoice | None = None
    max_tasks = math.prod(max(1, math.ceil(shape[d] / chunks[d])) for d in range(ndim))
    # two tasks per worker keep every worker busy while the slowest task finishes
    want_tasks = min(2 * workers, max_tasks)
    for ks in itertools.product(*per_dim):
        block = tuple(min(k * c, s) for k, c, s in zip(ks, chunks, shape, strict=True))
        mem = memory(block)
        if mem > budget:
            continue
        n_tasks = math.prod(math.ceil(s / b) for s, b in zip(shape, block, strict=True))
        decoded = math.prod(
            _decoded_extent(k, c, s, h) for k, c, s, h in zip(ks, chunks, shape, halo, strict=True)
        )
        needed = math.prod(block)
        amp = decoded / max(needed, 1)
        cost = float(decoded * itemsize * n_tasks + TASK_OVERHEAD_BYTES * n_tasks)
        if (
            partial_bytes is not None
            and span
            and not all(b >= s for b, s, sp in zip(block, shape, span, strict=True) if sp)
        ):
            cost += 2 * partial_bytes(block) * n_tasks
        if n_tasks < want_tasks:
            cost *= 1 + (want_tasks - n_tasks) / want_tasks  # idle workers cost wall time
        choice = BlockChoice(block, n_tasks, mem, amp, cost)
        if best is None or (choice.cost, -choice.n_tasks) < (best.cost, -best.n_tasks):
            best = choice
    return best


def iter_blocks(shape: Sequence[int], block: Sequence[int]) -> list[tuple[slice, ...]]:
    """All blocks of ``block`` cells tiling ``shape`` (the last one per dim may be short)."""
    ranges = [range(0, s, b) for s, b in zip(shape, block, strict=True)]
    return [
        tuple(slice(o, min(o + b, s)) for o, b, s in zip(origin, block, shape, strict=True))
        for origin in itertools.product(*ranges)
    ]

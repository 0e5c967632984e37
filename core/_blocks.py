"""Task shapes: how many storage chunks one task covers, per dim.

A task always covers whole storage chunks, so every output chunk is written by
exactly one task and no chunk is ever read-modified-written. Within that rule the
planner picks, among blocks of ``k_d`` chunks per dim, the one that

* fits the per-task memory budget (projected by the operator's memory formula),
* and has the least projected wall time: rounds of tasks over the workers times the
  cost of one task, where a task costs the bytes it decodes (halo reads decode whole
  neighbouring chunks: *decode amplification*), plus partial states written and read
  back when a reduction does not span its reduced dims, plus its kernel time where
  the operator projects one (converted at ``DECODE_BYTES_PER_SECOND``), plus a fixed
  overhead; tasks decoding more than 256 MiB, or projected to hold more than 256 MiB,
  pay a growing penalty.

A map task without halo, and a reduce task that spans its reduced dims, read,
compute and write their block in steps of whole chunks (:func:`stream_step`), so what
such a task holds is a step, not its block: its memory is projected from one step.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Mapping, Sequence

__all__ = ["BlockChoice", "choose_block", "iter_blocks", "stream_step"]

#: The unit of the cost model: bytes one core decodes per second (Blosc-LZ4 + CRC-32C
#: Zarr chunks, measured 0.15-0.5 GB/s on the benchmark machine).
DECODE_BYTES_PER_SECOND = 400e6
#: Fixed cost of one task, expressed as bytes of decoding it is worth (≈ 40 ms at 0.4 GB/s).
TASK_OVERHEAD_BYTES = 16 << 20
#: Tasks decoding more than this are penalised (load balance, memory held, resume grain).
TASK_TARGET_BYTES = 256 << 20
#: Tasks projected to hold more than this are penalised the same way: every worker
#: holds its task's memory at once, and on the medium benchmark smaller tasks
#: cost no time and cut the peak (docs/benchmarks.md, "Task memory").
TASK_MEMORY_TARGET_BYTES = 256 << 20

#: A stepped task reads about this many bytes of its primary input at a time (at least
#: one chunk per stepped dim).
STREAM_STEP_BYTES = 32 << 20


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


def _over(value: float, target: float) -> float:
    """The cost factor of a task whose ``value`` exceeds ``target``: 1 up to it, then
    growing by a quarter per ``target`` over."""
    return 1.0 + 0.25 * (value / target - 1) if value > target else 1.0


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
    compute: Callable[[tuple[int, ...]], float] | None = None,
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
    compute
        Projected kernel seconds of one task for a block shape (``None``: negligible).
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
    for ks in itertools.product(*per_dim):
        block = tuple(min(k * c, s) for k, c, s in zip(ks, chunks, shape, strict=True))
        mem = memory(block)
        if mem > budget:
            continue
        n_tasks = math.prod(math.ceil(s / b) for s, b in zip(shape, block, strict=True))
        decoded = math.prod(
            _decoded_extent(k, c, s, h) for k, c, s, h in zip(ks, chunks, shape, halo, strict=True)
        )
        amp = decoded / max(math.prod(block), 1)
        # Wall time ~ rounds of tasks across the workers x the cost of one task.
        task_bytes = decoded * itemsize
        per_task = float(task_bytes + TASK_OVERHEAD_BYTES)
        if compute is not None:
            per_task += compute(block) * DECODE_BYTES_PER_SECOND
        if (
            partial_bytes is not None
            and span
            and not all(b >= s for b, s, sp in zip(block, shape, span, strict=True) if sp)
        ):
            per_task += 2 * partial_bytes(block)
        # very large tasks balance poorly, hold memory long and resume coarsely
        per_task *= _over(task_bytes, TASK_TARGET_BYTES) * _over(mem, TASK_MEMORY_TARGET_BYTES)
        cost = math.ceil(n_tasks / max(workers, 1)) * per_task
        choice = BlockChoice(block, n_tasks, mem, amp, cost)
        if best is None or (choice.cost, choice.n_tasks) < (best.cost, best.n_tasks):
            best = choice
    return best


def iter_blocks(shape: Sequence[int], block: Sequence[int]) -> list[tuple[slice, ...]]:
    """All blocks of ``block`` cells tiling ``shape`` (the last one per dim may be short)."""
    ranges = [range(0, s, b) for s, b in zip(shape, block, strict=True)]
    return [
        tuple(slice(o, min(o + b, s)) for o, b, s in zip(origin, block, shape, strict=True))
        for origin in itertools.product(*ranges)
    ]


def stream_step(
    block: Sequence[int],
    chunks: Sequence[int],
    itemsize: int,
    target: int | None = None,
    whole: Sequence[int] = (),
) -> tuple[int, ...]:
    """The part of ``block`` a streamed task reads at once (cells per dim): the whole
    block along the dims in ``whole``; along the others whole chunks, about ``target``
    bytes in all (default ``STREAM_STEP_BYTES``, at least one chunk per dim), grown in
    C order from the last dim: an earlier dim takes more than one chunk only once the
    later ones span the block. Blocks start on chunk boundaries, so steps do too.
    """
    target = STREAM_STEP_BYTES if target is None else target
    step = [
        b if i in whole else min(c, b) for i, (b, c) in enumerate(zip(block, chunks, strict=True))
    ]
    for i in reversed([i for i in range(len(step)) if i not in whole]):
        row = math.prod(step) // step[i] * itemsize  # bytes per cell along dim i
        step[i] = min(block[i], max(step[i], target // max(row, 1) // chunks[i] * chunks[i]))
        if step[i] < block[i]:
            break
    return tuple(step)

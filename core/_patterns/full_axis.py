"""``FullAxis``: the kernel needs the whole extent along some dims.

Planning: one ``full_axis`` stage reading straight from storage when the storage
chunks already span the full dims, when the full dims are every dim (one task over
the whole array, with the run's whole budget), or when tasks over whole storage
chunks fit the budget and cost less than a rechunk (which reads, writes and reads
again every byte).
Otherwise a ``rechunk`` stage (``core/_patterns/rechunk.py``) first writes each
input that does not span the axis into a scratch Zarr of *pencils*, and the
``full_axis`` tasks read the pencils. The output then takes the intermediate's
chunking: the pencil across the other dims and, along the full dims, the input's
chunks grouped toward 2 MiB per chunk (at most 64 of them, within the budget).

Task: the same :class:`~minjiang.core._patterns.map.BlockTask` as a map. Reading
straight from storage, it works its block in steps as a streamed map does (whole
along the full dims, whole chunks across the others: ``planner.stepper``), so each
step decodes into and encodes from contiguous memory. An output may have another
size along the full dims (``ArrayOutput.sizes``: a resampled raster); each task then
writes it whole along those dims, in one piece.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from minjiang.core._operator import FullAxis, dotted_path
from minjiang.core._patterns.map import BlockTask
from minjiang.core._patterns.rechunk import plan_rechunk, rechunk_cost

if TYPE_CHECKING:
    from minjiang.core._planner import OutputArraySpec, Request, StepPlan, StepPlanner, TaskSpec
    from minjiang.storage import ArrayInfo

__all__ = ["PENCIL_TARGET_BYTES", "pencil_chunks", "plan_full_axis"]

#: Memory one full-axis pencil task aims at; sets the pencil (and output) chunking.
PENCIL_TARGET_BYTES = 256 << 20


def plan_full_axis(planner: StepPlanner, r: Request, pattern: FullAxis) -> StepPlan:
    from minjiang.core._planner import Stage

    fdims = planner.pattern_dims(r, pattern.dims, "needs whole dims")
    full = {r.dims.index(d): r.shape[r.dims.index(d)] for d in fdims}
    kernel = dotted_path(pattern.kernel)
    whole = {i.name: set(i.whole) for i in r.op.inputs}
    # Aligned array inputs that do not span the axis in storage are rechunked, unless
    # the full dims are every dim: the one task then decodes each chunk once, whole,
    # and a rechunk would only copy the array before it.
    everything = set(fdims) >= set(r.dims)
    to_rechunk = [
        b
        for b in r.inputs.values()
        if b.array is not None
        and not everything
        and any(
            d in fdims and c < s
            for d, c, s in zip(b.array.dims, b.array.chunks, b.array.shape, strict=True)
        )
        and not set(fdims) & whole.get(b.name, set())
    ]
    arrays, tables = planner.output_arrays(r.op, r.params, r.inputs, resizable=fdims)
    # Read straight from storage when it spans the axis, or when tasks over whole
    # storage chunks fit the budget and cost less than a rechunk through Zarr
    # (which reads, writes and reads again every byte).
    # A task reading straight from storage works its block in steps of whole chunks
    # across the other dims, as a map does: each step decodes into and encodes from
    # contiguous memory instead of a block of several pencils.
    held = planner.stepper(r, arrays, tables, whole=fdims)
    direct = planner.choose(r, {}, arrays, fixed=full, required=not to_rechunk, held=held)
    if direct is not None and (
        not to_rechunk or direct.cost <= rechunk_cost(planner.workers, to_rechunk)
    ):
        stepped = held(direct.block) if held is not None else direct.block
        step = BlockTask(
            kernel,
            planner.outputs(arrays, tables),
            step=() if stepped == direct.block else stepped,
        )
        stage = planner.block_stage(r, "full_axis", direct.block, step, arrays, held=held)
        plan = planner.new_plan(r, arrays, tables, [stage], direct)
        if to_rechunk:
            plan.notes.append(
                f"read {[b.name for b in to_rechunk]!r} whole along {list(fdims)!r} without "
                "rechunking (it fits the budget and costs less)"
            )
        return plan
    target = pencil_chunks(planner.budget, r, full)
    override: dict[str, ArrayInfo] = {}
    rechunk_tasks: list[TaskSpec] = []
    scratch_arrays: dict[str, OutputArraySpec] = {}
    for b in to_rechunk:
        info = b.array
        assert info is not None
        spec, inter, tasks = plan_rechunk(
            planner, r, b.name, info, fdims, target, len(rechunk_tasks)
        )
        scratch_arrays[spec.name] = spec
        override[b.name] = inter
        rechunk_tasks.extend(tasks)
    rechunk_tasks = [dataclasses.replace(t, n_tasks=len(rechunk_tasks)) for t in rechunk_tasks]
    # The output takes the pencil across the other dims and, along the full dims, the
    # intermediate's grouping of the input's chunks (toward 1 MiB chunks): the input's own
    # chunk there (a 15-day slab) times a pencil's cross-section can be a chunk of a
    # hundred kB, whose per-file cost then outweighs its bytes (docs/architecture.md).
    out_chunks = {d: target[i] for i, d in enumerate(r.dims) if i not in full}
    grouped = next((override[b.name] for b in to_rechunk if b.array == r.primary), None)
    if grouped is not None:
        out_chunks.update(
            (d, c) for d, c in zip(grouped.dims, grouped.chunks, strict=True) if d in fdims
        )
    arrays, tables = planner.output_arrays(
        r.op, r.params, r.inputs, chunks=out_chunks, resizable=fdims
    )
    pencil = tuple(full.get(i, target[i]) for i in range(len(r.dims)))
    choice = planner.choose(r, {}, arrays, chunks=pencil, fixed=full, override=override)
    step = BlockTask(kernel, planner.outputs(arrays, tables))
    stage = planner.block_stage(r, "full_axis", choice.block, step, arrays, override=override)
    plan = planner.new_plan(
        r,
        {**arrays, **scratch_arrays},
        tables,
        [Stage("rechunk", tuple(rechunk_tasks), scratch=True), stage],
        choice,
    )
    plan.notes.append(
        f"rechunked {[b.name for b in to_rechunk]!r} to pencils {pencil!r} through an "
        "intermediate Zarr"
    )
    return plan


def pencil_chunks(budget: int, r: Request, full: Mapping[int, int]) -> tuple[int, ...]:
    """Pencil extent per non-full dim: a divisor (or multiple) of the storage chunk such
    that one pencil's task fits the budget with room for a few in flight."""
    n_arrays = max(1, sum(1 for b in r.inputs.values() if b.array is not None))
    # bytes per pencil cell across all array inputs (whole dims included) and outputs
    per_cell = 4 * r.itemsize * math.prod(full.values()) * n_arrays
    # The pencil is the output's chunking, part of what the dataset *is*: it must not
    # depend on the executor's worker count, only on a fixed target (or a budget
    # smaller than it).
    max_cells = max(1, (min(budget, PENCIL_TARGET_BYTES) // 4) // max(per_cell, 1))
    others = [i for i in range(len(r.dims)) if i not in full]
    side = max(1, int(max_cells ** (1 / max(len(others), 1))))
    target: list[int] = []
    for i, (c, n) in enumerate(zip(r.chunks, r.shape, strict=True)):
        if i in full:
            target.append(n)
        elif c <= side:
            target.append(c * max(1, min(side // c, math.ceil(n / c))))
        else:
            divisors = [d for d in range(1, c + 1) if c % d == 0 and d <= side]
            target.append(max(divisors) if divisors else 1)
    # Each extent rounded down to a divisor or multiple of its chunk can leave the
    # pencil far below the target (a 61-cell side gives 32 x 56 of 512 x 448 slabs, half
    # of it): grow the smallest extent to its next allowed size while the pencil fits.
    while True:
        for i in sorted(others, key=lambda i: target[i]):
            grown = _next_extent(target[i], r.chunks[i], r.shape[i])
            if grown is not None and (
                math.prod(grown if j == i else target[j] for j in others) <= max_cells
            ):
                target[i] = grown
                break
        else:
            return tuple(target)


def _next_extent(extent: int, chunk: int, size: int) -> int | None:
    """The next pencil extent after ``extent`` along a dim of ``size`` cells stored in
    chunks of ``chunk``: the next divisor of the chunk, then whole multiples of it up to
    the dim (None at the dim's end)."""
    if extent >= size:
        return None
    if extent < chunk:
        return min(size, min(d for d in range(extent + 1, chunk + 1) if chunk % d == 0))
    return min(extent + chunk, size)

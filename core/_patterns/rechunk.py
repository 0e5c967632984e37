"""Rechunk: copy an input into a scratch Zarr of pencils, in bounded memory.

Planned by ``full_axis`` when its input's storage chunks do not span the full dims
and reading them whole would not fit or would cost more. Intermediate chunks hold
whole (grouped) source chunks along the full dims and the pencil extent along the
others, so each is written by exactly one task, and each task reads whole source
chunks; no chunk is read, modified and written back.

Task: :class:`RechunkTask` reads its region and writes it to the scratch array (no
kernel).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from minjiang.core._blocks import TASK_OVERHEAD_BYTES, iter_blocks

if TYPE_CHECKING:
    from minjiang.core._planner import BoundInput, OutputArraySpec, Request, StepPlanner, TaskSpec
    from minjiang.core._tasks import TaskIO
    from minjiang.storage import ArrayInfo

__all__ = [
    "INTERMEDIATE_CHUNK_BYTES",
    "RECHUNK_TASK_BYTES",
    "RechunkTask",
    "plan_rechunk",
    "rechunk_cost",
]

#: Bytes one rechunk task reads (whole source chunks), so its overhead stays small.
RECHUNK_TASK_BYTES = 64 << 20
#: Size the intermediate's chunks aim for (source chunks grouped along the full dims).
#: Writing a chunk inside a task costs about 2 ms beside its bytes (W3 over slabs at
#: medium: 5.0 CPU-s to write 1 GB in 1 MB chunks, 3.0 in 18 MB chunks of the same
#: values), so a 1 MB chunk paid as much per file as for its bytes.
INTERMEDIATE_CHUNK_BYTES = 2 << 20


@dataclasses.dataclass(frozen=True)
class RechunkTask:
    """Copy the task's region of input ``input`` into scratch array ``array``."""

    input: str
    array: str

    @property
    def kernels(self) -> tuple[str, ...]:
        return ()

    @property
    def threaded(self) -> bool:
        return False

    def read(self, io: TaskIO, spec: TaskSpec) -> Any:
        return io.read_inputs(spec)[self.input]

    def compute(self, data: Any, spec: TaskSpec) -> Any:
        return data

    def write(self, io: TaskIO, spec: TaskSpec, result: Any) -> None:
        (w,) = spec.writes
        io.write_array(w.array, w.region, result, scratch=True)


def _itemsize(dtype: str) -> int:
    import numpy as np

    return int(np.dtype(dtype).itemsize)


def plan_rechunk(
    planner: StepPlanner,
    r: Request,
    input_name: str,
    info: ArrayInfo,
    fdims: tuple[str, ...],
    target: tuple[int, ...],
    first: int,
) -> tuple[OutputArraySpec, ArrayInfo, list[TaskSpec]]:
    """The scratch array, its ArrayInfo and the tasks that rechunk one input."""
    from minjiang.core._executors import TASK_ZARR_CONCURRENCY
    from minjiang.core._planner import ArrayRead, ArrayWrite, OutputArraySpec, codec_bytes
    from minjiang.storage import ArrayInfo, Staging

    group = _group(planner.budget, info, fdims, tuple(target[r.dims.index(d)] for d in info.dims))
    inter_chunks = tuple(
        min(c * group, s) if d in fdims else target[r.dims.index(d)]
        for d, c, s in zip(info.dims, info.chunks, info.shape, strict=True)
    )
    name = f"rechunk_{input_name}"
    spec = OutputArraySpec(
        name,
        tuple(info.dims),
        tuple(info.shape),
        inter_chunks,
        info.dtype,
        dict(info.attrs),
        scratch=True,
    )
    inter = ArrayInfo(
        name=name,
        path=Staging.array_path(r.dataset_id, name, scratch=True, recompute=r.recompute),
        dims=tuple(info.dims),
        shape=tuple(info.shape),
        dtype=info.dtype,
        chunks=inter_chunks,
        attrs=dict(info.attrs),
        dataset_id=r.dataset_id,
    )
    # One task covers several intermediate chunks along the full dims (each still
    # whole and its own), so per-task overhead stays small against its I/O.
    unit = tuple(
        min(c * group, s) if d in fdims else max(c, target[r.dims.index(d)])
        for d, c, s in zip(info.dims, info.chunks, info.shape, strict=True)
    )
    unit_bytes = math.prod(unit) * _itemsize(info.dtype)
    # zarr's codec buffers at most (planner.codec_bytes) come out of the budget first
    in_chunk = math.prod(info.chunks) * _itemsize(info.dtype)
    inter_chunk = math.prod(inter_chunks) * _itemsize(info.dtype)
    most_codec = codec_bytes([(TASK_ZARR_CONCURRENCY, max(in_chunk, inter_chunk))], [])
    room = max(planner.budget - most_codec, 0) // 3
    k = max(1, min(RECHUNK_TASK_BYTES, room) // max(unit_bytes, 1))
    rblock = tuple(
        min(u * k, s) if d in fdims else u
        for d, u, s in zip(info.dims, unit, info.shape, strict=True)
    )
    step = RechunkTask(input_name, name)
    tasks: list[TaskSpec] = []
    for region in iter_blocks(info.shape, rblock):
        nbytes = math.prod(g.stop - g.start for g in region) * _itemsize(info.dtype)
        # a rechunk task decodes its source chunks and encodes its intermediate ones
        decoded = math.prod(
            (g.stop - 1) // c - g.start // c + 1 for g, c in zip(region, info.chunks, strict=True)
        )
        encoded = math.prod(
            (g.stop - 1) // c - g.start // c + 1 for g, c in zip(region, inter_chunks, strict=True)
        )
        memory = 3 * nbytes + codec_bytes([(decoded, in_chunk)], [(encoded, inter_chunk)])
        if memory > planner.budget:
            raise planner.budget_error(
                r, memory, f"rechunk block {rblock!r} of input {input_name!r}"
            )
        tasks.append(
            planner.task(
                r,
                key=f"rechunk/{first + len(tasks):06d}",
                payload=step,
                region=region,
                n_tasks=0,
                memory=memory,
                backend="cpu",
                params=None,
                reads=[ArrayRead(input_name, info, region, tuple((0, 0) for _ in region))],
                writes=[ArrayWrite(input_name, name, region, scratch=True)],
                dims=tuple(info.dims),
                sizes=tuple(info.shape),
                coords=False,
            )
        )
    return spec, inter, tasks


def rechunk_cost(workers: int, inputs: Sequence[BoundInput]) -> float:
    """Projected wall-time cost (in the block model's units) of rechunking ``inputs``:
    every byte read, written to the intermediate and read back, over the workers."""
    total = sum(b.array.nbytes for b in inputs if b.array is not None)
    return 3 * total / max(workers, 1) + 2 * TASK_OVERHEAD_BYTES


def _group(budget: int, info: ArrayInfo, fdims: tuple[str, ...], target: tuple[int, ...]) -> int:
    """Source chunks along the full dims per intermediate chunk: aim for
    :data:`INTERMEDIATE_CHUNK_BYTES`, but keep one rechunk unit (three copies and zarr's
    codec buffers) within budget."""
    from minjiang.core._executors import TASK_ZARR_CONCURRENCY
    from minjiang.core._planner import CODEC_BUFFERS_PER_CHUNK

    itemsize = _itemsize(info.dtype)
    full = math.prod(c for d, c in zip(info.dims, info.chunks, strict=True) if d in fdims)
    chunk = (
        full
        * itemsize
        * math.prod(t for d, t in zip(info.dims, target, strict=True) if d not in fdims)
    )
    unit = (
        full
        * itemsize
        * math.prod(
            max(c, t)
            for d, c, t in zip(info.dims, info.chunks, target, strict=True)
            if d not in fdims
        )
    )
    # a task of one unit holds three copies of it and, at worst, codec buffers for
    # TASK_ZARR_CONCURRENCY chunks as large as it (planner.codec_bytes)
    copies = 3 + CODEC_BUFFERS_PER_CHUNK * TASK_ZARR_CONCURRENCY
    return max(
        1, min(64, INTERMEDIATE_CHUNK_BYTES // max(chunk, 1), (budget // copies) // max(unit, 1))
    )

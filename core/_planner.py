"""The planner: a whole plan is built and checked before any task runs.

For each step it validates the operator's contract against its inputs, decides the
task shape (``_blocks``), projects each task's memory and refuses an infeasible plan
with a message that names the step, both numbers with units, and the fix.

This module holds what every chunk pattern shares: the plan's data (:class:`StepPlan`,
:class:`Stage`, :class:`TaskSpec` and what a task reads and writes), contract checks,
output templates, block choice and the per-block stage. How one pattern becomes
stages, and what its tasks do, lives in that pattern's module under
``core/_patterns/`` (``map``, ``reduce``, ``full_axis``, ``aggregate``, ``rechunk``,
``composite``); :meth:`StepPlanner.plan` looks the pattern's planner up in
``core._patterns.PLANNERS``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from minjiang.core._blocks import BlockChoice, choose_block, iter_blocks, stream_step
from minjiang.core._executors import TASK_ZARR_CONCURRENCY
from minjiang.core._operator import (
    ArrayOutput,
    Operator,
    PlanInput,
    TableOutput,
    TaskSize,
)
from minjiang.core._units import format_bytes
from minjiang.core.errors import ContractError, MemoryBudgetError, PlanError

if TYPE_CHECKING:
    from minjiang.core._tasks import Outputs, TaskStep
    from minjiang.storage import ArrayInfo, DatasetInfo
    from pydantic import BaseModel

__all__ = [
    "ArrayRead",
    "ArrayWrite",
    "BoundInput",
    "CoordSpec",
    "OutputArraySpec",
    "Stage",
    "StepPlan",
    "TableRead",
    "TaskSpec",
]

#: No storage chunk may decode to more than this (Ray retries OOM kills forever).
MAX_CHUNK_BYTES = 512 << 20
#: Decoded chunks' worth of zarr codec buffers held per chunk in flight (the compressed
#: bytes, the decoded chunk and the copy into the task's array; measured with
#: minjiang's codec: 8 MiB chunks, 4 in flight, a halo read of 9 chunks +63 MiB and a
#: write of 4 chunks +84 MiB; 1 in flight +23 / +23 MiB; 1 MiB chunks at 4: +8 / +9 MiB).
CODEC_BUFFERS_PER_CHUNK = 3


def codec_bytes(decoded: Sequence[tuple[int, int]], encoded: Sequence[tuple[int, int]]) -> int:
    """Zarr's codec buffers of one task, beyond its arrays.

    Parameters
    ----------
    decoded, encoded
        ``(chunks, decoded bytes per chunk)`` per array the task reads (halo
        neighbours included) and writes.

    Returns
    -------
    int
        ``CODEC_BUFFERS_PER_CHUNK × min(TASK_ZARR_CONCURRENCY, n) × c``: ``c`` the
        largest chunk on either side, ``n`` the chunks decoded or encoded, whichever
        is more.
    """
    c = max((cb for side in (decoded, encoded) for _, cb in side), default=0)
    n = max(sum(k for k, _ in decoded), sum(k for k, _ in encoded))
    return CODEC_BUFFERS_PER_CHUNK * min(TASK_ZARR_CONCURRENCY, n) * c


def chunks_touched(size: int, chunk: int, block: int, halo: int = 0) -> int:
    """The most chunks (of ``chunk`` cells) any task of ``block`` cells (+``halo`` on
    each side, clipped to ``size``) touches along one dim, over the grid of tasks."""
    most = 0
    for start in range(0, size, max(block, 1)):
        lo, hi = max(start - halo, 0), min(start + block + halo, size)
        most = max(most, (hi - 1) // chunk - lo // chunk + 1)
    return most


@dataclasses.dataclass(frozen=True)
class BoundInput:
    """An operator input bound to a stored (or planned) array or table."""

    name: str
    dataset_id: str
    array: ArrayInfo | None = None
    table: str | None = None
    whole: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class ArrayRead:
    input: str
    info: ArrayInfo
    read: tuple[slice, ...]
    pad: tuple[tuple[int, int], ...]
    boundary: str = "reflect"


@dataclasses.dataclass(frozen=True)
class TableRead:
    """Read table ``table`` of ``dataset_id`` whole, or (``tile``: half-open cell
    ranges by dim) only the parts whose grid tiles overlap ``tile``."""

    input: str
    dataset_id: str
    table: str
    tile: tuple[tuple[str, int, int], ...] | None = None


@dataclasses.dataclass(frozen=True)
class ArrayWrite:
    """Write kernel output ``output`` to ``array`` (of the step's dataset or scratch) at ``region``."""

    output: str
    array: str
    region: tuple[slice, ...]
    scratch: bool = False


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """Everything one task needs, picklable; it names kernels by dotted path only.

    The fields are what every task has (where it is, what it reads and writes, its
    block and resources); ``payload`` is its pattern's typed step (``core/_patterns``).
    """

    key: str
    stage: str
    payload: TaskStep
    store_url: str
    #: the store's non-secret settings (``Store.shared_options``), to open it as the
    #: driver did
    store_options: dict[str, Any]
    dataset_id: str
    operator: str
    backend: str
    params: Any
    reads: tuple[ArrayRead | TableRead, ...]
    writes: tuple[ArrayWrite, ...]
    dims: tuple[str, ...]
    region: tuple[slice, ...]
    halo: tuple[tuple[int, int], ...]
    sizes: tuple[int, ...]
    coords: Mapping[str, Any]
    attrs: Mapping[str, Mapping[str, Any]]
    n_tasks: int
    cpus: float = 1.0
    gpus: float = 0.0
    memory: int = 0
    gpu_read: str = "pinned"
    recompute: bool = False
    #: custom scheduler resources per task (a step's ``resources``: core/_resources.py)
    resources: tuple[tuple[str, float], ...] = ()

    @property
    def kernels(self) -> tuple[str, ...]:
        """The kernels the task runs (dotted paths)."""
        return self.payload.kernels


@dataclasses.dataclass(frozen=True)
class Stage:
    name: str
    tasks: tuple[TaskSpec, ...]
    scratch: bool = False


@dataclasses.dataclass(frozen=True)
class OutputArraySpec:
    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: str
    attrs: Mapping[str, Any]
    fill_value: Any = None
    scratch: bool = False
    #: dims of the primary input this output has at another size (a full-axis
    #: resample): every task holds them whole and writes them whole
    resized: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class CoordSpec:
    """A coordinate array of the output: copied from an input array, or given values."""

    name: str
    dims: tuple[str, ...]
    source: ArrayInfo | None = None
    values: Any = None
    attrs: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class StepPlan:
    """The plan of one step (one operator application)."""

    step: str
    operator: Operator
    params: BaseModel
    inputs: dict[str, BoundInput]
    dataset_id: str
    backend: str
    arrays: dict[str, OutputArraySpec]
    coords: list[CoordSpec]
    tables: dict[str, TableOutput]
    stages: list[Stage]
    block: BlockChoice | None
    name: str | None = None
    hidden: bool = False
    reused: bool = False
    recompute: bool = False
    notes: list[str] = dataclasses.field(default_factory=list)
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: the CompositeLineage of the composite whose output this step plans (None otherwise)
    composite: Any = None
    #: the extents that order a fold of partial states (a reduction's partitions along
    #: the reduced dims and its steps, an aggregate's blocks), which set the bits of a
    #: floating-point result: a content id fixes them with the layout. None where no
    #: result depends on how the work is split (maps, full axes, one-pass reductions).
    partition: list[int] | None = None

    @property
    def n_tasks(self) -> int:
        return sum(len(s.tasks) for s in self.stages)

    @property
    def task_memory(self) -> int:
        return max((t.memory for s in self.stages for t in s.tasks), default=0)

    def layout(self) -> dict[str, list[int]]:
        """The output's chunking per array (what a content id fixes)."""
        return {k: list(a.chunks) for k, a in sorted(self.arrays.items()) if not a.scratch}

    def planned_info(self) -> DatasetInfo:
        """The output as a DatasetInfo, so later steps can plan against it before it exists."""
        from minjiang.storage import ArrayInfo, DatasetInfo, array_key, dataset_prefix

        prefix = dataset_prefix(self.dataset_id)
        arrays = {
            a.name: ArrayInfo(
                name=a.name,
                path=array_key(self.dataset_id, a.name),
                dims=a.dims,
                shape=a.shape,
                dtype=a.dtype,
                chunks=a.chunks,
                attrs=dict(a.attrs),
                dataset_id=self.dataset_id,
            )
            for a in self.arrays.values()
            if not a.scratch
        }
        coords = {}
        for c in self.coords:
            src = c.source
            shape = tuple(src.shape) if src is not None else tuple(_np().shape(c.values))
            dtype = src.dtype if src is not None else str(_np().asarray(c.values).dtype)
            coords[c.name] = ArrayInfo(
                name=c.name,
                path=array_key(self.dataset_id, c.name),
                dims=c.dims,
                shape=shape,
                dtype=dtype,
                chunks=shape,
                attrs=dict(src.attrs if src is not None else c.attrs),
                dataset_id=self.dataset_id,
            )
        tables: dict[str, list[str]] = {t: [] for t in self.tables}
        return DatasetInfo(
            id=self.dataset_id,
            prefix=prefix,
            attrs=dict(self.attrs),
            arrays=arrays,
            coords=coords,
            tables=tables,
        )


#: "Keep the step's parameters" (a task may instead carry none: rechunk tasks).
_SAME: Any = object()


def _np() -> Any:
    import numpy as np

    return np


class StepPlanner:
    """Plans one operator application. ``coord_lookup`` decodes coordinate values."""

    def __init__(
        self,
        *,
        store_url: str,
        budget: int,
        workers: int,
        run_budget: int | None = None,
        coord_values: Any,
        cpus_per_task: float = 1.0,
        gpu_read: str = "pinned",
        dataset_info: Callable[[str], Any] | None = None,
        store_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.store_url = store_url
        self.store_options = dict(store_options or {})
        self.budget = budget  # per task, when tasks run side by side
        self.workers = workers
        # a task with nothing beside it (one task over the whole array) has all of it
        self.run_budget = max(budget, run_budget if run_budget is not None else budget * workers)
        self.coord_values = coord_values  # (ArrayInfo) -> decoded values
        self.dataset_info = dataset_info  # (dataset id) -> DatasetInfo (its coords)
        self.cpus_per_task = cpus_per_task
        self.gpu_read = gpu_read  # how GPU tasks read (core/_devices.py)

    # ------------------------------------------------------------------ checks
    def bind(self, op: Operator, inputs: Mapping[str, BoundInput]) -> None:
        declared = {i.name for i in op.inputs}
        unknown = set(inputs) - declared
        if unknown:
            raise ContractError(
                f"{op.name}: unknown inputs {sorted(unknown)!r}; it takes {sorted(declared)!r}"
            )
        for spec in op.inputs:
            if spec.name not in inputs:
                if spec.optional:
                    continue
                raise ContractError(
                    f"{op.name}: input {spec.name!r} is required (inputs given: {sorted(inputs)!r})"
                )
            bound = inputs[spec.name]
            if spec.kind == "array":
                if bound.array is None:
                    raise ContractError(
                        f"{op.name}: input {spec.name!r} must be an array, got table {bound.table!r}"
                    )
                spec.check(bound.array, op.name)
            elif bound.table is None:
                raise ContractError(f"{op.name}: input {spec.name!r} must be a table")
        primary = self.primary(op, inputs)
        sizes = dict(zip(primary.dims, primary.shape, strict=True))
        for spec in op.inputs:
            other = inputs.get(spec.name)
            if other is None or other.array is None or other.name == op.primary.name:
                continue
            bound, arr = other, other.array
            for dim, size in zip(arr.dims, arr.shape, strict=True):
                if dim in spec.whole:
                    continue
                if dim not in sizes:
                    raise ContractError(
                        f"{op.name}: input {spec.name!r} has dim {dim!r} that the primary input "
                        f"{op.primary.name!r} lacks (dims {tuple(primary.dims)!r}); declare it in Input.whole "
                        "or align the inputs"
                    )
                if sizes[dim] != size:
                    raise ContractError(
                        f"{op.name}: input {spec.name!r} has {dim}={size} but {op.primary.name!r} has "
                        f"{dim}={sizes[dim]}; the inputs must share the grid"
                    )

    def plan_inputs(self, inputs: Mapping[str, BoundInput]) -> dict[str, PlanInput]:
        """The array inputs as the operator's callables see them (:class:`PlanInput`)."""
        out = {}
        for k, b in inputs.items():
            if b.array is None:
                continue
            coords = self.dataset_info(b.dataset_id).coords if self.dataset_info else {}
            out[k] = PlanInput(b.array, coords, self.coord_values)
        return out

    @staticmethod
    def primary(op: Operator, inputs: Mapping[str, BoundInput]) -> ArrayInfo:
        bound = inputs.get(op.primary.name)
        if bound is None or bound.array is None:
            raise ContractError(f"{op.name}: primary input {op.primary.name!r} is missing")
        return bound.array

    def check_chunks(self, op: Operator, inputs: Mapping[str, BoundInput]) -> None:
        for b in inputs.values():
            if b.array is None:
                continue
            cb = math.prod(b.array.chunks) * _np().dtype(b.array.dtype).itemsize
            if cb > MAX_CHUNK_BYTES:
                raise MemoryBudgetError(
                    f"{op.name}: input {b.name!r} (dataset {b.dataset_id}) has chunks {tuple(b.array.chunks)!r} "
                    f"that decode to {format_bytes(cb)} each, over the {format_bytes(MAX_CHUNK_BYTES)} limit; "
                    "re-ingest it with smaller chunks"
                )

    # ------------------------------------------------------------------ outputs
    def output_arrays(
        self,
        op: Operator,
        params: Any,
        inputs: Mapping[str, BoundInput],
        *,
        drop: tuple[str, ...] = (),
        chunks: Mapping[str, int] | None = None,
        resizable: tuple[str, ...] = (),
    ) -> tuple[dict[str, OutputArraySpec], dict[str, TableOutput]]:
        """The step's output arrays and tables. An output may give a dim of the
        primary input another size only when each task holds that dim whole
        (``resizable``: a full-axis pattern's dims)."""
        primary = self.primary(op, inputs)
        infos = self.plan_inputs(inputs)
        psizes = dict(zip(primary.dims, primary.shape, strict=True))
        pchunks = dict(zip(primary.dims, primary.chunks, strict=True))
        pchunks.update(chunks or {})
        arrays: dict[str, OutputArraySpec] = {}
        tables: dict[str, TableOutput] = {}
        for out in op.resolve_outputs(params, infos):
            if isinstance(out, TableOutput):
                tables[out.name] = out
                continue
            dims = (
                tuple(out.dims)
                if out.dims is not None
                else tuple(d for d in primary.dims if d not in drop)
            )
            shape, ch, resized = [], [], []
            for d in dims:
                if d in out.sizes:
                    size = int(out.sizes[d])
                    if d in psizes and d not in drop and size != psizes[d]:
                        if d not in resizable:
                            raise ContractError(
                                f"{op.name}: output {out.name!r} gives dim {d!r} size {size} "
                                f"but the input has {psizes[d]}; only a FullAxis operator "
                                f"over {d!r} (each task holds it whole) may change its size"
                            )
                        resized.append(d)
                    shape.append(size)
                    ch.append(size)
                elif d in psizes and d not in drop:
                    shape.append(psizes[d])
                    ch.append(pchunks[d])
                else:
                    raise ContractError(
                        f"{op.name}: output {out.name!r} has dim {d!r} with no size; give it in ArrayOutput.sizes"
                    )
            dtype = out.dtype or primary.dtype
            arrays[out.name] = OutputArraySpec(
                out.name,
                dims,
                tuple(shape),
                tuple(ch),
                str(_np().dtype(dtype)),
                dict(out.attrs),
                out.fill_value,
                resized=tuple(resized),
            )
        return arrays, tables

    def output_coords(
        self,
        op: Operator,
        params: Any,
        inputs: Mapping[str, BoundInput],
        arrays: Mapping[str, OutputArraySpec],
        source_coords: Mapping[str, ArrayInfo],
    ) -> list[CoordSpec]:
        used_dims = {d for a in arrays.values() for d in a.dims}
        infos = self.plan_inputs(inputs)
        coords: list[CoordSpec] = []
        new_dim_coords: dict[str, Any] = {}
        for out in op.resolve_outputs(params, infos):
            if isinstance(out, ArrayOutput):
                new_dim_coords.update(out.coords)
        sizes = {d: s for a in arrays.values() for d, s in zip(a.dims, a.shape, strict=True)}
        for name, value in new_dim_coords.items():
            if isinstance(value, tuple) and len(value) == 3:
                dims, values, attrs = value
                coords.append(CoordSpec(name, tuple(dims), values=values, attrs=dict(attrs)))
            else:
                coords.append(CoordSpec(name, (name,), values=value))
        for name, info in source_coords.items():
            if name in new_dim_coords:
                continue
            if all(
                d in used_dims and sizes.get(d) == s
                for d, s in zip(info.dims, info.shape, strict=True)
            ):
                coords.append(CoordSpec(name, tuple(info.dims), source=info))
        return coords

    # ------------------------------------------------------------------ helpers
    def task_memory(
        self, r: Request, in_bytes: int, out_bytes: int, block: tuple[int, ...], codec: int
    ) -> int:
        """A task's projected peak: the operator's formula (its arrays and kernel
        scratch) plus zarr's codec buffers (``codec``, from :meth:`codec`). The block
        choice checks this figure against the budget and every task carries it."""
        size = TaskSize(in_bytes, out_bytes, block, r.itemsize, r.dims)
        return int(r.op.memory(size, r.params)) + codec

    def block_memory(
        self,
        r: Request,
        block: tuple[int, ...],
        halo: Mapping[str, int],
        arrays: Mapping[str, OutputArraySpec],
        *,
        outputs: Any = None,
        override: Mapping[str, ArrayInfo] | None = None,
        held: Callable[[tuple[int, ...]], tuple[int, ...]] | None = None,
    ) -> int:
        """The projected peak of a task over ``block`` cells (its halo padded).

        ``outputs(block, part)``, when given, is ``(out_bytes, arrays written)`` of such
        a task holding ``part`` of its block at once (a reduction's partial writes its
        state, not the outputs, and holds more states while it folds steps).
        ``held(block)``, when given, is the part of the block the task reads, computes
        and writes at once (a streamed task's step): the figure is that part's.
        """
        part = held(block) if held is not None else block
        _, in_bytes = self.reads(r, tuple(slice(0, b) for b in part), halo, "reflect", override)
        if outputs is not None:
            out_bytes, written = outputs(block, part)
        else:
            out_bytes, written = self.out_bytes(arrays, r.dims, part), arrays
        codec = self.codec(r, part, halo, written, override)
        return self.task_memory(r, in_bytes, out_bytes, part, codec)

    @staticmethod
    def stepper(
        r: Request,
        arrays: Mapping[str, OutputArraySpec],
        tables: Mapping[str, Any],
        whole: tuple[str, ...] = (),
    ) -> Callable[[tuple[int, ...]], tuple[int, ...]] | None:
        """The step (``stream_step``) a task of a block works in, whole along the dims
        in ``whole``, or None when its tasks cannot be worked in steps: table outputs,
        an output not on the primary's grid and chunks (over the other dims, or over
        all dims with whole chunks along ``whole``), an input that is a table, or along
        a stepped dim is read whole or chunked unlike the primary, or GPU tasks (which
        move whole blocks to the device). Every step then reads and writes whole
        chunks."""
        stepped = [i for i, d in enumerate(r.dims) if d not in whole]
        grid = tuple(tuple(v[i] for i in stepped) for v in (r.dims, r.shape, r.chunks))
        if tables or r.backend == "gpu" or not stepped:
            return None

        def on_grid(a: OutputArraySpec) -> bool:
            if (a.dims, a.shape, a.chunks) == grid:
                return True
            # an output that keeps the whole dims (a full-axis step's): chunked whole
            # along them and like the primary along the others
            return (a.dims, a.shape) == (tuple(r.dims), tuple(r.shape)) and all(
                c == (n if d in whole else rc)
                for d, c, n, rc in zip(r.dims, a.chunks, r.shape, r.chunks, strict=True)
            )

        if any(not on_grid(a) or a.resized for a in arrays.values()):
            return None
        pos = {d: i for i, d in enumerate(r.dims)}
        for spec in r.op.inputs:
            b = r.inputs.get(spec.name)
            if b is None:
                continue
            if b.array is None or b.table is not None:
                return None
            for d, c in zip(b.array.dims, b.array.chunks, strict=True):
                if d not in pos:
                    return None
                if d not in whole and (d in spec.whole or c != r.chunks[pos[d]]):
                    return None
        fixed = [pos[d] for d in whole]

        def step(block: tuple[int, ...]) -> tuple[int, ...]:
            return stream_step(block, r.chunks, r.itemsize, whole=fixed)

        return step

    def codec(
        self,
        r: Request,
        block: tuple[int, ...],
        halo: Mapping[str, int],
        arrays: Mapping[str, OutputArraySpec],
        override: Mapping[str, ArrayInfo] | None = None,
    ) -> int:
        """Zarr's codec buffers of the stage's worst task of ``block`` cells: the most
        chunks any such task decodes (with its halo) or encodes (``codec_bytes``)."""
        pos = {d: i for i, d in enumerate(r.dims)}
        decoded = []
        for spec in r.op.inputs:
            b = r.inputs.get(spec.name)
            if b is None or b.table is not None:
                continue
            info = (override or {}).get(spec.name, b.array)
            assert info is not None
            n = 1
            for d, size, c in zip(info.dims, info.shape, info.chunks, strict=True):
                if d in spec.whole or d not in pos:
                    n *= math.ceil(size / c)
                else:
                    n *= chunks_touched(size, c, block[pos[d]], halo.get(d, 0))
            decoded.append((n, math.prod(info.chunks) * _np().dtype(info.dtype).itemsize))
        encoded = [
            (
                math.prod(
                    chunks_touched(s, c, block[pos[d]]) if d in pos else math.ceil(s / c)
                    for d, s, c in zip(a.dims, a.shape, a.chunks, strict=True)
                ),
                math.prod(a.chunks) * _np().dtype(a.dtype).itemsize,
            )
            for a in arrays.values()
        ]
        return codec_bytes(decoded, encoded)

    def budget_error(
        self, r: Request, need: int, what: str, *, alone: bool = False
    ) -> MemoryBudgetError:
        """``alone``: the task is the step's only one, and had the run's whole budget."""
        if alone:
            suggested = format_bytes(need * 1.25).replace(" ", "")
            return MemoryBudgetError(
                f"step {r.step!r} ({r.op.name}): its one task ({what}) needs "
                f"{format_bytes(need)} but the memory budget is {format_bytes(self.run_budget)}; "
                f"raise --memory-budget (e.g. --memory-budget {suggested})"
            )
        suggested = format_bytes(need * self.workers * 1.25).replace(" ", "")
        return MemoryBudgetError(
            f"step {r.step!r} ({r.op.name}): the smallest task ({what}) needs {format_bytes(need)} "
            f"but the per-task budget is {format_bytes(self.budget)}; raise --memory-budget "
            f"(e.g. --memory-budget {suggested}) or re-chunk the input smaller"
        )

    def _block_ctx(
        self,
        dims: tuple[str, ...],
        region: tuple[slice, ...],
        coord_arrays: Mapping[str, ArrayInfo],
    ) -> dict[str, Any]:
        out = {}
        for dim, sl in zip(dims, region, strict=True):
            info = coord_arrays.get(dim)
            if info is not None and tuple(info.dims) == (dim,):
                out[dim] = self.coord_values(info)[sl]
        return out

    @staticmethod
    def reads(
        r: Request,
        region: tuple[slice, ...],
        halo: Mapping[str, int],
        boundary: str,
        override: Mapping[str, ArrayInfo] | None = None,
    ) -> tuple[list[ArrayRead | TableRead], int]:
        """What a task over ``region`` (of the primary's dims) reads, and its bytes."""
        reads: list[ArrayRead | TableRead] = []
        nbytes = 0
        pos = {d: i for i, d in enumerate(r.dims)}
        for spec in r.op.inputs:
            b = r.inputs.get(spec.name)
            if b is None:
                continue
            if b.table is not None:
                tile = None
                if spec.tiled:
                    tile = tuple(
                        (d, max(sl.start - halo.get(d, 0), 0), min(sl.stop + halo.get(d, 0), n))
                        for d, sl, n in zip(r.dims, region, r.shape, strict=True)
                    )
                reads.append(TableRead(spec.name, b.dataset_id, b.table, tile))
                continue
            info = (override or {}).get(spec.name, b.array)
            assert info is not None
            rd, pad = [], []
            for d, n in zip(info.dims, info.shape, strict=True):
                if d in spec.whole or d not in pos:
                    rd.append(slice(0, n))
                    pad.append((0, 0))
                    continue
                sl = region[pos[d]]
                h = halo.get(d, 0)
                lo, hi = sl.start - h, sl.stop + h
                rd.append(slice(max(lo, 0), min(hi, n)))
                pad.append((max(0, -lo), max(0, hi - n)))
            reads.append(ArrayRead(spec.name, info, tuple(rd), tuple(pad), boundary))
            cells = math.prod(
                (s.stop - s.start) + p[0] + p[1] for s, p in zip(rd, pad, strict=True)
            )
            nbytes += cells * _np().dtype(info.dtype).itemsize
        return reads, nbytes

    @staticmethod
    def out_bytes(
        arrays: Mapping[str, OutputArraySpec], dims: tuple[str, ...], block: tuple[int, ...]
    ) -> int:
        ext = dict(zip(dims, block, strict=True))
        return sum(
            math.prod(
                s if d in a.resized else ext.get(d, s) for d, s in zip(a.dims, a.shape, strict=True)
            )
            * _np().dtype(a.dtype).itemsize
            for a in arrays.values()
        )

    @staticmethod
    def out_region(
        a: OutputArraySpec, dims: tuple[str, ...], region: tuple[slice, ...]
    ) -> tuple[slice, ...]:
        pos = {d: i for i, d in enumerate(dims)}
        return tuple(
            region[pos[d]] if d in pos and d not in a.resized else slice(0, s)
            for d, s in zip(a.dims, a.shape, strict=True)
        )

    @classmethod
    def writes(
        cls,
        arrays: Mapping[str, OutputArraySpec],
        dims: tuple[str, ...],
        region: tuple[slice, ...],
        written: set[tuple[str, tuple[tuple[int, int], ...]]],
    ) -> list[ArrayWrite]:
        """What the task over ``region`` writes: each output's part of the region.

        An output that does not span every split dim (the ``(mode, time)`` PCs of an EOF
        split over space, say) has the same region in several tasks; only the first of
        them writes it (one writer per chunk), the others' copies are dropped.
        """
        out = []
        for a in arrays.values():
            target = cls.out_region(a, dims, region)
            key = (a.name, tuple((t.start, t.stop) for t in target))
            if key not in written:
                written.add(key)
                out.append(ArrayWrite(a.name, a.name, target, scratch=a.scratch))
        return out

    @staticmethod
    def outputs(
        arrays: Mapping[str, OutputArraySpec] | None = None,
        tables: Mapping[str, TableOutput] | None = None,
    ) -> Outputs:
        """What a kernel writing ``arrays`` and ``tables`` must return."""
        from minjiang.core._tasks import Outputs

        arrays, tables = arrays or {}, tables or {}
        return Outputs(
            dims={a.name: a.dims for a in arrays.values()},
            dtypes={a.name: a.dtype for a in arrays.values()},
            tables={t.name: dict(t.columns) for t in tables.values()},
        )

    def task(
        self,
        r: Request,
        *,
        key: str,
        payload: TaskStep,
        region: tuple[slice, ...],
        n_tasks: int,
        memory: int,
        reads: Sequence[ArrayRead | TableRead] = (),
        writes: Sequence[ArrayWrite] = (),
        dims: tuple[str, ...] | None = None,
        sizes: tuple[int, ...] | None = None,
        halo: Mapping[str, int] | None = None,
        backend: str | None = None,
        params: Any = _SAME,
        coords: bool = True,
    ) -> TaskSpec:
        """One task of ``r``: the fields every task has, around its pattern's payload."""
        dims = r.dims if dims is None else dims
        halo = halo or {}
        backend = r.backend if backend is None else backend
        return TaskSpec(
            key=key,
            stage=key.split("/", 1)[0],
            payload=payload,
            store_url=self.store_url,
            store_options=self.store_options,
            dataset_id=r.dataset_id,
            operator=r.op.name,
            backend=backend,
            params=r.params if params is _SAME else params,
            reads=tuple(reads),
            writes=tuple(writes),
            dims=dims,
            region=region,
            halo=tuple((halo.get(d, 0), halo.get(d, 0)) for d in dims),
            sizes=r.shape if sizes is None else sizes,
            coords=self._block_ctx(dims, region, r.source_coords)
            if coords and r.block_coords
            else {},
            attrs=r.attrs if coords else {},
            n_tasks=n_tasks,
            cpus=self.cpus_per_task,
            gpus=1.0 if backend == "gpu" else 0.0,
            memory=memory,
            gpu_read=self.gpu_read,
            recompute=r.recompute,
        )

    # ------------------------------------------------------------------ patterns
    def plan(
        self,
        *,
        step: str,
        op: Operator,
        params: Any,
        inputs: Mapping[str, BoundInput],
        dataset_id: str,
        backend: str,
        source_coords: Mapping[str, ArrayInfo],
        recompute: bool = False,
        block_coords: bool = True,
    ) -> StepPlan:
        """Plan one step; ``recompute`` stages it apart from a committed copy of its id.

        ``block_coords=False`` leaves every task's ``coords`` empty: for a plan whose
        tasks never run (a provisional plan that only fixes the layout, a reused
        step), so that planning decodes no coordinates for them. Everything else in
        the plan (stages, tasks, layout, memory) is the same.
        """
        self.bind(op, inputs)
        self.check_chunks(op, inputs)
        r = Request(
            step,
            op,
            params,
            dict(inputs),
            dataset_id,
            backend,
            source_coords,
            self.primary(op, inputs),
            recompute,
            block_coords,
        )
        from minjiang.core._patterns import PLANNERS

        planner = PLANNERS.get(type(op.pattern))
        if planner is None:
            raise PlanError(
                f"{op.name}: chunk pattern {type(op.pattern).__name__} is not planned per step "
                f"(patterns planned here: {sorted(t.__name__ for t in PLANNERS)!r}); a Composite "
                "is expanded into sub-steps by the plan builder"
            )
        return planner(self, r, op.pattern)

    def new_plan(
        self,
        r: Request,
        arrays: dict[str, OutputArraySpec],
        tables: dict[str, TableOutput],
        stages: list[Stage],
        block: BlockChoice,
    ) -> StepPlan:
        real = {k: a for k, a in arrays.items() if not a.scratch}
        return StepPlan(
            step=r.step,
            operator=r.op,
            params=r.params,
            inputs=dict(r.inputs),
            dataset_id=r.dataset_id,
            backend=r.backend,
            arrays=arrays,
            coords=self.output_coords(r.op, r.params, r.inputs, real, r.source_coords),
            tables=tables,
            stages=stages,
            block=block,
            recompute=r.recompute,
        )

    def pattern_dims(self, r: Request, spec: Any, what: str) -> tuple[str, ...]:
        """The dims a Reduce or FullAxis names (static or from params), checked."""
        dims = tuple(spec(r.params, self.plan_inputs(r.inputs)) if callable(spec) else spec)
        if not dims or any(d not in r.dims for d in dims):
            raise ContractError(
                f"{r.op.name}: {what} {list(dims)!r}, but input {r.op.primary.name!r} has dims {r.dims!r}"
            )
        return dims

    def choose(
        self,
        r: Request,
        halo: Mapping[str, int],
        arrays: Mapping[str, OutputArraySpec],
        *,
        chunks: tuple[int, ...] | None = None,
        fixed: Mapping[int, int] | None = None,
        span: tuple[bool, ...] = (),
        partial_bytes: Any = None,
        override: Mapping[str, ArrayInfo] | None = None,
        required: bool = True,
        outputs: Any = None,
        held: Callable[[tuple[int, ...]], tuple[int, ...]] | None = None,
    ) -> BlockChoice:
        """The cheapest block; over budget raises, or returns None if not ``required``.

        ``outputs`` and ``held`` are as for :meth:`block_memory`. A block ``fixed`` to
        the whole array is the step's only task: nothing runs beside it, so it has the
        run's whole budget (:attr:`run_budget`) instead of a worker's share.
        """
        chunks = r.chunks if chunks is None else chunks
        whole = dict(fixed or {})
        alone = bool(whole) and all(whole.get(i) == n for i, n in enumerate(r.shape))
        budget = self.run_budget if alone else self.budget

        def memory(block: tuple[int, ...]) -> int:
            return self.block_memory(
                r, block, halo, arrays, outputs=outputs, override=override, held=held
            )

        def compute(block: tuple[int, ...]) -> float:
            assert r.op.compute is not None
            # an interior task: the block and its halo on both sides
            padded = tuple(
                min(b + 2 * halo.get(d, 0), s)
                for b, d, s in zip(block, r.dims, r.shape, strict=True)
            )
            in_bytes = math.prod(padded) * r.itemsize
            out_bytes = self.out_bytes(arrays, r.dims, block)
            halos = tuple(halo.get(d, 0) for d in r.dims)
            size = TaskSize(in_bytes, out_bytes, block, r.itemsize, r.dims, halos)
            return float(r.op.compute(size, r.params))

        choice = choose_block(
            r.shape,
            chunks,
            itemsize=r.itemsize,
            halo=[halo.get(d, 0) for d in r.dims],
            memory=memory,
            budget=budget,
            workers=self.workers,
            span=span,
            partial_bytes=partial_bytes,
            fixed=fixed,
            compute=compute if r.op.compute is not None else None,
        )
        if choice is None:
            if not required:
                return None  # type: ignore[return-value]
            smallest = tuple(min(c, s) for c, s in zip(chunks, r.shape, strict=True))
            if fixed:
                smallest = tuple(fixed.get(i, b) for i, b in enumerate(smallest))
            raise self.budget_error(
                r, memory(smallest), f"block {smallest!r} of {r.dims!r}", alone=alone
            )
        return choice

    def block_stage(
        self,
        r: Request,
        name: str,
        block: tuple[int, ...],
        payload: TaskStep,
        arrays: Mapping[str, OutputArraySpec],
        *,
        halo: Mapping[str, int] | None = None,
        boundary: str = "reflect",
        override: Mapping[str, ArrayInfo] | None = None,
        scratch: bool = False,
        held: Callable[[tuple[int, ...]], tuple[int, ...]] | None = None,
    ) -> Stage:
        """One task per block of the primary's grid: read (+halo), kernel, write
        (``held``: as for :meth:`block_memory`)."""
        halo = halo or {}
        regions = iter_blocks(r.shape, block)
        tasks = []
        written: set[tuple[str, tuple[tuple[int, int], ...]]] = set()
        codec = self.codec(r, block, halo, arrays, override)
        for i, region in enumerate(regions):
            reads, in_bytes = self.reads(r, region, halo, boundary, override)
            writes = self.writes(arrays, r.dims, region, written)
            blk = tuple(s.stop - s.start for s in region)
            if held is None:
                out_bytes = self.out_bytes(arrays, r.dims, blk)
                mem = self.task_memory(r, in_bytes, out_bytes, blk, codec)
            else:
                mem = self.block_memory(r, blk, halo, arrays, override=override, held=held)
            tasks.append(
                self.task(
                    r,
                    key=f"{name}/{i:06d}",
                    payload=payload,
                    region=region,
                    n_tasks=len(regions),
                    memory=mem,
                    reads=reads,
                    writes=writes,
                    halo=halo,
                )
            )
        return Stage(name, tuple(tasks), scratch=scratch)


@dataclasses.dataclass(frozen=True)
class Request:
    """One operator application being planned, with what every pattern derives from it."""

    step: str
    op: Operator
    params: Any
    inputs: dict[str, BoundInput]
    dataset_id: str
    backend: str
    source_coords: Mapping[str, ArrayInfo]
    primary: ArrayInfo
    recompute: bool = False
    #: give each task its block's coordinate values (False: a plan whose tasks never run)
    block_coords: bool = True

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(self.primary.dims)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.primary.shape)

    @property
    def chunks(self) -> tuple[int, ...]:
        return tuple(self.primary.chunks)

    @property
    def itemsize(self) -> int:
        return int(_np().dtype(self.primary.dtype).itemsize)

    @property
    def attrs(self) -> dict[str, dict[str, Any]]:
        return {k: dict(v.array.attrs) for k, v in self.inputs.items() if v.array is not None}


def op_input(op: Operator, name: str) -> Any:
    return next(i for i in op.inputs if i.name == name)

"""The planner: a whole plan is built and checked before any task runs.

For each step it validates the operator's contract against its inputs, computes the
output's content id, decides the backend, chooses the task shape (``_blocks``),
projects each task's memory and refuses an infeasible plan with a message that names
the step, both numbers with units, and the fix. Each chunk pattern becomes one or
more *stages* of independent tasks (see ``docs/architecture.md``):

============ ===============================================================
map          ``block``
reduce       ``block`` (when a task spans the reduced dims) or
             ``reduce_partial`` → ``reduce_combine``
full_axis    ``block`` (storage already spans the axis) or
             ``rechunk`` (to a bounded-memory intermediate Zarr) → ``block``
aggregate    ``agg_partial`` → ``agg_combine``
composite    one step plan per sub-step (intermediates are hidden datasets)
============ ===============================================================
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from minjiang.core._blocks import TASK_OVERHEAD_BYTES, BlockChoice, choose_block, iter_blocks
from minjiang.core._operator import (
    Aggregate,
    ArrayOutput,
    Composite,
    FullAxis,
    Map,
    Operator,
    Reduce,
    TableOutput,
    TaskSize,
    dotted_path,
)
from minjiang.core._units import format_bytes
from minjiang.core.errors import ContractError, MemoryBudgetError, PlanError

if TYPE_CHECKING:
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
#: Memory one full-axis pencil task aims at; sets the pencil (and output) chunking.
PENCIL_TARGET_BYTES = 256 << 20
#: Bytes one rechunk task reads (whole source chunks), so its overhead stays small.
RECHUNK_TASK_BYTES = 64 << 20


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
    input: str
    dataset_id: str
    table: str


@dataclasses.dataclass(frozen=True)
class ArrayWrite:
    """Write kernel output ``output`` to ``array`` (of the step's dataset or scratch) at ``region``."""

    output: str
    array: str
    region: tuple[slice, ...]
    scratch: bool = False


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """Everything one task needs, picklable; it names kernels by dotted path only."""

    key: str
    stage: str
    kind: str
    store_url: str
    dataset_id: str
    operator: str
    backend: str
    kernels: tuple[str, ...]
    params: Any
    reads: tuple[ArrayRead | TableRead, ...]
    writes: tuple[ArrayWrite, ...]
    tables: tuple[str, ...]
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
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    gpu_read: str = "pinned"
    recompute: bool = False


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

    @property
    def n_tasks(self) -> int:
        return sum(len(s.tasks) for s in self.stages)

    @property
    def task_memory(self) -> int:
        return max((t.memory for s in self.stages for t in s.tasks), default=0)

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


def _halo_of(spec: Any, params: Any, inputs: Mapping[str, ArrayInfo]) -> dict[str, int]:
    halo = spec(params, inputs) if callable(spec) else spec
    out = {}
    for dim, h in dict(halo or {}).items():
        if int(h) < 0:
            raise ContractError(f"halo along {dim!r} is {h}; it must be >= 0")
        out[dim] = int(h)
    return out


class StepPlanner:
    """Plans one operator application. ``coord_lookup`` decodes coordinate values."""

    def __init__(
        self,
        *,
        store_url: str,
        budget: int,
        workers: int,
        coord_values: Any,
        cpus_per_task: float = 1.0,
        gpu_read: str = "pinned",
    ) -> None:
        self.store_url = store_url
        self.budget = budget
        self.workers = workers
        self.coord_values = coord_values  # (ArrayInfo) -> decoded values
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
    ) -> tuple[dict[str, OutputArraySpec], dict[str, TableOutput]]:
        primary = self.primary(op, inputs)
        infos = {k: v.array for k, v in inputs.items() if v.array is not None}
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
            shape, ch = [], []
            for d in dims:
                if d in out.sizes:
                    shape.append(int(out.sizes[d]))
                    ch.append(int(out.sizes[d]))
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
        infos = {k: v.array for k, v in inputs.items() if v.array is not None}
        coords: list[CoordSpec] = []
        new_dim_coords: dict[str, Any] = {}
        for out in op.resolve_outputs(params, infos):
            if isinstance(out, ArrayOutput):
                new_dim_coords.update(out.coords)
        sizes = {d: s for a in arrays.values() for d, s in zip(a.dims, a.shape, strict=True)}
        for name, values in new_dim_coords.items():
            coords.append(CoordSpec(name, (name,), values=values))
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
    def _memory(self, r: _Request, in_bytes: int, out_bytes: int, block: tuple[int, ...]) -> int:
        size = TaskSize(in_bytes, out_bytes, block, r.itemsize, r.dims)
        return int(r.op.memory(size, r.params))

    def _budget_error(self, r: _Request, need: int, what: str) -> MemoryBudgetError:
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
    def _reads(
        r: _Request,
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
                reads.append(TableRead(spec.name, b.dataset_id, b.table))
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
    def _out_bytes(
        arrays: Mapping[str, OutputArraySpec], dims: tuple[str, ...], block: tuple[int, ...]
    ) -> int:
        ext = dict(zip(dims, block, strict=True))
        return sum(
            math.prod(ext.get(d, s) for d, s in zip(a.dims, a.shape, strict=True))
            * _np().dtype(a.dtype).itemsize
            for a in arrays.values()
        )

    @staticmethod
    def _out_region(
        a: OutputArraySpec, dims: tuple[str, ...], region: tuple[slice, ...]
    ) -> tuple[slice, ...]:
        pos = {d: i for i, d in enumerate(dims)}
        return tuple(
            region[pos[d]] if d in pos else slice(0, s)
            for d, s in zip(a.dims, a.shape, strict=True)
        )

    @classmethod
    def _writes(
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
            target = cls._out_region(a, dims, region)
            key = (a.name, tuple((t.start, t.stop) for t in target))
            if key not in written:
                written.add(key)
                out.append(ArrayWrite(a.name, a.name, target, scratch=a.scratch))
        return out

    def _task(
        self,
        r: _Request,
        *,
        key: str,
        kind: str,
        kernels: tuple[str, ...],
        region: tuple[slice, ...],
        n_tasks: int,
        memory: int,
        reads: Sequence[ArrayRead | TableRead] = (),
        writes: Sequence[ArrayWrite] = (),
        dims: tuple[str, ...] | None = None,
        sizes: tuple[int, ...] | None = None,
        halo: Mapping[str, int] | None = None,
        arrays: Mapping[str, OutputArraySpec] | None = None,
        tables: Mapping[str, TableOutput] | None = None,
        backend: str | None = None,
        params: Any = _SAME,
        coords: bool = True,
        extra: Mapping[str, Any] | None = None,
    ) -> TaskSpec:
        dims = r.dims if dims is None else dims
        halo = halo or {}
        extra = dict(extra or {})
        if arrays:
            extra["out_dims"] = {a.name: a.dims for a in arrays.values()}
            extra["out_dtypes"] = {a.name: a.dtype for a in arrays.values()}
        if tables:
            extra["table_columns"] = {t.name: dict(t.columns) for t in tables.values()}
        backend = r.backend if backend is None else backend
        return TaskSpec(
            key=key,
            stage=key.split("/", 1)[0],
            kind=kind,
            store_url=self.store_url,
            dataset_id=r.dataset_id,
            operator=r.op.name,
            backend=backend,
            kernels=kernels,
            params=r.params if params is _SAME else params,
            reads=tuple(reads),
            writes=tuple(writes),
            tables=tuple(tables or ()),
            dims=dims,
            region=region,
            halo=tuple((halo.get(d, 0), halo.get(d, 0)) for d in dims),
            sizes=r.shape if sizes is None else sizes,
            coords=self._block_ctx(dims, region, r.source_coords) if coords else {},
            attrs=r.attrs if coords else {},
            n_tasks=n_tasks,
            cpus=self.cpus_per_task,
            gpus=1.0 if backend == "gpu" else 0.0,
            memory=memory,
            extra=extra,
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
    ) -> StepPlan:
        """Plan one step; ``recompute`` stages it apart from a committed copy of its id."""
        self.bind(op, inputs)
        self.check_chunks(op, inputs)
        r = _Request(
            step,
            op,
            params,
            dict(inputs),
            dataset_id,
            backend,
            source_coords,
            self.primary(op, inputs),
            recompute,
        )
        pattern = op.pattern
        if isinstance(pattern, Map):
            return self._plan_map(r, pattern)
        if isinstance(pattern, Reduce):
            return self._plan_reduce(r, pattern)
        if isinstance(pattern, FullAxis):
            return self._plan_full_axis(r, pattern)
        if isinstance(pattern, Aggregate):
            return self._plan_aggregate(r, pattern)
        if isinstance(pattern, Composite):
            raise PlanError(
                f"{op.name}: composite operators are expanded by the runtime, not planned directly"
            )
        raise PlanError(f"{op.name}: unknown chunk pattern {type(pattern).__name__}")

    def _new_plan(
        self,
        r: _Request,
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

    def _pattern_dims(self, r: _Request, spec: Any, what: str) -> tuple[str, ...]:
        """The dims a Reduce or FullAxis names (static or from params), checked."""
        dims = tuple(spec(r.params, r.infos) if callable(spec) else spec)
        if not dims or any(d not in r.dims for d in dims):
            raise ContractError(
                f"{r.op.name}: {what} {list(dims)!r}, but input {r.op.primary.name!r} has dims {r.dims!r}"
            )
        return dims

    def _choose(
        self,
        r: _Request,
        halo: Mapping[str, int],
        arrays: Mapping[str, OutputArraySpec],
        *,
        chunks: tuple[int, ...] | None = None,
        fixed: Mapping[int, int] | None = None,
        span: tuple[bool, ...] = (),
        partial_bytes: Any = None,
        override: Mapping[str, ArrayInfo] | None = None,
        required: bool = True,
    ) -> BlockChoice:
        """The cheapest block; over budget raises, or returns None if not ``required``."""
        chunks = r.chunks if chunks is None else chunks

        def memory(block: tuple[int, ...]) -> int:
            region = tuple(slice(0, b) for b in block)
            _, in_bytes = self._reads(r, region, halo, "reflect", override)
            in_bytes += 2 * math.prod(chunks) * r.itemsize  # chunks being decoded
            return self._memory(r, in_bytes, self._out_bytes(arrays, r.dims, block), block)

        def compute(block: tuple[int, ...]) -> float:
            assert r.op.compute is not None
            # an interior task: the block and its halo on both sides
            padded = tuple(
                min(b + 2 * halo.get(d, 0), s)
                for b, d, s in zip(block, r.dims, r.shape, strict=True)
            )
            in_bytes = math.prod(padded) * r.itemsize
            out_bytes = self._out_bytes(arrays, r.dims, block)
            halos = tuple(halo.get(d, 0) for d in r.dims)
            size = TaskSize(in_bytes, out_bytes, block, r.itemsize, r.dims, halos)
            return float(r.op.compute(size, r.params))

        choice = choose_block(
            r.shape,
            chunks,
            itemsize=r.itemsize,
            halo=[halo.get(d, 0) for d in r.dims],
            memory=memory,
            budget=self.budget,
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
            raise self._budget_error(r, memory(smallest), f"block {smallest!r} of {r.dims!r}")
        return choice

    def _block_stage(
        self,
        r: _Request,
        name: str,
        block: tuple[int, ...],
        kernels: tuple[str, ...],
        arrays: Mapping[str, OutputArraySpec],
        tables: Mapping[str, TableOutput],
        *,
        halo: Mapping[str, int] | None = None,
        boundary: str = "reflect",
        kind: str = "block",
        override: Mapping[str, ArrayInfo] | None = None,
        extra: Mapping[str, Any] | None = None,
        scratch: bool = False,
    ) -> Stage:
        """One task per block of the primary's grid: read (+halo), kernel, write."""
        halo = halo or {}
        regions = iter_blocks(r.shape, block)
        tasks = []
        written: set[tuple[str, tuple[tuple[int, int], ...]]] = set()
        for i, region in enumerate(regions):
            reads, in_bytes = self._reads(r, region, halo, boundary, override)
            writes = self._writes(arrays, r.dims, region, written)
            blk = tuple(s.stop - s.start for s in region)
            mem = self._memory(r, in_bytes, self._out_bytes(arrays, r.dims, blk), blk)
            tasks.append(
                self._task(
                    r,
                    key=f"{name}/{i:06d}",
                    kind=kind,
                    kernels=kernels,
                    region=region,
                    n_tasks=len(regions),
                    memory=mem,
                    reads=reads,
                    writes=writes,
                    halo=halo,
                    arrays=arrays,
                    tables=tables,
                    extra=extra,
                )
            )
        return Stage(name, tuple(tasks), scratch=scratch)

    def _plan_map(self, r: _Request, pattern: Map) -> StepPlan:
        halo = _halo_of(pattern.halo, r.params, r.infos)
        boundary = pattern.boundary(r.params) if callable(pattern.boundary) else pattern.boundary
        arrays, tables = self.output_arrays(r.op, r.params, r.inputs)
        # A wrapped halo comes from the far end of the array: a task must then span
        # every dim that has a halo, so its own read holds the wrapped cells.
        fixed = {
            i: r.shape[i] for i, d in enumerate(r.dims) if boundary == "wrap" and halo.get(d, 0) > 0
        }
        choice = self._choose(r, halo, arrays, fixed=fixed)
        stage = self._block_stage(
            r,
            "map",
            choice.block,
            (dotted_path(pattern.kernel),),
            arrays,
            tables,
            halo=halo,
            boundary=boundary,
        )
        return self._new_plan(r, arrays, tables, [stage], choice)

    def _plan_reduce(self, r: _Request, pattern: Reduce) -> StepPlan:
        rdims = self._pattern_dims(r, pattern.dims, "cannot reduce over")
        arrays, tables = self.output_arrays(r.op, r.params, r.inputs, drop=rdims)
        span = tuple(d in rdims for d in r.dims)

        # A partial state is a few float64 arrays shaped like the output block.
        def state_bytes(block: tuple[int, ...]) -> int:
            return 5 * 8 * math.prod(b for b, sp in zip(block, span, strict=True) if not sp)

        choice = self._choose(r, {}, arrays, span=span, partial_bytes=state_bytes)
        kernels = tuple(
            dotted_path(k) for k in (pattern.partial, pattern.combine, pattern.finalize)
        )
        extra = {"reduce_dims": rdims}
        if all(b >= s for b, s, sp in zip(choice.block, r.shape, span, strict=True) if sp):
            stage = self._block_stage(
                r, "reduce", choice.block, kernels, arrays, tables, kind="reduce_block", extra=extra
            )
            return self._new_plan(r, arrays, tables, [stage], choice)
        # Partial states go to a scratch Zarr group (one slot per partition along the
        # reduced dims), then one combine task per output block folds them.
        kept = tuple(d for d in r.dims if d not in rdims)
        part_shape = tuple(
            math.ceil(s / b) for s, b, sp in zip(r.shape, choice.block, span, strict=True) if sp
        )
        n_parts = math.prod(part_shape)
        out_block = tuple(b for b, sp in zip(choice.block, span, strict=True) if not sp)
        kept_shape = tuple(s for s, sp in zip(r.shape, span, strict=True) if not sp)
        regions = iter_blocks(r.shape, choice.block)
        partial_tasks = []
        for i, region in enumerate(regions):
            reads, in_bytes = self._reads(r, region, {}, "reflect")
            part_idx = tuple(
                g.start // b for g, b, sp in zip(region, choice.block, span, strict=True) if sp
            )
            kept_region = tuple(g for g, sp in zip(region, span, strict=True) if not sp)
            blk = tuple(s.stop - s.start for s in region)
            state = 5 * 8 * math.prod(g.stop - g.start for g in kept_region)
            partial_tasks.append(
                self._task(
                    r,
                    key=f"partial/{i:06d}",
                    kind="reduce_partial",
                    kernels=kernels,
                    region=region,
                    n_tasks=len(regions),
                    memory=self._memory(r, in_bytes, state, blk),
                    reads=reads,
                    extra={
                        **extra,
                        "part": int(_np().ravel_multi_index(part_idx, part_shape)),
                        "n_parts": n_parts,
                        "kept_region": kept_region,
                        "kept_shape": kept_shape,
                        "kept_chunks": out_block,
                    },
                )
            )
        kept_regions = iter_blocks(kept_shape, out_block)
        combine_tasks = []
        written: set[tuple[str, tuple[tuple[int, int], ...]]] = set()
        for i, region in enumerate(kept_regions):
            cells = math.prod(g.stop - g.start for g in region)
            combine_tasks.append(
                self._task(
                    r,
                    key=f"combine/{i:06d}",
                    kind="reduce_combine",
                    kernels=kernels,
                    region=region,
                    n_tasks=len(kept_regions),
                    memory=3 * 5 * 8 * cells + 2 * cells * r.itemsize,
                    writes=self._writes(arrays, kept, region, written),
                    dims=kept,
                    sizes=kept_shape,
                    arrays=arrays,
                    tables=tables,
                    extra={**extra, "n_parts": n_parts},
                )
            )
        stages = [
            Stage("partial", tuple(partial_tasks), scratch=True),
            Stage("combine", tuple(combine_tasks)),
        ]
        plan = self._new_plan(r, arrays, tables, stages, choice)
        plan.notes.append(
            f"reduction split into {n_parts} partitions along {rdims!r}; partial states combined"
        )
        return plan

    def _plan_full_axis(self, r: _Request, pattern: FullAxis) -> StepPlan:
        fdims = self._pattern_dims(r, pattern.dims, "needs whole dims")
        full = {r.dims.index(d): r.shape[r.dims.index(d)] for d in fdims}
        kernels = (dotted_path(pattern.kernel),)
        # Aligned array inputs that do not span the axis in storage are rechunked.
        to_rechunk = [
            b
            for b in r.inputs.values()
            if b.array is not None
            and any(
                d in fdims and c < s
                for d, c, s in zip(b.array.dims, b.array.chunks, b.array.shape, strict=True)
            )
            and not set(fdims) & set(op_input(r.op, b.name).whole)
        ]
        arrays, tables = self.output_arrays(r.op, r.params, r.inputs)
        # Read straight from storage when it spans the axis, or when tasks over whole
        # storage chunks fit the budget and cost less than a rechunk through Zarr
        # (which reads, writes and reads again every byte).
        direct = self._choose(r, {}, arrays, fixed=full, required=not to_rechunk)
        if direct is not None and (not to_rechunk or direct.cost <= self._rechunk_cost(to_rechunk)):
            stage = self._block_stage(r, "full_axis", direct.block, kernels, arrays, tables)
            plan = self._new_plan(r, arrays, tables, [stage], direct)
            if to_rechunk:
                plan.notes.append(
                    f"read {[b.name for b in to_rechunk]!r} whole along {list(fdims)!r} without "
                    "rechunking (it fits the budget and costs less)"
                )
            return plan
        target = self._pencil_chunks(r, full)
        override: dict[str, ArrayInfo] = {}
        rechunk_tasks: list[TaskSpec] = []
        scratch_arrays: dict[str, OutputArraySpec] = {}
        for b in to_rechunk:
            info = b.array
            assert info is not None
            spec, inter, tasks = self._rechunk(r, b.name, info, fdims, target, len(rechunk_tasks))
            scratch_arrays[spec.name] = spec
            override[b.name] = inter
            rechunk_tasks.extend(tasks)
        rechunk_tasks = [dataclasses.replace(t, n_tasks=len(rechunk_tasks)) for t in rechunk_tasks]
        out_chunks = {d: target[i] for i, d in enumerate(r.dims) if i not in full}
        arrays, tables = self.output_arrays(r.op, r.params, r.inputs, chunks=out_chunks)
        pencil = tuple(full.get(i, target[i]) for i in range(len(r.dims)))
        choice = self._choose(r, {}, arrays, chunks=pencil, fixed=full, override=override)
        stage = self._block_stage(
            r, "full_axis", choice.block, kernels, arrays, tables, override=override
        )
        plan = self._new_plan(
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

    def _rechunk(
        self,
        r: _Request,
        input_name: str,
        info: ArrayInfo,
        fdims: tuple[str, ...],
        target: tuple[int, ...],
        first: int,
    ) -> tuple[OutputArraySpec, ArrayInfo, list[TaskSpec]]:
        """The scratch array, its ArrayInfo and the tasks that rechunk one input.

        Intermediate chunks hold whole (grouped) source chunks along the full dims and
        the pencil extent along the others, so each is written by exactly one task,
        and each task reads whole source chunks.
        """
        from minjiang.storage import ArrayInfo, Staging

        group = self._rechunk_group(info, fdims, tuple(target[r.dims.index(d)] for d in info.dims))
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
        unit_bytes = math.prod(unit) * _np().dtype(info.dtype).itemsize
        k = max(1, min(RECHUNK_TASK_BYTES, self.budget // 3) // max(unit_bytes, 1))
        rblock = tuple(
            min(u * k, s) if d in fdims else u
            for d, u, s in zip(info.dims, unit, info.shape, strict=True)
        )
        tasks: list[TaskSpec] = []
        for region in iter_blocks(info.shape, rblock):
            nbytes = math.prod(g.stop - g.start for g in region) * _np().dtype(info.dtype).itemsize
            if 3 * nbytes > self.budget:
                raise self._budget_error(
                    r, 3 * nbytes, f"rechunk block {rblock!r} of input {input_name!r}"
                )
            tasks.append(
                self._task(
                    r,
                    key=f"rechunk/{first + len(tasks):06d}",
                    kind="rechunk",
                    kernels=(),
                    region=region,
                    n_tasks=0,
                    memory=3 * nbytes,
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

    def _rechunk_cost(self, inputs: Sequence[BoundInput]) -> float:
        """Projected wall-time cost (in the block model's units) of rechunking ``inputs``:
        every byte read, written to the intermediate and read back, over the workers."""
        total = sum(b.array.nbytes for b in inputs if b.array is not None)
        return 3 * total / max(self.workers, 1) + 2 * TASK_OVERHEAD_BYTES

    def _rechunk_group(
        self, info: ArrayInfo, fdims: tuple[str, ...], target: tuple[int, ...]
    ) -> int:
        """Source chunks along the full dims per intermediate chunk: aim for >= 1 MiB
        intermediate chunks, but keep one rechunk unit (three copies) within budget."""
        itemsize = _np().dtype(info.dtype).itemsize
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
        return max(1, min(64, (1 << 20) // max(chunk, 1), (self.budget // 3) // max(unit, 1)))

    def _pencil_chunks(self, r: _Request, full: Mapping[int, int]) -> tuple[int, ...]:
        """Pencil extent per non-full dim: a divisor (or multiple) of the storage chunk such
        that one pencil's task fits the budget with room for a few in flight."""
        n_arrays = max(1, sum(1 for b in r.inputs.values() if b.array is not None))
        # bytes per pencil cell across all array inputs (whole dims included) and outputs
        per_cell = 4 * r.itemsize * math.prod(full.values()) * n_arrays
        # The pencil is the output's chunking, part of what the dataset *is*: it must not
        # depend on the executor's worker count, only on a fixed target (or a budget
        # smaller than it).
        max_cells = max(1, (min(self.budget, PENCIL_TARGET_BYTES) // 4) // max(per_cell, 1))
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
        return tuple(target)

    def _plan_aggregate(self, r: _Request, pattern: Aggregate) -> StepPlan:
        halo = _halo_of(pattern.halo, r.params, r.infos)
        arrays, tables = self.output_arrays(r.op, r.params, r.inputs)
        if arrays:
            raise ContractError(
                f"{r.op.name}: an aggregate writes tables only, not arrays {sorted(arrays)!r}"
            )
        choice = self._choose(r, halo, {})
        kernels = tuple(
            dotted_path(k) for k in (pattern.partial, pattern.combine, pattern.finalize)
        )
        partial = self._block_stage(
            r,
            "partial",
            choice.block,
            kernels,
            {},
            {},
            halo=halo,
            boundary=pattern.boundary,
            kind="agg_partial",
            scratch=True,
        )
        combine = self._task(
            r,
            key="combine/000000",
            kind="agg_combine",
            kernels=kernels,
            region=tuple(slice(0, s) for s in r.shape),
            n_tasks=1,
            memory=min(self.budget, 64 << 20),
            backend="cpu",
            tables=tables,
            coords=False,
            extra={"n_parts": len(partial.tasks)},
        )
        return self._new_plan(r, arrays, tables, [partial, Stage("combine", (combine,))], choice)


@dataclasses.dataclass(frozen=True)
class _Request:
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
    def infos(self) -> dict[str, ArrayInfo]:
        return {k: v.array for k, v in self.inputs.items() if v.array is not None}

    @property
    def attrs(self) -> dict[str, dict[str, Any]]:
        return {k: dict(v.array.attrs) for k, v in self.inputs.items() if v.array is not None}


def op_input(op: Operator, name: str) -> Any:
    return next(i for i in op.inputs if i.name == name)

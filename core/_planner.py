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
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from minjiang.core._blocks import BlockChoice, choose_block, iter_blocks
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
    "format_bytes",
    "parse_bytes",
]

#: No storage chunk may decode to more than this (Ray retries OOM kills forever).
MAX_CHUNK_BYTES = 512 << 20
#: Memory one full-axis pencil task aims at; sets the pencil (and output) chunking.
PENCIL_TARGET_BYTES = 256 << 20


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def parse_bytes(value: str | int | float) -> int:
    """``"4GiB"``, ``"512 MB"``, ``2e9`` -> bytes."""
    if isinstance(value, int | float):
        return int(value)
    text = value.strip().replace(" ", "")
    units = {
        "": 1,
        "b": 1,
        "k": 1000,
        "kb": 1000,
        "m": 10**6,
        "mb": 10**6,
        "g": 10**9,
        "gb": 10**9,
        "t": 10**12,
        "tb": 10**12,
        "kib": 1 << 10,
        "mib": 1 << 20,
        "gib": 1 << 30,
        "tib": 1 << 40,
    }
    num = text.rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    unit = text[len(num) :].lower()
    try:
        return int(float(num) * units[unit])
    except (KeyError, ValueError):
        raise PlanError(
            f"cannot read memory size {value!r}; write e.g. '4GiB' or '512MB'"
        ) from None


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
        from minjiang.storage import ArrayInfo, DatasetInfo

        prefix = f"datasets/{self.dataset_id}"
        arrays = {
            a.name: ArrayInfo(
                name=a.name,
                path=f"{prefix}/arrays.zarr/{a.name}",
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
                path=f"{prefix}/arrays.zarr/{c.name}",
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
    ) -> None:
        self.store_url = store_url
        self.budget = budget
        self.workers = workers
        self.coord_values = coord_values  # (ArrayInfo) -> decoded values
        self.cpus_per_task = cpus_per_task

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
    def _memory(
        self,
        op: Operator,
        params: Any,
        in_bytes: int,
        out_bytes: int,
        block: tuple[int, ...],
        itemsize: int,
    ) -> int:
        return int(op.memory(TaskSize(in_bytes, out_bytes, block, itemsize), params))

    def _budget_error(self, step: str, op: Operator, need: int, what: str) -> MemoryBudgetError:
        return MemoryBudgetError(
            f"step {step!r} ({op.name}): the smallest task ({what}) needs {format_bytes(need)} "
            f"but the per-task budget is {format_bytes(self.budget)}; raise --memory-budget "
            f"(e.g. --memory-budget {format_bytes(need * self.workers * 1.25).replace(' ', '')}) "
            "or re-chunk the input smaller"
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

    def _reads(
        self,
        op: Operator,
        inputs: Mapping[str, BoundInput],
        dims: tuple[str, ...],
        sizes: tuple[int, ...],
        region: tuple[slice, ...],
        halo: Mapping[str, int],
        boundary: str,
        override: Mapping[str, ArrayInfo] | None = None,
    ) -> tuple[list[ArrayRead | TableRead], int]:
        reads: list[ArrayRead | TableRead] = []
        nbytes = 0
        pos = {d: i for i, d in enumerate(dims)}
        for spec in op.inputs:
            b = inputs.get(spec.name)
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

    def _attrs(self, inputs: Mapping[str, BoundInput]) -> dict[str, dict[str, Any]]:
        return {k: dict(v.array.attrs) for k, v in inputs.items() if v.array is not None}

    def _out_bytes(
        self, arrays: Mapping[str, OutputArraySpec], dims: tuple[str, ...], block: tuple[int, ...]
    ) -> int:
        ext = dict(zip(dims, block, strict=True))
        total = 0
        for a in arrays.values():
            total += (
                math.prod(ext.get(d, s) for d, s in zip(a.dims, a.shape, strict=True))
                * _np().dtype(a.dtype).itemsize
            )
        return total

    def _task(
        self,
        *,
        key: str,
        stage: str,
        kind: str,
        dataset_id: str,
        op: Operator,
        backend: str,
        kernels: tuple[str, ...],
        params: Any,
        reads: list[ArrayRead | TableRead],
        writes: list[ArrayWrite],
        tables: tuple[str, ...],
        dims: tuple[str, ...],
        region: tuple[slice, ...],
        halo: Mapping[str, int],
        sizes: tuple[int, ...],
        coords: Mapping[str, Any],
        attrs: Mapping[str, Any],
        n_tasks: int,
        memory: int,
        extra: Mapping[str, Any] | None = None,
        out_arrays: Mapping[str, OutputArraySpec] | None = None,
        out_tables: Mapping[str, TableOutput] | None = None,
    ) -> TaskSpec:
        extra = dict(extra or {})
        if out_arrays:
            extra["out_dims"] = {a.name: a.dims for a in out_arrays.values()}
            extra["out_dtypes"] = {a.name: a.dtype for a in out_arrays.values()}
        if out_tables:
            extra["table_columns"] = {t.name: dict(t.columns) for t in out_tables.values()}
        return TaskSpec(
            key=key,
            stage=stage,
            kind=kind,
            store_url=self.store_url,
            dataset_id=dataset_id,
            operator=op.name,
            backend=backend,
            kernels=kernels,
            params=params,
            reads=tuple(reads),
            writes=tuple(writes),
            tables=tables,
            dims=dims,
            region=region,
            halo=tuple((halo.get(d, 0), halo.get(d, 0)) for d in dims),
            sizes=sizes,
            coords=coords,
            attrs=attrs,
            n_tasks=n_tasks,
            cpus=self.cpus_per_task,
            gpus=1.0 if backend == "gpu" else 0.0,
            memory=memory,
            extra=extra,
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
    ) -> StepPlan:
        self.bind(op, inputs)
        self.check_chunks(op, inputs)
        pattern = op.pattern
        if isinstance(pattern, Map):
            return self._plan_map(step, op, params, inputs, dataset_id, backend, source_coords)
        if isinstance(pattern, Reduce):
            return self._plan_reduce(step, op, params, inputs, dataset_id, backend, source_coords)
        if isinstance(pattern, FullAxis):
            return self._plan_full_axis(
                step, op, params, inputs, dataset_id, backend, source_coords
            )
        if isinstance(pattern, Aggregate):
            return self._plan_aggregate(
                step, op, params, inputs, dataset_id, backend, source_coords
            )
        if isinstance(pattern, Composite):
            raise PlanError(
                f"{op.name}: composite operators are expanded by the runtime, not planned directly"
            )
        raise PlanError(f"{op.name}: unknown chunk pattern {type(pattern).__name__}")

    def _new_plan(
        self,
        step: str,
        op: Operator,
        params: Any,
        inputs: Mapping[str, BoundInput],
        dataset_id: str,
        backend: str,
        arrays: dict[str, OutputArraySpec],
        tables: dict[str, TableOutput],
        source_coords: Mapping[str, ArrayInfo],
        stages: list[Stage],
        block: BlockChoice | None,
    ) -> StepPlan:
        coords = self.output_coords(op, params, inputs, arrays, source_coords)
        return StepPlan(
            step=step,
            operator=op,
            params=params,
            inputs=dict(inputs),
            dataset_id=dataset_id,
            backend=backend,
            arrays=arrays,
            coords=coords,
            tables=tables,
            stages=stages,
            block=block,
        )

    def _plan_map(
        self,
        step: str,
        op: Operator,
        params: Any,
        inputs: Mapping[str, BoundInput],
        dataset_id: str,
        backend: str,
        source_coords: Mapping[str, ArrayInfo],
    ) -> StepPlan:
        pattern = op.pattern
        assert isinstance(pattern, Map)
        primary = self.primary(op, inputs)
        dims, shape, chunks = tuple(primary.dims), tuple(primary.shape), tuple(primary.chunks)
        infos = {k: v.array for k, v in inputs.items() if v.array is not None}
        halo = _halo_of(pattern.halo, params, infos)
        boundary = pattern.boundary(params) if callable(pattern.boundary) else pattern.boundary
        arrays, tables = self.output_arrays(op, params, inputs)
        # A wrapped halo comes from the far end of the array: a task must then span
        # every dim that has a halo, so its own read holds the wrapped cells.
        fixed = {
            i: shape[i] for i, d in enumerate(dims) if boundary == "wrap" and halo.get(d, 0) > 0
        }
        choice = self._choose(
            step, op, params, inputs, dims, shape, chunks, halo, arrays, fixed=fixed
        )
        stage = self._block_stage(
            "map",
            step,
            op,
            params,
            inputs,
            dataset_id,
            backend,
            dims,
            shape,
            choice.block,
            halo,
            boundary,
            arrays,
            tables,
            source_coords,
            (dotted_path(pattern.kernel),),
        )
        return self._new_plan(
            step,
            op,
            params,
            inputs,
            dataset_id,
            backend,
            arrays,
            tables,
            source_coords,
            [stage],
            choice,
        )

    def _choose(
        self,
        step: str,
        op: Operator,
        params: Any,
        inputs: Mapping[str, BoundInput],
        dims: tuple[str, ...],
        shape: tuple[int, ...],
        chunks: tuple[int, ...],
        halo: Mapping[str, int],
        arrays: Mapping[str, OutputArraySpec],
        *,
        fixed: Mapping[int, int] | None = None,
        span: tuple[bool, ...] = (),
        partial_bytes: Any = None,
        override: Mapping[str, ArrayInfo] | None = None,
    ) -> BlockChoice:
        primary = self.primary(op, inputs)
        itemsize = _np().dtype(primary.dtype).itemsize
        bdims = dims

        def memory(block: tuple[int, ...]) -> int:
            region = tuple(slice(0, b) for b in block)
            _, in_bytes = self._reads(op, inputs, bdims, shape, region, halo, "reflect", override)
            in_bytes += 2 * max(math.prod(chunks) * itemsize, 0)  # chunks being decoded
            return self._memory(
                op, params, in_bytes, self._out_bytes(arrays, bdims, block), block, itemsize
            )

        choice = choose_block(
            shape,
            chunks,
            itemsize=itemsize,
            halo=[halo.get(d, 0) for d in dims],
            memory=memory,
            budget=self.budget,
            workers=self.workers,
            span=span,
            partial_bytes=partial_bytes,
            fixed=fixed,
        )
        if choice is None:
            smallest = tuple(min(c, s) for c, s in zip(chunks, shape, strict=True))
            if fixed:
                smallest = tuple(fixed.get(i, b) for i, b in enumerate(smallest))
            raise self._budget_error(step, op, memory(smallest), f"block {smallest!r} of {dims!r}")
        return choice

    def _block_stage(
        self,
        stage_name: str,
        step: str,
        op: Operator,
        params: Any,
        inputs: Mapping[str, BoundInput],
        dataset_id: str,
        backend: str,
        dims: tuple[str, ...],
        shape: tuple[int, ...],
        block: tuple[int, ...],
        halo: Mapping[str, int],
        boundary: str,
        arrays: Mapping[str, OutputArraySpec],
        tables: Mapping[str, TableOutput],
        source_coords: Mapping[str, ArrayInfo],
        kernels: tuple[str, ...],
        *,
        kind: str = "block",
        override: Mapping[str, ArrayInfo] | None = None,
        extra: Mapping[str, Any] | None = None,
        scratch: bool = False,
    ) -> Stage:
        regions = iter_blocks(shape, block)
        attrs = self._attrs(inputs)
        tasks = []
        itemsize = _np().dtype(self.primary(op, inputs).dtype).itemsize
        for i, region in enumerate(regions):
            reads, in_bytes = self._reads(op, inputs, dims, shape, region, halo, boundary, override)
            writes = [
                ArrayWrite(a.name, a.name, self._out_region(a, dims, region), scratch=a.scratch)
                for a in arrays.values()
            ]
            blk = tuple(s.stop - s.start for s in region)
            mem = self._memory(
                op, params, in_bytes, self._out_bytes(arrays, dims, blk), blk, itemsize
            )
            tasks.append(
                self._task(
                    key=f"{stage_name}/{i:06d}",
                    stage=stage_name,
                    kind=kind,
                    dataset_id=dataset_id,
                    op=op,
                    backend=backend,
                    kernels=kernels,
                    params=params,
                    reads=reads,
                    writes=writes,
                    tables=tuple(tables),
                    dims=dims,
                    region=region,
                    halo=halo,
                    sizes=shape,
                    coords=self._block_ctx(dims, region, source_coords),
                    attrs=attrs,
                    n_tasks=len(regions),
                    memory=mem,
                    extra=extra,
                    out_arrays=arrays,
                    out_tables=tables,
                )
            )
        return Stage(stage_name, tuple(tasks), scratch=scratch)

    @staticmethod
    def _out_region(
        a: OutputArraySpec, dims: tuple[str, ...], region: tuple[slice, ...]
    ) -> tuple[slice, ...]:
        pos = {d: i for i, d in enumerate(dims)}
        return tuple(
            region[pos[d]] if d in pos else slice(0, s)
            for d, s in zip(a.dims, a.shape, strict=True)
        )

    def _plan_reduce(
        self,
        step: str,
        op: Operator,
        params: Any,
        inputs: Mapping[str, BoundInput],
        dataset_id: str,
        backend: str,
        source_coords: Mapping[str, ArrayInfo],
    ) -> StepPlan:
        pattern = op.pattern
        assert isinstance(pattern, Reduce)
        primary = self.primary(op, inputs)
        dims, shape, chunks = tuple(primary.dims), tuple(primary.shape), tuple(primary.chunks)
        infos = {k: v.array for k, v in inputs.items() if v.array is not None}
        rdims = tuple(pattern.dims(params, infos) if callable(pattern.dims) else pattern.dims)
        bad = [d for d in rdims if d not in dims]
        if bad or not rdims:
            raise ContractError(
                f"{op.name}: cannot reduce over {list(rdims)!r}; the input has dims {dims!r}"
            )
        arrays, tables = self.output_arrays(op, params, inputs, drop=rdims)
        span = tuple(d in rdims for d in dims)

        # A partial state is a few float64 arrays shaped like the output block.
        def state_bytes(block: tuple[int, ...]) -> int:
            return 5 * 8 * math.prod(b for b, sp in zip(block, span, strict=True) if not sp)

        choice = self._choose(
            step,
            op,
            params,
            inputs,
            dims,
            shape,
            chunks,
            {},
            arrays,
            span=span,
            partial_bytes=state_bytes,
        )
        kernels = (
            dotted_path(pattern.partial),
            dotted_path(pattern.combine),
            dotted_path(pattern.finalize),
        )
        spans_all = all(b >= s for b, s, sp in zip(choice.block, shape, span, strict=True) if sp)
        extra = {"reduce_dims": rdims}
        if spans_all:
            stage = self._block_stage(
                "reduce",
                step,
                op,
                params,
                inputs,
                dataset_id,
                backend,
                dims,
                shape,
                choice.block,
                {},
                "reflect",
                arrays,
                tables,
                source_coords,
                kernels,
                kind="reduce_block",
                extra=extra,
            )
            return self._new_plan(
                step,
                op,
                params,
                inputs,
                dataset_id,
                backend,
                arrays,
                tables,
                source_coords,
                [stage],
                choice,
            )
        # Partial states go to a scratch Zarr group (one slot per partition along the
        # reduced dims), then one combine task per output block folds them.
        kept = tuple(d for d in dims if d not in rdims)
        n_parts = math.prod(
            math.ceil(s / b) for s, b, sp in zip(shape, choice.block, span, strict=True) if sp
        )
        regions = iter_blocks(shape, choice.block)
        attrs = self._attrs(inputs)
        itemsize = _np().dtype(primary.dtype).itemsize
        out_block = tuple(b for b, sp in zip(choice.block, span, strict=True) if not sp)
        part_shape = tuple(
            math.ceil(s / b) for s, b, sp in zip(shape, choice.block, span, strict=True) if sp
        )
        kept_shape = tuple(s for s, sp in zip(shape, span, strict=True) if not sp)
        partial_tasks = []
        for i, region in enumerate(regions):
            reads, in_bytes = self._reads(op, inputs, dims, shape, region, {}, "reflect")
            part_idx = tuple(
                r.start // b for r, b, sp in zip(region, choice.block, span, strict=True) if sp
            )
            part = int(_np().ravel_multi_index(part_idx, part_shape)) if part_shape else 0
            kept_region = tuple(r for r, sp in zip(region, span, strict=True) if not sp)
            blk = tuple(s.stop - s.start for s in region)
            mem = self._memory(
                op,
                params,
                in_bytes,
                5 * 8 * math.prod(r.stop - r.start for r in kept_region),
                blk,
                itemsize,
            )
            partial_tasks.append(
                self._task(
                    key=f"partial/{i:06d}",
                    stage="partial",
                    kind="reduce_partial",
                    dataset_id=dataset_id,
                    op=op,
                    backend=backend,
                    kernels=kernels,
                    params=params,
                    reads=reads,
                    writes=[],
                    tables=(),
                    dims=dims,
                    region=region,
                    halo={},
                    sizes=shape,
                    coords=self._block_ctx(dims, region, source_coords),
                    attrs=attrs,
                    n_tasks=len(regions),
                    memory=mem,
                    extra={
                        **extra,
                        "part": part,
                        "n_parts": n_parts,
                        "kept_region": kept_region,
                        "kept_shape": kept_shape,
                        "kept_chunks": out_block,
                    },
                )
            )
        kept_regions = iter_blocks(kept_shape, out_block)
        combine_tasks = []
        for i, region in enumerate(kept_regions):
            writes = [
                ArrayWrite(a.name, a.name, self._out_region(a, kept, region))
                for a in arrays.values()
            ]
            cells = math.prod(r.stop - r.start for r in region)
            combine_tasks.append(
                self._task(
                    key=f"combine/{i:06d}",
                    stage="combine",
                    kind="reduce_combine",
                    dataset_id=dataset_id,
                    op=op,
                    backend=backend,
                    kernels=kernels,
                    params=params,
                    reads=[],
                    writes=writes,
                    tables=(),
                    dims=kept,
                    region=region,
                    halo={},
                    sizes=kept_shape,
                    coords=self._block_ctx(kept, region, source_coords),
                    attrs=attrs,
                    n_tasks=len(kept_regions),
                    memory=3 * 5 * 8 * cells + 2 * cells * itemsize,
                    extra={**extra, "n_parts": n_parts},
                    out_arrays=arrays,
                    out_tables=tables,
                )
            )
        plan = self._new_plan(
            step,
            op,
            params,
            inputs,
            dataset_id,
            backend,
            arrays,
            tables,
            source_coords,
            [
                Stage("partial", tuple(partial_tasks), scratch=True),
                Stage("combine", tuple(combine_tasks)),
            ],
            choice,
        )
        plan.notes.append(
            f"reduction split into {n_parts} partitions along {rdims!r}; partial states combined"
        )
        return plan

    def _plan_full_axis(
        self,
        step: str,
        op: Operator,
        params: Any,
        inputs: Mapping[str, BoundInput],
        dataset_id: str,
        backend: str,
        source_coords: Mapping[str, ArrayInfo],
    ) -> StepPlan:
        pattern = op.pattern
        assert isinstance(pattern, FullAxis)
        primary = self.primary(op, inputs)
        dims, shape, chunks = tuple(primary.dims), tuple(primary.shape), tuple(primary.chunks)
        infos = {k: v.array for k, v in inputs.items() if v.array is not None}
        fdims = tuple(pattern.dims(params, infos) if callable(pattern.dims) else pattern.dims)
        bad = [d for d in fdims if d not in dims]
        if bad or not fdims:
            raise ContractError(
                f"{op.name}: needs whole dims {list(fdims)!r} but input {op.primary.name!r} has {dims!r}"
            )
        full = {dims.index(d): shape[dims.index(d)] for d in fdims}
        kernels = (dotted_path(pattern.kernel),)
        # Aligned array inputs that do not span the axis in storage are rechunked.
        to_rechunk = [
            b
            for b in inputs.values()
            if b.array is not None
            and any(
                d in fdims and c < s
                for d, c, s in zip(b.array.dims, b.array.chunks, b.array.shape, strict=True)
            )
            and not set(fdims) & set(op_input(op, b.name).whole)
        ]
        if not to_rechunk:
            arrays, tables = self.output_arrays(op, params, inputs)
            choice = self._choose(
                step, op, params, inputs, dims, shape, chunks, {}, arrays, fixed=full
            )
            stage = self._block_stage(
                "full_axis",
                step,
                op,
                params,
                inputs,
                dataset_id,
                backend,
                dims,
                shape,
                choice.block,
                {},
                "reflect",
                arrays,
                tables,
                source_coords,
                kernels,
            )
            return self._new_plan(
                step,
                op,
                params,
                inputs,
                dataset_id,
                backend,
                arrays,
                tables,
                source_coords,
                [stage],
                choice,
            )
        target = self._pencil_chunks(step, op, params, inputs, dims, shape, chunks, full)
        override: dict[str, ArrayInfo] = {}
        rechunk_tasks: list[TaskSpec] = []
        scratch_arrays: dict[str, OutputArraySpec] = {}
        for b in to_rechunk:
            info = b.array
            assert info is not None
            # intermediate chunks: whole source chunks (grouped) along the full dims,
            # target pencil size along the others; each written by exactly one task.
            group = self._rechunk_group(info, fdims)
            inter_chunks = tuple(
                min(c * group, s) if d in fdims else target[dims.index(d)]
                for d, c, s in zip(info.dims, info.chunks, info.shape, strict=True)
            )
            name = f"rechunk_{b.name}"
            scratch_arrays[name] = OutputArraySpec(
                name,
                tuple(info.dims),
                tuple(info.shape),
                inter_chunks,
                info.dtype,
                dict(info.attrs),
                scratch=True,
            )
            from minjiang.storage import ArrayInfo as _AI

            override[b.name] = _AI(
                name=name,
                path=f"datasets/{dataset_id}/_scratch/arrays.zarr/{name}",
                dims=tuple(info.dims),
                shape=tuple(info.shape),
                dtype=info.dtype,
                chunks=inter_chunks,
                attrs=dict(info.attrs),
                dataset_id=dataset_id,
            )
            # a rechunk task reads whole source chunks: `group` along the full dims and
            # the source chunking (a multiple of the pencil) along the others.
            rblock = tuple(
                min(c * group, s) if d in fdims else max(c, target[dims.index(d)])
                for d, c, s in zip(info.dims, info.chunks, info.shape, strict=True)
            )
            regions = iter_blocks(info.shape, rblock)
            for region in regions:
                cells = math.prod(r.stop - r.start for r in region)
                nbytes = cells * _np().dtype(info.dtype).itemsize
                if 3 * nbytes > self.budget:
                    raise self._budget_error(
                        step, op, 3 * nbytes, f"rechunk block {rblock!r} of input {b.name!r}"
                    )
                rechunk_tasks.append(
                    self._task(
                        key=f"rechunk/{len(rechunk_tasks):06d}",
                        stage="rechunk",
                        kind="rechunk",
                        dataset_id=dataset_id,
                        op=op,
                        backend="cpu",
                        kernels=(),
                        params=None,
                        reads=[ArrayRead(b.name, info, region, tuple((0, 0) for _ in region))],
                        writes=[ArrayWrite(b.name, name, region, scratch=True)],
                        tables=(),
                        dims=tuple(info.dims),
                        region=region,
                        halo={},
                        sizes=tuple(info.shape),
                        coords={},
                        attrs={},
                        n_tasks=0,
                        memory=3 * nbytes,
                    )
                )
        rechunk_tasks = [dataclasses.replace(t, n_tasks=len(rechunk_tasks)) for t in rechunk_tasks]
        out_chunks = {d: target[i] for i, d in enumerate(dims) if i not in full}
        arrays, tables = self.output_arrays(op, params, inputs, chunks=out_chunks)
        pencil = tuple(full.get(i, target[i]) for i in range(len(dims)))
        choice = self._choose(
            step, op, params, inputs, dims, shape, pencil, {}, arrays, fixed=full, override=override
        )
        stage = self._block_stage(
            "full_axis",
            step,
            op,
            params,
            inputs,
            dataset_id,
            backend,
            dims,
            shape,
            choice.block,
            {},
            "reflect",
            arrays,
            tables,
            source_coords,
            kernels,
            override=override,
        )
        plan = self._new_plan(
            step,
            op,
            params,
            inputs,
            dataset_id,
            backend,
            {**arrays, **scratch_arrays},
            tables,
            source_coords,
            [Stage("rechunk", tuple(rechunk_tasks), scratch=True), stage],
            choice,
        )
        plan.notes.append(
            f"rechunked {[b.name for b in to_rechunk]!r} to pencils {pencil!r} through an intermediate Zarr"
        )
        return plan

    @staticmethod
    def _rechunk_group(info: ArrayInfo, full_dims: tuple[str, ...]) -> int:
        """Source chunks along the full dims per intermediate chunk (aim for >= 1 MiB)."""
        per = math.prod(info.chunks) * _np().dtype(info.dtype).itemsize
        return max(1, min(64, (1 << 20) // max(per, 1)))

    def _pencil_chunks(
        self,
        step: str,
        op: Operator,
        params: Any,
        inputs: Mapping[str, BoundInput],
        dims: tuple[str, ...],
        shape: tuple[int, ...],
        chunks: tuple[int, ...],
        full: Mapping[int, int],
    ) -> tuple[int, ...]:
        """Pencil extent per non-full dim: a divisor (or multiple) of the storage chunk such
        that one pencil's task fits the budget with room for a few in flight."""
        itemsize = _np().dtype(self.primary(op, inputs).dtype).itemsize
        full_cells = math.prod(full.values())
        # bytes per pencil cell across all array inputs (whole dims included) and outputs
        per_cell = (
            4
            * itemsize
            * full_cells
            * max(1, sum(1 for b in inputs.values() if b.array is not None))
        )
        # The pencil is the output's chunking, part of what the dataset *is*: it must not
        # depend on the executor's worker count, only on a fixed target (or a budget
        # smaller than it).
        max_cells = max(1, (min(self.budget, PENCIL_TARGET_BYTES) // 4) // max(per_cell, 1))
        target: list[int] = []
        others = [i for i in range(len(dims)) if i not in full]
        side = max(1, int(max_cells ** (1 / max(len(others), 1))))
        for i in range(len(dims)):
            if i in full:
                target.append(shape[i])
                continue
            c = chunks[i]
            if c <= side:
                target.append(c * max(1, min(side // c, math.ceil(shape[i] / c))))
            else:
                divs = [d for d in range(1, c + 1) if c % d == 0 and d <= side]
                target.append(max(divs) if divs else 1)
        return tuple(target)

    def _plan_aggregate(
        self,
        step: str,
        op: Operator,
        params: Any,
        inputs: Mapping[str, BoundInput],
        dataset_id: str,
        backend: str,
        source_coords: Mapping[str, ArrayInfo],
    ) -> StepPlan:
        pattern = op.pattern
        assert isinstance(pattern, Aggregate)
        primary = self.primary(op, inputs)
        dims, shape, chunks = tuple(primary.dims), tuple(primary.shape), tuple(primary.chunks)
        infos = {k: v.array for k, v in inputs.items() if v.array is not None}
        halo = _halo_of(pattern.halo, params, infos)
        arrays, tables = self.output_arrays(op, params, inputs)
        if arrays:
            raise ContractError(
                f"{op.name}: an aggregate writes tables only, not arrays {sorted(arrays)!r}"
            )
        choice = self._choose(step, op, params, inputs, dims, shape, chunks, halo, {})
        kernels = (
            dotted_path(pattern.partial),
            dotted_path(pattern.combine),
            dotted_path(pattern.finalize),
        )
        partial = self._block_stage(
            "partial",
            step,
            op,
            params,
            inputs,
            dataset_id,
            backend,
            dims,
            shape,
            choice.block,
            halo,
            pattern.boundary,
            {},
            {},
            source_coords,
            kernels,
            kind="agg_partial",
            scratch=True,
        )
        combine = self._task(
            key="combine/000000",
            stage="combine",
            kind="agg_combine",
            dataset_id=dataset_id,
            op=op,
            backend="cpu",
            kernels=kernels,
            params=params,
            reads=[],
            writes=[],
            tables=tuple(tables),
            dims=dims,
            region=tuple(slice(0, s) for s in shape),
            halo={},
            sizes=shape,
            coords={},
            attrs=self._attrs(inputs),
            n_tasks=1,
            memory=min(self.budget, 64 << 20),
            extra={"n_parts": len(partial.tasks)},
            out_tables=tables,
        )
        return self._new_plan(
            step,
            op,
            params,
            inputs,
            dataset_id,
            backend,
            arrays,
            tables,
            source_coords,
            [partial, Stage("combine", (combine,))],
            choice,
        )


def op_input(op: Operator, name: str) -> Any:
    return next(i for i in op.inputs if i.name == name)

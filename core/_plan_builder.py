"""The plan builder: a pipeline (or one step) becomes a validated :class:`Plan`.

It resolves each step's inputs (catalog names, ids, earlier steps), chooses its backend,
computes its content id, decides reuse, and asks the planner (``core/_planner.py``) for
the step's stages; a composite is expanded into hidden sub-steps
(``core/_patterns/composite.py``). Nothing runs and nothing is written.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from minjiang.core import _runtime
from minjiang.core._commit import code_version
from minjiang.core._devices import gpu_share
from minjiang.core._operator import Operator
from minjiang.core._pipeline import Pipeline, Step
from minjiang.core._plan import IngestPlan, Plan
from minjiang.core._planner import BoundInput, StepPlan, StepPlanner
from minjiang.core._resources import apply_resources
from minjiang.core._units import format_bytes
from minjiang.core.errors import (
    BackendFallbackWarning,
    BackendUnavailableError,
    ContractError,
    DatasetNotFoundError,
    MemoryBudgetError,
    PlanError,
)

if TYPE_CHECKING:
    import xarray as xr
    from minjiang.core._devices import DeviceReport
    from minjiang.core._runtime import Runtime
    from minjiang.storage import DatasetInfo

log = logging.getLogger("minjiang")

__all__ = ["PlanBuilder"]


class PlanBuilder:
    def __init__(self, rt: Runtime, pipe: Pipeline, inputs: dict[str, Any], reuse: bool) -> None:
        self.rt = rt
        self.pipe = pipe
        self.inputs = inputs
        self.reuse = reuse
        self.outputs: dict[str, str] = {}  # step id -> dataset id
        self.infos: dict[str, DatasetInfo] = {}  # dataset id -> info (existing or planned)
        self.steps: list[StepPlan | IngestPlan] = []
        self._gpu_reason: str | None = None  # why GPU tasks cannot run, once asked
        self._gpu_devices: list[DeviceReport] = []

    def build(self) -> Plan:
        execu = self.rt.executor
        workers = execu.workers()
        per_task = max(1, self.rt.memory_budget // workers)
        self.planner = StepPlanner(
            store_url=self.rt.store.url,
            store_options=self.rt.store.shared_options(),
            budget=per_task,
            run_budget=self.rt.memory_budget,
            workers=workers,
            coord_values=self.rt.coord_values,
            gpu_read=self.rt.gpu_read,
            dataset_info=self._dataset,
        )
        for step in self.pipe.steps:
            if step.reader is not None:
                self._plan_ingest(step)
            else:
                self._plan_operator(step)
        return Plan(
            self.pipe,
            self.steps,
            dict(self.outputs),
            self.rt.memory_budget,
            workers,
            execu.name,
            self.reuse,
        )

    # -- inputs
    def _dataset(self, dataset_id: str) -> DatasetInfo:
        info = self.infos.get(dataset_id)
        if info is None:
            from minjiang.storage import open_dataset_info

            # planning needs a table's name and parts, not its columns: no Parquet footers
            info = open_dataset_info(self.rt.store, dataset_id, table_schemas=False)
            self.infos[dataset_id] = info
        return info

    def _resolve(self, ref: Any, step: Step) -> tuple[str, str | None]:
        """-> (dataset id, array/table selector)."""
        if isinstance(ref, _runtime.Result):
            return ref.id, None
        ref = str(ref)
        if ref.startswith("$"):
            value = self.inputs[ref[1:]]
            return self._resolve(value, step)
        if ref in self.outputs:
            return self.outputs[ref], None
        selector = None
        if ":" in ref:
            ref, selector = ref.rsplit(":", 1)
            if ref in self.outputs:
                return self.outputs[ref], selector
        if ref in self.infos:  # planned earlier in this plan (e.g. a composite's sub-step)
            return ref, selector
        did = self.rt.catalog.resolve(ref)
        if did is None:
            import difflib

            names = list(self.rt.catalog.names()) + list(self.outputs)
            close = difflib.get_close_matches(ref, names, n=3)
            hint = f" Did you mean {close!r}?" if close else ""
            raise DatasetNotFoundError(
                f"step {step.id!r}: no dataset or earlier step named {ref!r}.{hint} "
                "(`minjiang catalog ls` lists datasets)"
            )
        return did, selector

    def _bind(self, op: Operator, step: Step, raw: Mapping[str, Any]) -> dict[str, BoundInput]:
        bound: dict[str, BoundInput] = {}
        specs = {i.name: i for i in op.inputs}
        for key, ref in raw.items():
            if key not in specs:
                raise ContractError(
                    f"step {step.id!r}: {op.name} has no input {key!r}; it takes {sorted(specs)!r}"
                )
            did, selector = self._resolve(ref, step)
            info = self._dataset(did)
            spec = specs[key]
            if spec.kind == "table":
                tables = sorted(info.tables)
                name = selector or (tables[0] if len(tables) == 1 else None)
                if name is None or name not in info.tables:
                    raise ContractError(
                        f"step {step.id!r}: input {key!r} needs a table of dataset {did}; it has {tables!r} "
                        f"(pick one with '<dataset>:<table>')"
                    )
                if spec.tiled:
                    _check_tiled(op.name, key, did, name, info.tables[name])
                bound[key] = BoundInput(key, did, table=name)
                continue
            arrays = sorted(info.arrays)
            name = selector or (
                arrays[0] if len(arrays) == 1 else (key if key in info.arrays else None)
            )
            if name is None or name not in info.arrays:
                raise ContractError(
                    f"step {step.id!r}: input {key!r} refers to dataset {did} with arrays {arrays!r}; "
                    "choose one with '<dataset>:<array>'"
                )
            bound[key] = BoundInput(key, did, array=info.arrays[name], whole=spec.whole)
        return bound

    # -- backend
    def _backend(self, op: Operator, step: Step) -> tuple[str, str]:
        """The backend a step runs on, and a note when ``auto`` falls back to the CPU."""
        requested = step.backend or (
            self.pipe.backend if self.pipe.backend != "auto" else self.rt.backend
        )
        if requested == "cpu" or (requested == "auto" and "gpu" not in op.backends):
            return "cpu", ""
        if requested == "gpu" and "gpu" not in op.backends:
            raise BackendUnavailableError(
                f"step {step.id!r}: {op.name} has no GPU kernel (backends {op.backends!r}); use --backend cpu or auto"
            )
        missing = self._no_gpu_reason()
        if not missing:
            return "gpu", ""
        if requested == "gpu":
            raise BackendUnavailableError(
                f"step {step.id!r}: backend 'gpu' was asked but {missing}; use --backend auto to fall "
                "back to the CPU, or join a cluster with usable GPUs (--address)"
            )
        if self._gpu_devices or _runtime._cupy_installed():  # a GPU was expected
            note = f"{op.name} has a GPU kernel but {missing}: ran on the CPU"
            warnings.warn(f"step {step.id!r}: {note}", BackendFallbackWarning, stacklevel=5)
            return "cpu", f"BackendFallbackWarning: {note}"
        return "cpu", ""

    def _fit_device(self, plan: StepPlan) -> None:
        """Check a GPU step's projected task memory against the device's free memory,
        and let small tasks share a device (each asks Ray for its fraction of a GPU)."""
        free = min(
            (d.memory_free for d in self._gpu_devices if d.usable and d.memory_free), default=0
        )
        if free and plan.task_memory > free:
            raise MemoryBudgetError(
                f"step {plan.step!r} ({plan.operator.name}): a task needs {format_bytes(plan.task_memory)} "
                f"of GPU memory but the device has {format_bytes(free)} free; lower --memory-budget so "
                "tasks shrink, or use --backend cpu"
            )
        plan.stages = [
            dataclasses.replace(
                stage,
                tasks=tuple(
                    dataclasses.replace(t, gpus=gpu_share(t.memory, free)) if t.gpus else t
                    for t in stage.tasks
                ),
            )
            for stage in plan.stages
        ]

    def _no_gpu_reason(self) -> str:
        """Why GPU tasks cannot run on this executor ('' when they can); asked once."""
        if self._gpu_reason is None:
            ex = self.rt.executor
            self._gpu_reason = ""
            if ex.gpus() <= 0:
                self._gpu_reason = f"the {ex.name} executor has no GPU"
            else:
                self._gpu_devices = ex.gpu_devices()
                bad = [d for d in self._gpu_devices if not d.usable]
                if bad and len(bad) == len(self._gpu_devices):
                    self._gpu_reason = (
                        "no GPU of the cluster is usable ("
                        + "; ".join(f"{d.node}: {d.error}" for d in bad)
                        + ")"
                    )
                elif bad:
                    log.warning(
                        "GPU tasks may fail on %s",
                        "; ".join(f"{d.node}: {d.error}" for d in bad),
                    )
        return self._gpu_reason

    # -- steps
    def _plan_ingest(self, step: Step) -> None:
        from minjiang.storage import hash_files

        reader = self.rt.registry.reader(step.reader or "")
        params = reader.validate_params(step.params)
        raw = step.paths
        if isinstance(raw, str) and raw.startswith("$"):
            raw = self.inputs[raw[1:]]
        paths = [raw] if isinstance(raw, str | os.PathLike) else list(raw or [])
        files = reader.source_files(paths)
        did = hash_files(files, extra=reader.identity(params))
        name = self._name(step)
        reused = self.reuse and self.rt.catalog.exists(did)
        if reused:
            info = self._dataset(did)
            plan = IngestPlan(step.id, reader, params, files, did, info, {}, None, name, True)
        else:
            ds = reader.open(files, params)
            chunks = dict(reader.chunks(ds, params) or _default_chunks(ds))
            tables = reader.table_columns(ds, params)
            info = _planned_ingest_info(did, ds, chunks, tables, self.rt._coord_cache)
            self.infos[did] = info
            plan = IngestPlan(step.id, reader, params, files, did, info, chunks, ds, name, False)
        self.outputs[step.id] = did
        self.steps.append(plan)

    def _name(self, step: Step) -> str | None:
        if step.name is None:
            return None
        from minjiang.storage import validate_name

        return validate_name(step.name)

    def _planned(self, dataset_id: str) -> StepPlan | None:
        """The last operator step planned so far for ``dataset_id`` (None: none)."""
        for planned in reversed(self.steps):
            if isinstance(planned, StepPlan) and planned.dataset_id == dataset_id:
                return planned
        return None

    def _plan_operator(
        self,
        step: Step,
        *,
        hidden: bool = False,
        op: Operator | None = None,
        raw_inputs: Mapping[str, Any] | None = None,
        params: Any = None,
    ) -> str:
        op = op or self.rt.registry.operator(step.operator or "")
        model = params if params is not None else op.validate_params(step.params)
        bound = self._bind(op, step, raw_inputs if raw_inputs is not None else step.inputs)
        from minjiang.core._patterns import EXPANDERS

        expand = EXPANDERS.get(type(op.pattern))
        if expand is not None:
            did = expand(
                self._plan_operator,
                step,
                op,
                model,
                bound,
                self.planner.plan_inputs,
                self._planned,
                budget=self.rt.memory_budget,
                workers=self.planner.workers,
                fits=self._fits,
            )
            self.outputs[step.id] = did
            return did
        from minjiang.storage import content_id

        primary = self.planner.primary(op, bound)
        src = self._dataset(primary.dataset_id)
        identity: dict[str, Any] = {
            "operator": op.name,
            "version": op.version,
            "params": model.model_dump(mode="json"),
            "inputs": {
                k: f"{b.dataset_id}:{b.array.name if b.array is not None else b.table}"
                for k, b in sorted(bound.items())
                if next(i for i in op.inputs if i.name == k).identity
            },
            "code": code_version(),
        }
        # A content id fixes the layout: the output chunking is part of what is hashed.
        # (A full-axis step's pencils follow the budget; two budgets that give two
        # layouts give two ids, never one id with two layouts.) The layout does not
        # depend on the backend, so a CPU plan under a provisional id finds it. It
        # fixes the partition of a split reduction or an aggregate too: the order its
        # partial states are folded in sets the last bits of a floating-point result.
        provisional = self._dry_plan(step, op, model, bound, content_id(identity))
        layout = provisional.layout()
        split = {} if provisional.partition is None else {"partition": provisional.partition}
        did = content_id({**identity, "layout": layout, **split})
        exists = self.rt.catalog.exists(did)
        reused = self.reuse and exists
        # A reused step whose id covers every input passed this check when it was
        # computed (the id fixes the operator, its version, params, inputs and code):
        # checking again would read and decode its inputs' coordinates for nothing.
        if not (reused and all(i.identity for i in op.inputs if i.name in bound)):
            from minjiang.core._grids import check_same_grid

            check_same_grid(
                step.id,
                op,
                bound,
                self._dataset,
                self.rt.coord_values,
                aligners=(
                    n for n in self.rt.registry.operators if n.rsplit(".", 1)[-1] in _ALIGNERS
                ),
            )
        if reused:  # nothing runs: keep the backend it was computed on
            backend, fallback = self.rt.catalog.get(did).producer.get("backend", "cpu"), ""
        else:
            backend, fallback = self._backend(op, step)
        plan = self.planner.plan(
            step=step.id,
            op=op,
            params=model,
            inputs=bound,
            dataset_id=did,
            backend=backend,
            source_coords=src.coords,
            # a committed dataset is never rewritten: reuse=False recomputes apart
            recompute=exists and not self.reuse,
            block_coords=not reused,  # a reused step's tasks never run
        )
        if plan.layout() != layout:
            raise PlanError(
                f"step {step.id!r} ({op.name}): the {backend} plan lays the output out as "
                f"{plan.layout()!r}, not {layout!r}; an id must fix its layout"
            )
        if fallback:
            plan.notes.append(fallback)
        if backend == "gpu" and not reused:
            self._fit_device(plan)
        apply_resources(plan, step.resources)
        plan.name = None if hidden else self._name(step)
        plan.hidden = hidden
        plan.reused = reused
        plan.attrs = {"minjiang_operator": op.name, "minjiang_version": op.version}
        if plan.reused:
            self.infos[did] = self._dataset(did)
        else:
            info = plan.planned_info()
            self.infos[did] = info
            # later steps read block coordinates of this not-yet-written dataset
            for c in plan.coords:
                values = self.rt.coord_values(c.source) if c.source is not None else c.values
                self.rt._coord_cache[info.coords[c.name].path] = values
        self.outputs[step.id] = did
        self.steps.append(plan)
        return did

    def _dry_plan(
        self,
        step: Step,
        op: Operator,
        params: Any,
        bound: Mapping[str, BoundInput],
        dataset_id: str,
    ) -> StepPlan:
        """A CPU plan of ``op`` whose tasks never run (no block coordinates decoded):
        what fixes a step's layout and partition, and whether it fits the budget."""
        src = self._dataset(self.planner.primary(op, bound).dataset_id)
        return self.planner.plan(
            step=step.id,
            op=op,
            params=params,
            inputs=bound,
            dataset_id=dataset_id,
            backend="cpu",
            source_coords=src.coords,
            block_coords=False,
        )

    def _fits(self, step: Step, op: Operator, raw_inputs: Mapping[str, Any], params: Any) -> bool:
        """Whether ``op`` on these inputs plans within the memory budget (a composite's
        :meth:`ExpandContext.fits`): planned as the step itself would be, tasks
        dropped; only a :class:`MemoryBudgetError` answers no."""
        try:
            self._dry_plan(step, op, params, self._bind(op, step, raw_inputs), "0" * 32)
        except MemoryBudgetError:
            return False
        return True


#: operator names (after the namespace) that bring data onto another grid or calendar
_ALIGNERS = ("resample", "regrid", "resample_time")


def _default_chunks(ds: xr.Dataset) -> dict[str, int]:
    """Storage's default chunking for each variable, the smallest per dim across them."""
    from minjiang.storage import default_chunks

    chunks: dict[str, int] = {}
    for var in ds.data_vars.values():
        dims = tuple(str(d) for d in var.dims)
        for dim, c in zip(
            dims, default_chunks(var.shape, var.dtype.itemsize, dims=dims), strict=True
        ):
            chunks[dim] = min(chunks.get(dim, c), c)
    return chunks


def _written_chunks(var: Any, chunks: Mapping[str, int]) -> tuple[int, ...]:
    """The chunks ``write_xarray`` will give ``var``: the reader's lengths for the dims
    it names (``-1``: the full extent), :func:`default_chunks` for the others."""
    from minjiang.storage import default_chunks

    dims = tuple(str(d) for d in var.dims)
    fixed = {d: chunks[d] for d in dims if d in chunks}
    return default_chunks(var.shape, var.dtype.itemsize, dims=dims, fixed=fixed)


def _planned_ingest_info(
    did: str,
    ds: xr.Dataset,
    chunks: Mapping[str, int],
    tables: Mapping[str, Mapping[str, str]],
    cache: dict[str, Any],
) -> DatasetInfo:
    from minjiang.storage import ArrayInfo, DatasetInfo, array_key, dataset_prefix

    prefix = dataset_prefix(did)

    def info(name: str, var: Any, ch: tuple[int, ...]) -> ArrayInfo:
        return ArrayInfo(
            name=name,
            path=array_key(did, name),
            dims=tuple(var.dims),
            shape=tuple(var.shape),
            dtype=str(var.dtype),
            chunks=ch,
            attrs=dict(var.attrs),
            dataset_id=did,
        )

    arrays = {str(k): info(str(k), v, _written_chunks(v, chunks)) for k, v in ds.data_vars.items()}
    coords = {}
    for k, v in ds.coords.items():
        coords[str(k)] = info(str(k), v, tuple(v.shape))
        cache[coords[str(k)].path] = v.values
    return DatasetInfo(
        id=did,
        prefix=prefix,
        attrs=dict(ds.attrs),
        arrays=arrays,
        coords=coords,
        tables={t: [] for t in tables},
        table_schemas={t: {"columns": dict(c), "rows": None} for t, c in tables.items()},
    )


def _check_tiled(op: str, key: str, did: str, table: str, parts: Sequence[str]) -> None:
    """A tiled table input must be a table whose parts are named by grid tile."""
    from minjiang.storage import parse_tile_part

    for part in parts:
        if parse_tile_part(part) is None:
            name = part.rsplit("/", 1)[-1]
            raise ContractError(
                f"{op}: input {key!r} reads table {table!r} of dataset {did} by grid tile, but "
                f"its part {name!r} is not named by a tile; write the table with parts named "
                "by minjiang.storage.tile_part_name (a tiled reader or operator)"
            )

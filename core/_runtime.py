"""The runtime: plugins, store, catalog, planner and executor in one object.

>>> import minjiang as mj
>>> rt = mj.Runtime(store="./minjiang-store")                        # doctest: +SKIP
>>> cube = rt.ingest("array.zarr", ["cube.zarr"], name="demo/cube")  # doctest: +SKIP
>>> res = rt.run("array.gaussian", inputs={"x": cube}, params={"sigma": 2})  # doctest: +SKIP
>>> res.to_xarray()                                                   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import os
import platform
import socket
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from minjiang.core._devices import GPU_READ_MODES, gpu_share
from minjiang.core._events import RunEvent, TaskResult
from minjiang.core._operator import Operator
from minjiang.core._pipeline import Pipeline, Step, load_pipeline
from minjiang.core._planner import (
    BoundInput,
    Stage,
    StepPlan,
    StepPlanner,
)
from minjiang.core._plugins import Registry, make_plugin_manager
from minjiang.core._units import format_bytes, parse_memory_budget
from minjiang.core.errors import (
    BackendFallbackWarning,
    BackendUnavailableError,
    ContractError,
    DatasetNotFoundError,
    MemoryBudgetError,
)

if TYPE_CHECKING:
    import pyarrow as pa
    import xarray as xr
    from minjiang.core._devices import DeviceReport
    from minjiang.core._executors import Executor
    from minjiang.core._reader import Reader
    from minjiang.storage import ArrayInfo, DatasetInfo, Record, Staging

log = logging.getLogger("minjiang")

__all__ = [
    "IngestPlan",
    "PipelineResult",
    "Plan",
    "Result",
    "Runtime",
    "default_memory_budget",
    "open",
]


def default_memory_budget() -> int:
    """Half the machine's memory: the default ``--memory-budget`` for a run."""
    import psutil

    return int(psutil.virtual_memory().total * 0.5)


def _code_version() -> str:
    import minjiang

    return minjiang.__version__


def _software() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "minjiang": _code_version()}
    for pkg in (
        "numpy",
        "numba",
        "numba-cuda",
        "zarr",
        "ray",
        "xarray",
        "pyarrow",
        "cupy",
        "cupy-cuda12x",
        "cupy-cuda13x",
    ):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def _host() -> dict[str, Any]:
    import psutil

    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory": int(psutil.virtual_memory().total),
        "python": sys.executable and platform.python_version(),
    }


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


@dataclasses.dataclass(frozen=True)
class Result:
    """A committed dataset: its id, record and convenient readers."""

    id: str
    record: Record
    runtime: Runtime = dataclasses.field(repr=False, compare=False)
    reused: bool = False

    @property
    def name(self) -> str | None:
        return self.record.names[0] if self.record.names else None

    @property
    def path(self) -> str:
        """The Zarr group of this dataset (a local path for local stores)."""
        from minjiang.storage import arrays_group_key

        key = arrays_group_key(self.id)
        local = self.runtime.store.local_path(key)
        return str(local) if local is not None else f"{self.runtime.store.url}/{key}"

    def to_xarray(self) -> xr.Dataset:
        """The dataset as a lazy, dask-backed :class:`xarray.Dataset`."""
        return self.runtime.open(self.id)

    def table(self, name: str) -> pa.Table:
        from minjiang.storage import read_table

        if name not in self.record.tables:
            raise DatasetNotFoundError(
                f"dataset {self.id} has no table {name!r}; it has {sorted(self.record.tables)!r}"
            )
        return read_table(self.runtime.store, self.id, name)


@dataclasses.dataclass(frozen=True)
class IngestPlan:
    step: str
    reader: Reader
    params: Any
    files: list[Path]
    dataset_id: str
    info: DatasetInfo
    chunks: dict[str, int]
    dataset: Any = dataclasses.field(repr=False)
    name: str | None = None
    reused: bool = False


@dataclasses.dataclass
class Plan:
    """A validated plan: one entry per step (composites expanded into hidden steps)."""

    pipeline: Pipeline
    steps: list[StepPlan | IngestPlan]
    outputs: dict[str, str]
    budget: int
    workers: int
    executor: str
    reuse: bool = True

    def summary_rows(self) -> list[dict[str, Any]]:
        rows = []
        for s in self.steps:
            if isinstance(s, IngestPlan):
                rows.append(
                    {
                        "step": s.step,
                        "what": f"ingest {s.reader.name}",
                        "dataset": s.dataset_id[:12],
                        "tasks": 0 if s.reused else 1,
                        "memory/task": "",
                        "decode amp.": "",
                        "backend": "cpu",
                        "status": "reuse" if s.reused else "run",
                    }
                )
                continue
            rows.append(
                {
                    "step": s.step + (" (hidden)" if s.hidden else ""),
                    "what": s.operator.name,
                    "dataset": s.dataset_id[:12],
                    "tasks": s.n_tasks,
                    "memory/task": format_bytes(s.task_memory),
                    "decode amp.": f"{s.block.decode_amplification:.2f}" if s.block else "",
                    "backend": s.backend,
                    "status": "reuse" if s.reused else "run",
                }
            )
        return rows


@dataclasses.dataclass(frozen=True)
class PipelineResult:
    """The results of a pipeline run, by step id, and report files written."""

    results: dict[str, Result]
    reports: list[Path]
    plan: Plan

    def __getitem__(self, step: str) -> Result:
        return self.results[step]

    @property
    def output(self) -> Result:
        return self.results[self.plan.pipeline.steps[-1].id]


class Runtime:
    """The entry point of the Python API.

    Parameters
    ----------
    store
        Store root (local folder or ``s3://bucket/prefix``); default ``$MINJIANG_STORE``
        or ``./minjiang-store``.
    executor
        ``"ray"`` (default; a local Ray is started on demand, or ``address`` joins a
        cluster) or ``"local"`` (in-process and sequential: debugging, test oracle).
    memory_budget
        Total memory the run may use (``"8GiB"``); each task gets its share per worker.
        Default: half the machine's memory.
    backend
        ``"auto"``, ``"cpu"`` or ``"gpu"`` for steps that do not set their own.
    gpu_read
        How GPU tasks move their inputs to the device: ``"pinned"`` (decode into pinned
        host buffers, copy slab by slab asynchronously) or ``"zarr"`` (zarr's GPU
        buffers); see ``docs/gpu.md``.
    progress
        Show a progress bar (tasks done/total, MB/s, ETA) on the terminal.
    """

    def __init__(
        self,
        store: str | os.PathLike[str] | None = None,
        *,
        executor: str = "ray",
        address: str | None = None,
        num_cpus: int | None = None,
        memory_budget: str | int | None = None,
        backend: str = "auto",
        gpu_read: str = "pinned",
        config: Mapping[str, Any] | None = None,
        plugins: Iterable[Any] = (),
        entry_points: bool = True,
        progress: bool = False,
        max_retries: int = 3,
    ) -> None:
        from minjiang.storage import Catalog, open_store

        self.store = open_store(store)
        self.catalog = Catalog(self.store)
        pm, problems = make_plugin_manager(plugins, entry_points=entry_points)
        self.registry = Registry(pm, problems)
        self.config = dict(config or {})
        self.registry.emit("minjiang_configure", config=self.config)
        self.executor_name = executor
        self._executor_options = {
            "address": address,
            "num_cpus": num_cpus,
            "max_retries": max_retries,
        }
        self._executor: Executor | None = None
        self.memory_budget = (
            parse_memory_budget(memory_budget)
            if memory_budget is not None
            else default_memory_budget()
        )
        if backend not in ("auto", "cpu", "gpu"):
            raise ContractError(f"backend {backend!r} is not one of 'auto', 'cpu', 'gpu'")
        self.backend = backend
        if gpu_read not in GPU_READ_MODES:
            raise ContractError(f"gpu_read {gpu_read!r} is not one of {GPU_READ_MODES!r}")
        self.gpu_read = gpu_read
        self.progress = progress
        self.last_run_events: list[RunEvent] = []
        self._observers: list[Callable[[RunEvent], None]] = []
        self._coord_cache: dict[str, Any] = {}

    # ------------------------------------------------------------------ registry
    @property
    def operators(self) -> dict[str, Operator]:
        return {k: v for k, (_, v) in self.registry.operators.items()}

    @property
    def readers(self) -> dict[str, Reader]:
        return {k: v for k, (_, v) in self.registry.readers.items()}

    @property
    def pipelines(self) -> dict[str, Pipeline]:
        return {k: v for k, (_, v) in self.registry.pipelines.items()}

    def register(self, plugin: Any, name: str | None = None) -> None:
        """Register one more plugin object or module on this runtime."""
        self.registry.pm.register(plugin, name=name)
        self.registry.pm.check_pending()
        self.registry = Registry(self.registry.pm, self.registry.problems)

    # ------------------------------------------------------------------ executor
    @property
    def executor(self) -> Executor:
        if self._executor is None:
            from minjiang.core._executors import create_executor

            self._executor = create_executor(self.executor_name, **self._executor_options)
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.close()
            self._executor = None

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def subscribe(self, observer: Callable[[RunEvent], None]) -> None:
        """Call ``observer(event)`` for every run event (besides the plugin hook)."""
        self._observers.append(observer)

    # ------------------------------------------------------------------ reading
    def result(self, ref: str | Result) -> Result:
        """The committed dataset named or identified by ``ref``."""
        if isinstance(ref, Result):
            return ref
        record = self.catalog.get(ref)
        return Result(record.id, record, self)

    def open(self, ref: str | Result) -> xr.Dataset:
        """Open a dataset as a lazy dask-backed :class:`xarray.Dataset`."""
        from minjiang.storage import open_xarray

        res = self.result(ref)
        # through the storage guard: a missing or altered chunk is a typed error, never fill
        ds = open_xarray(self.store, res.id)
        ds.attrs.setdefault("minjiang_id", res.id)
        return ds

    # ------------------------------------------------------------------ running
    def ingest(
        self,
        reader: str | None,
        paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
        *,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        reuse: bool = True,
    ) -> Result:
        """Ingest source files with a registered reader into a dataset.

        ``reader``: a registered reader name; ``None``: the one reader whose
        ``guess_can_open`` claims every path (a ReaderError lists the readers when none or
        several do).
        """
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        if reader is None:
            reader = self.registry.guess_reader(paths).name
        step = Step(
            id="ingest",
            reader=reader,
            paths=[str(p) for p in paths],
            params=dict(params or {}),
            name=name,
        )
        return self.run_pipeline(Pipeline(steps=[step]), reuse=reuse).results["ingest"]

    def run(
        self,
        operator: str,
        *,
        inputs: Mapping[str, str | Result],
        params: Mapping[str, Any] | None = None,
        name: str | None = None,
        backend: Literal["auto", "cpu", "gpu"] | None = None,
        reuse: bool = True,
    ) -> Result:
        """Run one operator; returns the committed (or reused) result."""
        step = Step(
            id="run",
            operator=operator,
            params=dict(params or {}),
            name=name,
            backend=backend,
            inputs={k: (v.id if isinstance(v, Result) else str(v)) for k, v in inputs.items()},
        )
        return self.run_pipeline(Pipeline(steps=[step]), reuse=reuse).results["run"]

    def _load(self, pipeline: Pipeline | str | os.PathLike[str] | Mapping[str, Any]) -> Pipeline:
        if isinstance(pipeline, Pipeline):
            return pipeline
        if isinstance(pipeline, str) and pipeline in self.registry.pipelines:
            return self.registry.pipeline(pipeline)
        if (
            isinstance(pipeline, str)
            and not pipeline.endswith((".yaml", ".yml"))
            and "\n" not in pipeline
        ):
            if "." in pipeline and not os.path.exists(pipeline):
                return self.registry.pipeline(pipeline)
        return load_pipeline(pipeline)

    def plan(
        self,
        pipeline: Pipeline | str | os.PathLike[str] | Mapping[str, Any],
        *,
        inputs: Mapping[str, Any] | None = None,
        reuse: bool = True,
    ) -> Plan:
        """Validate ``pipeline`` and build its whole plan without running anything."""
        pipe = self._load(pipeline)
        self.registry.pipeline_report(pipe)  # an unknown report fails before any work
        if isinstance(inputs, Mapping):  # a Result stands for its dataset id
            inputs = {k: v.id if isinstance(v, Result) else v for k, v in inputs.items()}
        bound = pipe.bind_inputs(inputs)
        return _PlanBuilder(self, pipe, dict(bound), reuse).build()

    def run_pipeline(
        self,
        pipeline: Pipeline | str | os.PathLike[str] | Mapping[str, Any],
        *,
        inputs: Mapping[str, Any] | None = None,
        reuse: bool = True,
    ) -> PipelineResult:
        """Plan, then run every step that is not already in the catalog."""
        plan = self.plan(pipeline, inputs=inputs, reuse=reuse)
        return _Run(self, plan).execute()

    # ------------------------------------------------------------------ events
    def _emit(self, event: RunEvent) -> None:
        self.last_run_events.append(event)
        for obs in self._observers:
            obs(event)
        self.registry.emit("minjiang_run_event", event=event)

    def coord_values(self, info: ArrayInfo) -> Any:
        """Decoded coordinate values, read once per runtime (planned datasets are seeded)."""
        cached = self._coord_cache.get(info.path)
        if cached is None:
            from minjiang.storage import read_coord_values

            cached = read_coord_values(self.store, info)
            self._coord_cache[info.path] = cached
        return cached


def open(ref: str, *, store: str | os.PathLike[str] | None = None) -> xr.Dataset:
    """Open a committed dataset (by name or id) as a lazy xarray Dataset."""
    rt = Runtime(store=store, executor="local", entry_points=False)
    return rt.open(ref)


# ---------------------------------------------------------------------- planning
class _PlanBuilder:
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
            budget=per_task,
            workers=workers,
            coord_values=self.rt.coord_values,
            gpu_read=self.rt.gpu_read,
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

            info = open_dataset_info(self.rt.store, dataset_id)
            self.infos[dataset_id] = info
        return info

    def _resolve(self, ref: Any, step: Step) -> tuple[str, str | None]:
        """-> (dataset id, array/table selector)."""
        if isinstance(ref, Result):
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
        if self._gpu_devices or _cupy_installed():  # a GPU was expected
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
            info = _planned_ingest_info(did, ds, chunks, self.rt._coord_cache)
            self.infos[did] = info
            plan = IngestPlan(step.id, reader, params, files, did, info, chunks, ds, name, False)
        self.outputs[step.id] = did
        self.steps.append(plan)

    def _name(self, step: Step) -> str | None:
        if step.name is None:
            return None
        from minjiang.storage import validate_name

        return validate_name(step.name)

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
            did = expand(self._plan_operator, step, op, model, bound)
            self.outputs[step.id] = did
            return did
        from minjiang.storage import content_id

        did = content_id(
            {
                "operator": op.name,
                "version": op.version,
                "params": model.model_dump(mode="json"),
                "inputs": {
                    k: f"{b.dataset_id}:{b.array.name if b.array is not None else b.table}"
                    for k, b in sorted(bound.items())
                },
                "code": _code_version(),
            }
        )
        reused = self.reuse and self.rt.catalog.exists(did)
        if reused:  # nothing runs: keep the backend it was computed on
            backend, fallback = self.rt.catalog.get(did).producer.get("backend", "cpu"), ""
        else:
            backend, fallback = self._backend(op, step)
        primary = self.planner.primary(op, bound)
        src = self._dataset(primary.dataset_id)
        plan = self.planner.plan(
            step=step.id,
            op=op,
            params=model,
            inputs=bound,
            dataset_id=did,
            backend=backend,
            source_coords=src.coords,
        )
        if fallback:
            plan.notes.append(fallback)
        if backend == "gpu" and not reused:
            self._fit_device(plan)
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


def _gpu_lineage(results: Sequence[TaskResult], gpu_read: str) -> dict[str, Any]:
    """The devices a GPU step's tasks ran on (model, CuPy and CUDA versions) and how
    they read their inputs, for the record's ``producer``."""
    devices = {tuple(sorted(r.device.items())) for r in results if r.device}
    return {"devices": [dict(d) for d in sorted(devices)], "gpu_read": gpu_read}


def _cupy_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("cupy") is not None


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


def _planned_ingest_info(
    did: str, ds: xr.Dataset, chunks: Mapping[str, int], cache: dict[str, Any]
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

    arrays = {
        str(k): info(
            str(k),
            v,
            tuple(min(chunks.get(str(d), n), n) for d, n in zip(v.dims, v.shape, strict=True)),
        )
        for k, v in ds.data_vars.items()
    }
    coords = {}
    for k, v in ds.coords.items():
        coords[str(k)] = info(str(k), v, tuple(v.shape))
        cache[coords[str(k)].path] = v.values
    return DatasetInfo(
        id=did, prefix=prefix, attrs=dict(ds.attrs), arrays=arrays, coords=coords, tables={}
    )


# ---------------------------------------------------------------------- running
class _Run:
    def __init__(self, rt: Runtime, plan: Plan) -> None:
        self.rt = rt
        self.plan = plan
        self.run_id = uuid.uuid4().hex[:12]
        self.results: dict[str, Result] = {}

    def emit(self, kind: str, **kw: Any) -> None:
        self.rt._emit(RunEvent(kind=kind, run=self.run_id, **kw))  # type: ignore[arg-type]

    def execute(self) -> PipelineResult:
        self.rt.last_run_events = []
        self.emit(
            "run_started",
            tasks_total=sum(
                0 if s.reused else (s.n_tasks if isinstance(s, StepPlan) else 1)
                for s in self.plan.steps
            ),
        )
        progress = _Progress(self.plan) if self.rt.progress else None
        try:
            for step in self.plan.steps:
                if step.reused:
                    record = self.rt.catalog.get(step.dataset_id)
                    if step.name:
                        self.rt.catalog.set_name(step.name, step.dataset_id)
                    self.results[step.step] = Result(step.dataset_id, record, self.rt, reused=True)
                    self.emit(
                        "step_reused",
                        step=step.step,
                        dataset_id=step.dataset_id,
                        operator=getattr(getattr(step, "operator", None), "name", ""),
                    )
                    continue
                if isinstance(step, IngestPlan):
                    self.results[step.step] = self._ingest(step)
                else:
                    self.results[step.step] = self._step(step, progress)
        except BaseException as err:
            self.emit("run_failed", message=f"{type(err).__name__}: {err}")
            raise
        finally:
            if progress is not None:
                progress.close()
        self.emit("run_finished")
        visible = {
            k: v for k, v in self.results.items() if k in {s.id for s in self.plan.pipeline.steps}
        }
        reports = self._report(visible)
        return PipelineResult(visible, reports, self.plan)

    def _report(self, results: dict[str, Result]) -> list[Path]:
        report = self.rt.registry.pipeline_report(self.plan.pipeline)
        if report is None or not results:
            return []
        last = results[self.plan.pipeline.steps[-1].id]
        name = (self.plan.pipeline.name or "pipeline").replace("/", "_")
        directory = self.rt.store.local_path(f"reports/{name}/{last.id}")
        if directory is None:
            return []
        directory.mkdir(parents=True, exist_ok=True)
        return report.write(results, directory)

    # -- ingest
    def _ingest(self, step: IngestPlan) -> Result:
        from minjiang.storage import Record, dataset_prefix, write_xarray

        self.emit(
            "step_started",
            step=step.step,
            dataset_id=step.dataset_id,
            operator=step.reader.name,
            tasks_total=1,
        )
        t0 = time.perf_counter()
        started = _now()
        summary = write_xarray(self.rt.store, step.dataset_id, step.dataset, chunks=step.chunks)
        record = Record(
            id=step.dataset_id,
            kind="ingested",
            names=[step.name] if step.name else [],
            domain=step.reader.domain,
            prefix=dataset_prefix(step.dataset_id),
            schema=summary.schema,
            producer={
                "reader": step.reader.name,
                "version": step.reader.version,
                "params": step.params.model_dump(mode="json") if step.params is not None else {},
                "sources": step.reader.describe_sources(step.files),
            },
            inputs={},
            software=_software(),
            host=_host(),
            timings={
                "started": started,
                "seconds": round(time.perf_counter() - t0, 3),
                "bytes_written": summary.bytes_written,
                "tasks": 1,
            },
            checksums=summary.checksums,
            tables={},
            metadata={},
            created=_now(),
        )
        return self._publish(record, step.name, step.step)

    def _publish(self, record: Record, name: str | None, step: str) -> Result:
        extra: dict[str, Any] = {}
        for plugin, fields in self.rt.registry.emit("minjiang_catalog_metadata", record=record):
            if fields:
                extra[plugin] = dict(fields)
        if extra:
            record = record.model_copy(update={"metadata": {**record.metadata, **extra}})
        won = self.rt.catalog.publish(record)
        if not won:
            log.info("dataset %s was published concurrently by another run; reusing it", record.id)
        record = self.rt.catalog.get(record.id)  # the sealed record, as the store holds it
        if name:
            self.rt.catalog.set_name(name, record.id)
        self.emit("step_committed", step=step, dataset_id=record.id, data={"won": won})
        return Result(record.id, record, self.rt, reused=not won)

    # -- operator steps
    def _prepare(self, step: StepPlan) -> dict[str, dict[str, str]]:
        """Create the output group, its arrays (and scratch arrays), and write its coords."""
        import numpy as np
        from minjiang.storage import open_dataset_info, read_array

        staging = self._staging(step)
        writer, scratch = staging.writer, staging.scratch
        writer.create(attrs=step.attrs)
        if any(a.scratch for a in step.arrays.values()):
            scratch.create(attrs={})
        for a in step.arrays.values():
            (scratch if a.scratch else writer).create_array(
                a.name,
                shape=a.shape,
                dtype=a.dtype,
                chunks=a.chunks,
                dims=a.dims,
                attrs=dict(a.attrs),
                fill_value=a.fill_value,
            )
        sums: dict[str, dict[str, str]] = {}
        sources: dict[str, DatasetInfo] = {}
        for c in step.coords:
            if c.source is not None:
                # the source existed only as a plan when this step was planned: reopen it
                did = c.source.dataset_id
                if did not in sources:
                    sources[did] = open_dataset_info(self.rt.store, did)
                source = sources[did].coords[c.source.name]
                values, attrs = read_array(self.rt.store, source), dict(source.attrs)
            else:
                values, attrs = np.asarray(c.values), dict(c.attrs)
            sums[c.name] = writer.write_coord(c.name, values, dims=c.dims, attrs=attrs)
        return sums

    def _staging(self, step: StepPlan) -> Staging:
        from minjiang.storage import Staging

        return Staging(self.rt.store, step.dataset_id, recompute=step.recompute)

    def _done_tasks(self, step: StepPlan, stage: Stage) -> dict[str, TaskResult]:
        """Tasks of ``stage`` whose manifest exists and whose chunks still verify."""
        from minjiang.core._tasks import task_fingerprint

        staging = self._staging(step)
        done: dict[str, TaskResult] = {}
        fingerprints = {t.key: task_fingerprint(t) for t in stage.tasks}
        for doc in staging.manifests(stage.name):
            try:
                res = TaskResult.from_json(doc)
            except Exception:
                continue
            if fingerprints.get(res.key) == res.fingerprint and staging.verify(
                res.checksums, res.tables
            ):
                done[res.key] = dataclasses.replace(res, skipped=True)
        return done

    def _check_feasible(self, step: StepPlan) -> None:
        node = self.rt.executor.node_memory()
        if node and step.task_memory > node:
            raise MemoryBudgetError(
                f"step {step.step!r} ({step.operator.name}): a task needs {format_bytes(step.task_memory)} but the "
                f"largest node has {format_bytes(node)}; lower --memory-budget or re-chunk the input"
            )

    def _step(self, step: StepPlan, progress: _Progress | None) -> Result:
        from minjiang.storage import Record

        self._check_feasible(step)
        self.emit(
            "step_started",
            step=step.step,
            dataset_id=step.dataset_id,
            operator=step.operator.name,
            tasks_total=step.n_tasks,
        )
        t0 = time.perf_counter()
        started = _now()
        coord_sums = self._prepare(step)
        results: list[TaskResult] = []
        for stage in step.stages:
            # reuse=False recomputes everything: manifests of earlier runs are not trusted
            done = self._done_tasks(step, stage) if self.plan.reuse else {}
            for res in done.values():
                results.append(res)
                self.emit(
                    "task_skipped",
                    step=step.step,
                    dataset_id=step.dataset_id,
                    task=res,
                    tasks_total=step.n_tasks,
                )
                if progress is not None:
                    progress.advance(res)
            todo = [t for t in stage.tasks if t.key not in done]

            def on_result(res: TaskResult) -> None:
                results.append(res)
                self.emit(
                    "task_finished",
                    step=step.step,
                    dataset_id=step.dataset_id,
                    task=res,
                    tasks_total=step.n_tasks,
                    tasks_done=len(results),
                )
                if progress is not None:
                    progress.advance(res)

            if todo:
                try:
                    self.rt.executor.run(todo, on_result)
                except Exception:
                    if self.rt.catalog.exists(step.dataset_id):  # another run finished it meanwhile
                        log.info(
                            "dataset %s was committed by another run while this one ran",
                            step.dataset_id,
                        )
                        break
                    raise
        if self.rt.catalog.exists(step.dataset_id):  # committed meanwhile, or recomputed on purpose
            self._cleanup(step)
            record = self.rt.catalog.get(step.dataset_id)
            if step.name:
                self.rt.catalog.set_name(step.name, step.dataset_id)
            return Result(step.dataset_id, record, self.rt, reused=self.plan.reuse)
        return self._commit(step, results, coord_sums, started, time.perf_counter() - t0, Record)

    def _cleanup(self, step: StepPlan) -> None:
        self._staging(step).cleanup()

    def _commit(
        self,
        step: StepPlan,
        results: list[TaskResult],
        coord_sums: dict[str, dict[str, str]],
        started: str,
        seconds: float,
        record_cls: Any,
    ) -> Result:
        from minjiang.storage import dataset_prefix, dataset_schema, open_dataset_info

        staging = self._staging(step)
        checksums: dict[str, dict[str, str]] = {k: dict(v) for k, v in coord_sums.items()}
        tables: dict[str, dict[str, str]] = {}
        for res in results:
            for name, sums in staging.final_checksums(res.checksums).items():
                checksums.setdefault(name, {}).update(sums)
            for tname, parts in staging.final_tables(res.tables).items():
                tables.setdefault(tname, {}).update(parts)
        staging.writer.consolidate()
        info = open_dataset_info(self.rt.store, step.dataset_id)
        op = step.operator
        fresh = [r for r in results if not r.skipped]
        record = record_cls(
            id=step.dataset_id,
            kind="computed",
            names=[step.name] if step.name else [],
            domain=op.domain,
            hidden=step.hidden,
            prefix=dataset_prefix(step.dataset_id),
            schema=dataset_schema(info),
            producer={
                "operator": op.name,
                "version": op.version,
                "params": step.params.model_dump(mode="json"),
                # the kernels' backend; rechunk and combine tasks only move bytes
                "pattern": op.pattern.pattern,
                "backend": step.backend,
                **(_gpu_lineage(results, self.rt.gpu_read) if step.backend == "gpu" else {}),
                "kernels": sorted({k for s in step.stages for t in s.tasks for k in t.kernels}),
                "executor": self.rt.executor.name,
                "notes": list(step.notes),
            },
            inputs={k: b.dataset_id for k, b in step.inputs.items()},
            software=_software(),
            host=_host(),
            timings={
                "started": started,
                "seconds": round(seconds, 3),
                "tasks": len(results),
                "tasks_skipped": len(results) - len(fresh),
                "bytes_read": sum(r.bytes_read for r in fresh),
                "bytes_written": sum(r.bytes_written for r in fresh),
                "read_s": round(sum(r.read_s for r in fresh), 3),
                "kernel_s": round(sum(r.kernel_s for r in fresh), 3),
                "write_s": round(sum(r.write_s for r in fresh), 3),
                "task_memory": step.task_memory,
                "decode_amplification": round(step.block.decode_amplification, 3)
                if step.block
                else None,
            },
            checksums=checksums,
            tables=tables,
            metadata={},
            created=_now(),
        )
        result = self._publish(record, step.name, step.step)
        self._cleanup(step)
        return result


class _Progress:
    """A rich progress bar: tasks done/total, MB/s, ETA."""

    def __init__(self, plan: Plan) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        total = sum(s.n_tasks for s in plan.steps if isinstance(s, StepPlan) and not s.reused)
        self.bytes = 0
        self.t0 = time.perf_counter()
        self.bar = Progress(
            TextColumn("[bold]tasks"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            transient=False,
        )
        self.task = self.bar.add_task("run", total=max(total, 1), rate="")
        self.bar.start()

    def advance(self, res: TaskResult) -> None:
        self.bytes += 0 if res.skipped else res.bytes_read + res.bytes_written
        rate = self.bytes / max(time.perf_counter() - self.t0, 1e-6) / 1e6
        self.bar.update(self.task, advance=1, rate=f"{rate:8.1f} MB/s")

    def close(self) -> None:
        self.bar.stop()

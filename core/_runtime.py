"""The runtime's public API: :class:`Runtime`, :class:`Result` and :func:`open`.

>>> import minjiang as mj
>>> rt = mj.Runtime(store="./minjiang-store")                        # doctest: +SKIP
>>> cube = rt.ingest("array.zarr", ["cube.zarr"], name="demo/cube")  # doctest: +SKIP
>>> res = rt.run("array.gaussian", inputs={"x": cube}, params={"sigma": 2})  # doctest: +SKIP
>>> res.to_xarray()                                                   # doctest: +SKIP

A runtime holds plugins, store, catalog, planner settings and executor. The work
behind its methods lives along the journey of data: ``core/_plan_builder.py`` turns a
pipeline into a :class:`~minjiang.core._plan.Plan` (the planner and the chunk patterns
in ``core/_planner.py`` and ``core/_patterns/``), ``core/_execution.py`` runs and
resumes it (tasks in ``core/_tasks.py``), and ``core/_commit.py`` assembles the records.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from minjiang.core._devices import GPU_READ_MODES
from minjiang.core._events import RunEvent
from minjiang.core._operator import Operator
from minjiang.core._pipeline import Pipeline, Step, load_pipeline
from minjiang.core._plan import IngestPlan, Plan
from minjiang.core._plugins import Registry, check_plugin, make_plugin_manager
from minjiang.core._units import parse_memory_budget
from minjiang.core.errors import ContractError, DatasetNotFoundError, PluginError

if TYPE_CHECKING:
    import pyarrow as pa
    import xarray as xr
    from minjiang.core._executors import Executor
    from minjiang.core._reader import Reader
    from minjiang.storage import ArrayInfo, Record
    from rich.console import Console

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


@dataclasses.dataclass(frozen=True)
class Result:
    """A committed dataset: its id, record and convenient readers."""

    id: str
    record: Record
    runtime: Runtime = dataclasses.field(repr=False, compare=False)
    reused: bool = False

    @property
    def name(self) -> str | None:
        """The name most recently given to this dataset (``None`` if it has none): the
        one this run gave it, also when the dataset was reused under a second name."""
        names = self.names
        return names[-1] if names else None

    @property
    def names(self) -> list[str]:
        """Every name of this dataset, oldest first (:meth:`Catalog.names_of`)."""
        return self.runtime.catalog.names_of(self.record)

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
        Show a progress bar (tasks done/total, MB/s, ETA) on the terminal, or on this
        :class:`rich.console.Console`.
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
        progress: bool | Console = False,
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
        """Register one more plugin object or module on this runtime.

        Raises
        ------
        PluginError
            If a hook implementation is named after no hook (the plugin is not
            registered) or a function named like a hook is not marked ``@hookimpl``.
        """
        self.registry.pm.register(plugin, name=name)
        problems = check_plugin(self.registry.pm, name or str(plugin), plugin)
        if problems:
            if self.registry.pm.is_registered(plugin):
                self.registry.pm.unregister(plugin)
            raise PluginError("; ".join(f"plugin {p.plugin!r}: {p.error}" for p in problems))
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
        from minjiang.core._plan_builder import PlanBuilder
        from minjiang.storage import forget_cached

        forget_cached()  # a run reads the catalog as it is now, not as an earlier run did

        pipe = self._load(pipeline)
        self.registry.pipeline_report(pipe)  # an unknown report fails before any work
        if isinstance(inputs, Mapping):  # a Result stands for its dataset id
            inputs = {k: v.id if isinstance(v, Result) else v for k, v in inputs.items()}
        bound = pipe.bind_inputs(inputs)
        return PlanBuilder(self, pipe, dict(bound), reuse).build()

    def run_pipeline(
        self,
        pipeline: Pipeline | str | os.PathLike[str] | Mapping[str, Any],
        *,
        inputs: Mapping[str, Any] | None = None,
        reuse: bool = True,
    ) -> PipelineResult:
        """Plan, then run every step that is not already in the catalog."""
        from minjiang.core._execution import Run

        plan = self.plan(pipeline, inputs=inputs, reuse=reuse)
        return Run(self, plan).execute()

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


def _cupy_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("cupy") is not None

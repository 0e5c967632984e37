"""Executors run the tasks of one stage: ``ray`` (default) and ``local`` (in-process).

The registry is an explicit dict of dotted paths, imported lazily; an unknown name is
an error that lists the valid ones.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from minjiang.core.errors import ExecutionError, MinjiangError, PlanError

if TYPE_CHECKING:
    from minjiang.core._devices import DeviceReport
    from minjiang.core._events import TaskResult
    from minjiang.core._planner import TaskSpec

log = logging.getLogger("minjiang.executor")

__all__ = [
    "EXECUTORS",
    "LOCAL_RAY_OBJECT_STORE_BYTES",
    "TASK_ZARR_CONCURRENCY",
    "WORKER_ENV",
    "Executor",
    "LocalExecutor",
    "RayExecutor",
    "create_executor",
]

EXECUTORS: dict[str, str] = {
    "local": "minjiang.core._executors:LocalExecutor",
    "ray": "minjiang.core._executors:RayExecutor",
}

#: Chunks zarr decodes or encodes at once inside a task. Each one in flight holds two to
#: three decoded chunks' worth of buffers: with zarr's default of 10, a one-CPU task
#: reading a halo around one 8 MiB chunk (9 chunks) held 109 MiB beside its arrays, 63
#: MiB with 4 (docs/benchmarks.md, "Memory model").
TASK_ZARR_CONCURRENCY = 4
#: Environment of the workers of a local Ray: zarr's concurrency above, and glibc's
#: allocator with a fixed mmap threshold of 32 MiB (its adaptive one otherwise grows
#: without bound), a 1 MiB trim threshold and at most two arenas for the codec
#: threads; every task ends with ``malloc_trim(0)``, so what it freed goes back to the
#: system (without it two workers held ~270 MiB each more after a run than before).
#: A 1 MiB mmap threshold returned memory as well but made every decoded chunk an
#: mmap, page faults and a munmap: reads 1.6x and writes 1.4x slower (docs/benchmarks.md).
WORKER_ENV: dict[str, str] = {
    "ZARR_ASYNC__CONCURRENCY": str(TASK_ZARR_CONCURRENCY),
    "MALLOC_MMAP_THRESHOLD_": str(32 << 20),
    "MALLOC_TRIM_THRESHOLD_": str(1 << 20),
    "MALLOC_ARENA_MAX": "2",
}
#: Object store of a local Ray. Tasks pass only small metadata (a TaskSpec in, a
#: TaskResult out), so Ray's default (30 % of the machine's memory in /dev/shm) is
#: never used; this is Ray's minimum rounded up.
LOCAL_RAY_OBJECT_STORE_BYTES = 128 << 20


class Executor(abc.ABC):
    """Runs independent tasks and reports each result as it arrives."""

    name: ClassVar[str] = ""

    @abc.abstractmethod
    def workers(self) -> int:
        """How many tasks can run at once."""

    def gpus(self) -> float:
        """GPUs the executor can schedule (0 when none)."""
        return 0.0

    def gpu_devices(self) -> list[DeviceReport]:
        """The GPUs tasks would run on, one report per GPU node ([] when none or unknown).

        A report with an ``error`` is a GPU the scheduler offers but a task cannot use
        (no CuPy on that node, a driver too old for it...).
        """
        return []

    def node_memory(self) -> int:
        """Memory of the largest node in bytes (0 when unknown)."""
        import psutil

        return int(psutil.virtual_memory().total)

    @abc.abstractmethod
    def run(self, tasks: Sequence[TaskSpec], on_result: Callable[[TaskResult], None]) -> None:
        """Run ``tasks``; call ``on_result`` on the driver for each finished one."""

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "workers": self.workers(), "gpus": self.gpus()}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the executor started."""


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` updated with ``values`` (those the user set win), then restored."""
    added = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


#: glibc ``mallopt`` parameters for the ``WORKER_ENV`` variables of the same meaning.
_MALLOPT = {"MALLOC_MMAP_THRESHOLD_": -3, "MALLOC_TRIM_THRESHOLD_": -1, "MALLOC_ARENA_MAX": -8}


def _set_allocator() -> None:
    """This process's glibc allocator as a local Ray's workers have it (``WORKER_ENV``;
    a variable the user set wins): the local executor runs tasks in the driver, where
    glibc's adaptive mmap threshold would otherwise keep decoded chunks on the heap
    (measured: the tree 266 MiB above its warm baseline against 220 MiB with these)."""
    global _ALLOCATOR_SET
    if _ALLOCATOR_SET:
        return
    _ALLOCATOR_SET = True
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return
    for name, param in _MALLOPT.items():
        mallopt(param, int(os.environ.get(name, WORKER_ENV[name])))


_ALLOCATOR_SET = False


def _release_freed_memory() -> None:
    """Return the heap's free pages to the system (glibc ``malloc_trim``; else nothing).

    The local executor runs tasks in the driver, whose allocator was set up before
    minjiang could choose its thresholds (``WORKER_ENV`` does that for Ray's workers):
    without this, decoded chunks freed by one task stay in the driver's heap.
    """
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        import ctypes
        import ctypes.util

        try:
            _MALLOC_TRIM = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _MALLOC_TRIM = False
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


_MALLOC_TRIM: Any = None


def _remote_traceback(err: BaseException) -> str:
    """The worker-side traceback a Ray task error carries ("" for a local error). The
    error ``ray.get`` raises subclasses the cause's type and formats, as its text,
    the traceback the worker recorded."""
    import sys

    ray_exceptions = sys.modules.get("ray.exceptions")
    if ray_exceptions is None or not isinstance(err, ray_exceptions.RayTaskError):
        return ""
    return str(getattr(err, "traceback_str", "") or err)


def _unwrap(err: BaseException, spec: TaskSpec) -> BaseException:
    """The error a failed task raises in the driver: a minjiang error as it is, any
    other exception as an :class:`ExecutionError` naming the operator, the task and
    its block, and keeping the original's type (``cause_type``), the task's
    traceback (``details``, from the worker on Ray) and the original as its cause."""
    import traceback

    cause = getattr(err, "cause", None) or err
    if isinstance(cause, MinjiangError):
        return cause
    block = ", ".join(
        f"{d}={s.start}:{s.stop}" for d, s in zip(spec.dims, spec.region, strict=True)
    )
    kind = type(cause)
    out = ExecutionError(
        f"task {spec.key} of {spec.operator} (dataset {spec.dataset_id}, block {block}) "
        f"failed: {kind.__name__}: {cause}; run again with --verbose for its traceback"
    )
    out.cause_type = f"{kind.__module__}.{kind.__qualname__}"
    out.task, out.operator = spec.key, spec.operator
    out.region = {d: (s.start, s.stop) for d, s in zip(spec.dims, spec.region, strict=True)}
    out.details = _remote_traceback(err) or "".join(traceback.format_exception(cause))
    out.__cause__ = cause
    return out


def _local_gpus() -> float:
    try:
        import cupy

        return float(cupy.cuda.runtime.getDeviceCount())
    except Exception:
        return 0.0


class LocalExecutor(Executor):
    """Sequential, in-process: for debugging, and as the test oracle for ``ray``."""

    name = "local"

    def workers(self) -> int:
        return 1

    def gpus(self) -> float:
        return _local_gpus()

    def gpu_devices(self) -> list[DeviceReport]:
        from minjiang.core._devices import device_report

        return [device_report(fresh=True)] if self.gpus() > 0 else []

    def run(self, tasks: Sequence[TaskSpec], on_result: Callable[[TaskResult], None]) -> None:
        import zarr
        from minjiang.core._tasks import run_task

        # as on a Ray worker: the same allocator settings, zarr's codec buffers bounded
        # (TASK_ZARR_CONCURRENCY), and what a task freed handed back to the system
        # before the next one starts
        _set_allocator()
        with zarr.config.set({"async.concurrency": TASK_ZARR_CONCURRENCY}):
            for spec in tasks:
                try:
                    result = run_task(spec)
                except MinjiangError:
                    raise
                except Exception as err:
                    raise _unwrap(err, spec) from err
                finally:
                    _release_freed_memory()
                on_result(result)


class RayExecutor(Executor):
    """Core Ray tasks with a bounded in-flight window and explicit retries.

    With no ``address`` (and no ``RAY_ADDRESS``) a local Ray is started on demand with
    ``num_cpus`` CPUs (the embedded default); otherwise it joins that cluster. A Ray
    already initialised in this process (a test session's) is reused as it is.
    """

    name = "ray"
    #: Seconds a device probe may wait for a GPU node (its GPUs may all be busy).
    probe_timeout: ClassVar[float] = 60.0
    #: Seconds a probe's answer is reused (plans of one run ask once).
    probe_ttl: ClassVar[float] = 30.0

    def __init__(
        self,
        *,
        address: str | None = None,
        num_cpus: int | None = None,
        max_retries: int = 3,
        window: int | None = None,
        runtime_env: dict[str, Any] | None = None,
    ) -> None:
        import ray

        self._ray = ray
        self._started = False
        # A driver that prints its workers' logs otherwise swaps the builtin print for
        # Ray's tqdm-safe one, and numba then cannot compile any @njit function that
        # prints ("Untyped global name 'print'"): a library imported after a run,
        # porespy for one, would fail to import.
        os.environ.setdefault("RAY_TQDM_PATCH_PRINT", "0")
        if not ray.is_initialized():
            address = address or os.environ.get("RAY_ADDRESS") or None
            if address is not None:
                from minjiang.core._jobs import use_cluster_token

                use_cluster_token()
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": True,
                "configure_logging": False,
            }
            if address is None:
                kwargs["num_cpus"] = num_cpus or os.cpu_count() or 1
                kwargs["object_store_memory"] = LOCAL_RAY_OBJECT_STORE_BYTES
            if runtime_env:
                kwargs["runtime_env"] = runtime_env
            if address is None:
                # The raylet and the workers it starts inherit this environment.
                with _environment(WORKER_ENV):
                    ray.init(address=address, **kwargs)
            else:
                ray.init(address=address, **kwargs)
            self._started = True
        self.max_retries = max_retries
        self._window = window
        self._remote = ray.remote(_ray_task)
        self._probed: tuple[float, list[DeviceReport]] | None = None

    def _resources(self) -> dict[str, float]:
        return dict(self._ray.cluster_resources())

    def workers(self) -> int:
        return max(1, int(self._resources().get("CPU", 1)))

    def gpus(self) -> float:
        return float(self._resources().get("GPU", 0.0))

    def gpu_devices(self) -> list[DeviceReport]:
        """Ask one task on each GPU node what its device is (cached ``probe_ttl`` s).

        The probe takes a sliver of one GPU (``num_gpus=0.0001``) so it runs beside
        work already there; a node whose GPUs stay taken past ``probe_timeout`` is left
        out (its memory unknown).
        """
        if self._probed and time.monotonic() - self._probed[0] < self.probe_ttl:
            return self._probed[1]
        ray = self._ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        nodes = [
            n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("GPU", 0) > 0
        ]
        if not nodes:
            return []
        probe = ray.remote(_probe_device)
        refs = [
            probe.options(
                num_cpus=0,
                num_gpus=0.0001,
                max_retries=0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False),
            ).remote()
            for n in nodes
        ]
        done, late = ray.wait(refs, num_returns=len(refs), timeout=self.probe_timeout)
        reports = []
        for ref in done:
            try:
                reports.append(ray.get(ref))
            except Exception as err:
                log.warning("GPU probe failed: %s", err)
        for ref in late:
            ray.cancel(ref, force=True)
        if late:
            log.warning(
                "%d GPU node(s) did not answer the device probe within %.0f s; their free "
                "memory is unknown",
                len(late),
                self.probe_timeout,
            )
        self._probed = (time.monotonic(), reports)
        return reports

    def node_memory(self) -> int:
        sizes = [
            n.get("Resources", {}).get("memory", 0) for n in self._ray.nodes() if n.get("Alive")
        ]
        return int(max(sizes, default=0))

    def run(self, tasks: Sequence[TaskSpec], on_result: Callable[[TaskResult], None]) -> None:
        ray = self._ray
        if not tasks:
            return
        window = self._window or 2 * self.workers()
        pending = list(reversed(tasks))
        in_flight: dict[Any, TaskSpec] = {}
        node_mem = self.node_memory()
        try:
            while pending or in_flight:
                while pending and len(in_flight) < window:
                    spec = pending.pop()
                    opts: dict[str, Any] = {
                        "num_cpus": spec.cpus,
                        "max_retries": self.max_retries,
                        "retry_exceptions": False,
                    }
                    if spec.gpus:
                        opts["num_gpus"] = spec.gpus
                    if spec.memory and node_mem and spec.memory <= node_mem:
                        opts["memory"] = spec.memory
                    if spec.resources:  # the step's custom resources
                        opts["resources"] = dict(spec.resources)
                    in_flight[self._remote.options(**opts).remote(spec)] = spec
                done, _ = ray.wait(list(in_flight), num_returns=1)
                for ref in done:
                    spec = in_flight.pop(ref)
                    try:
                        result = ray.get(ref)
                    except Exception as err:
                        raise _unwrap(err, spec) from getattr(err, "cause", None)
                    on_result(result)
        except BaseException:
            for ref in in_flight:
                ray.cancel(ref, force=False)
            raise

    def describe(self) -> dict[str, Any]:
        res = self._resources()
        return {
            "executor": "ray",
            "workers": int(res.get("CPU", 0)),
            "gpus": res.get("GPU", 0.0),
            "nodes": len([n for n in self._ray.nodes() if n.get("Alive")]),
        }

    def close(self) -> None:
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
        self._started = False


def _probe_device() -> DeviceReport:
    from minjiang.core._devices import device_report

    return device_report(fresh=True)


def _ray_task(spec: TaskSpec) -> TaskResult:
    from minjiang.core._tasks import run_task

    try:
        return run_task(spec)
    finally:
        # what the task freed goes back to the system before the worker's next task
        _release_freed_memory()


def create_executor(name: str, **options: Any) -> Executor:
    """Create the executor registered under ``name`` (``ray`` or ``local``)."""
    path = EXECUTORS.get(name)
    if path is None:
        raise PlanError(f"unknown executor {name!r}; choose one of {sorted(EXECUTORS)!r}")
    from minjiang.core._operator import import_dotted

    cls = import_dotted(path)
    if name == "local":
        return cls()
    return cls(**options)

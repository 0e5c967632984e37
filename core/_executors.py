"""Executors run the tasks of one stage: ``ray`` (default) and ``local`` (in-process).

The registry is an explicit dict of dotted paths, imported lazily; an unknown name is
an error that lists the valid ones.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
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
    "running_cluster",
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
#: without bound), a trim threshold of the same 32 MiB and at most two arenas for the
#: codec threads; every task ends with ``malloc_trim(0)``, so what it freed goes back
#: to the system (without it two workers held ~270 MiB each more after a run than
#: before). A 1 MiB mmap threshold returned memory as well but made every decoded chunk
#: an mmap, page faults and a munmap: reads 1.6x and writes 1.4x slower. A 1 MiB trim
#: threshold gave each freed chunk buffer back at once, so the next chunk's buffers
#: (its copy, blosc's output) were faulted in afresh: encoding cost 0.9-1.1 CPU-s per
#: GB inside a task against 0.5-0.7 with 32 MiB (docs/benchmarks.md).
WORKER_ENV: dict[str, str] = {
    "ZARR_ASYNC__CONCURRENCY": str(TASK_ZARR_CONCURRENCY),
    "MALLOC_MMAP_THRESHOLD_": str(32 << 20),
    "MALLOC_TRIM_THRESHOLD_": str(32 << 20),
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

    It joins ``address`` (or ``RAY_ADDRESS``); else the cluster ``minjiang cluster
    start`` recorded, or one ``ray start`` left where ``ray.init`` would find it; else
    it starts a local Ray of its own with ``num_cpus`` CPUs (``address="local"`` always
    does), on loopback, with token authentication, ended with the driver. A Ray
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
        self._ray: Any = None
        self._started = False
        # A driver that prints its workers' logs otherwise swaps the builtin print for
        # Ray's tqdm-safe one, and numba then cannot compile any @njit function that
        # prints ("Untyped global name 'print'"): a library imported after a run,
        # porespy for one, would fail to import.
        os.environ.setdefault("RAY_TQDM_PATCH_PRINT", "0")
        self._temp_dir: str | None = None
        self._watchdog: Any = None
        self._env_before: dict[str, str | None] = {}
        self.attached: str | None = None  #: what an attached cluster was found through
        self._num_cpus = num_cpus
        self._runtime_env = runtime_env
        self._target: str | None = None
        #: the node table of a recorded minjiang cluster, read over HTTP (no Ray needed)
        self._nodes: list[Any] | None = None
        self.max_retries = max_retries
        self._window = window
        self._remote: Any = None
        self._probed: tuple[float, list[DeviceReport]] | None = None
        #: (size, idle seconds) of the warm workers of a recorded minjiang cluster
        self._warm: tuple[int, float] | None = None
        self._pool: Any = None
        ray = sys.modules.get("ray")
        if ray is not None and ray.is_initialized():  # a test session's Ray, as it is
            self._ray = ray
            self._remote = ray.remote(_ray_task)
            # a long-lived driver of the recorded cluster (its run service) uses its pool
            self._warm = _warm_of(ray.get_runtime_context().gcs_address, runtime_env)
            return
        # Where to run is settled now (a conflict is an error before any work), but Ray
        # is imported and connected only when a task must run: a plan whose every step
        # is reused never pays for it, and the figures planning needs come from the
        # options (a local Ray) or the recorded cluster's node table.
        self._target, self.attached = _resolve_address(address, num_cpus)
        if self._target is not None:
            from minjiang.core._cluster import ClusterState, http_node_table

            state = ClusterState.load()
            if state is not None and self._target == state.address:
                with contextlib.suppress(MinjiangError):
                    self._nodes = http_node_table(state.dashboard, state.token_path)
                self._warm = _warm_of(self._target, runtime_env, state)

    def connect(self) -> Any:
        """The ``ray`` module, connected (or a local Ray started) on first use; the
        connection lasts until :meth:`close`."""
        if self._ray is not None:
            return self._ray
        import ray

        kwargs: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": True,
            "configure_logging": False,
        }
        if self._runtime_env:
            kwargs["runtime_env"] = self._runtime_env
        if self._target is None:
            self._ray = ray
            self._start_local(self._num_cpus, kwargs)
        else:
            from minjiang.core._cluster import is_loopback

            host = self._target.removeprefix("ray://").rpartition(":")[0]
            with _loopback_if(is_loopback(host) if host else False):
                ray.init(address=self._target, **kwargs)
            self._ray = ray
        self._started = True
        self._remote = ray.remote(_ray_task)
        return ray

    def _start_local(self, num_cpus: int | None, kwargs: dict[str, Any]) -> None:
        """A local Ray for this driver alone, as locked down as ``ray.init`` allows:
        node IP 127.0.0.1 (so every server listens on loopback), token authentication
        with a token of its own (0600) in its own temp folder (0700), no dashboard, and
        a watchdog that ends its processes when this driver exits or is killed."""
        import subprocess
        import sys
        import tempfile
        from pathlib import Path

        from minjiang.core._cluster import (
            Ports,
            _tighten,
            ensure_token,
            loopback_ray,
            refresh_ray_auth,
        )

        ray = self._ray
        self._temp_dir = tempfile.mkdtemp(prefix="mjray-", dir="/tmp")  # short socket paths
        token = ensure_token(Path(self._temp_dir) / "auth")
        env = {
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(token),
            "RAY_USAGE_STATS_ENABLED": "0",
        }
        self._env_before = {k: os.environ.get(k) for k in (*env, "RAY_AUTH_TOKEN")}
        os.environ.update(env)
        os.environ.pop("RAY_AUTH_TOKEN", None)
        refresh_ray_auth()
        kwargs.update(
            address="local",
            num_cpus=num_cpus or os.cpu_count() or 1,
            object_store_memory=LOCAL_RAY_OBJECT_STORE_BYTES,
            _node_ip_address="127.0.0.1",
            # inside a folder that is 0700 from the start (Ray makes its own 0777)
            _temp_dir=os.path.join(self._temp_dir, "r"),
        )
        # The raylet and the workers it starts inherit this environment; the metrics
        # ports of Ray's monitor and dashboard are fixed unless set, and would clash
        # with another Ray on this host.
        ports = Ports.free()
        extra = {
            "AUTOSCALER_METRIC_PORT": str(ports.autoscaler_metrics),
            "DASHBOARD_METRIC_PORT": str(ports.dashboard_metrics),
        }
        with _environment({**WORKER_ENV, **extra}), loopback_ray():
            ray.init(**kwargs)
        _tighten(Path(self._temp_dir))
        self._watchdog = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("_watchdog.py")),
                str(os.getpid()),
                self._temp_dir,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _resources(self) -> dict[str, float]:
        if self._ray is None and self._nodes is not None:
            total: dict[str, float] = {}
            for node in self._nodes:
                for key, value in node.resources.items():
                    total[key] = total.get(key, 0.0) + value
            return total
        return dict(self.connect().cluster_resources())

    def workers(self) -> int:
        if self._ray is None and self._target is None:  # the local Ray it would start
            return max(1, self._num_cpus or os.cpu_count() or 1)
        return max(1, int(self._resources().get("CPU", 1)))

    def gpus(self) -> float:
        if self._ray is None and self._target is None:
            return _local_gpus()
        return float(self._resources().get("GPU", 0.0))

    def gpu_devices(self) -> list[DeviceReport]:
        """Ask one task on each GPU node what its device is (cached ``probe_ttl`` s).

        The probe takes a sliver of one GPU (``num_gpus=0.0001``) so it runs beside
        work already there; a node whose GPUs stay taken past ``probe_timeout`` is left
        out (its memory unknown).
        """
        if self._probed and time.monotonic() - self._probed[0] < self.probe_ttl:
            return self._probed[1]
        ray = self.connect()
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
        if self._ray is None and self._nodes is not None:
            return int(max((n.memory for n in self._nodes), default=0))
        sizes = [
            n.get("Resources", {}).get("memory", 0)
            for n in self.connect().nodes()
            if n.get("Alive")
        ]
        return int(max(sizes, default=0))

    def run(self, tasks: Sequence[TaskSpec], on_result: Callable[[TaskResult], None]) -> None:
        if not tasks:
            return
        ray = self.connect()
        self._check_feasible(tasks)
        pool = self.warm_pool()
        window = self._window or 2 * self.workers()
        pending = list(reversed(tasks))
        # ref -> (task, the warm worker running it or None for a plain Ray task)
        in_flight: dict[Any, tuple[TaskSpec, Any]] = {}
        node_mem = self.node_memory()

        def plain(spec: TaskSpec) -> Any:
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
            return self._remote.options(**opts).remote(spec)

        try:
            while pending or in_flight:
                while pending and len(in_flight) < window:
                    spec = pending[-1]
                    if pool is not None and pool.takes(spec) and pool.actors:
                        sent = pool.submit(spec)
                        if sent is None:  # every warm worker has its queue full
                            break
                        in_flight[sent[0]] = (spec, sent[1])
                    else:
                        in_flight[plain(spec)] = (spec, None)
                    pending.pop()
                done, _ = ray.wait(list(in_flight), num_returns=1)
                for ref in done:
                    spec, actor = in_flight.pop(ref)
                    if actor is not None:
                        pool.done(actor)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayActorError:
                        # the warm worker died under it: run it again as a plain task
                        pool.drop(actor)
                        log.warning(
                            "a warm worker died running task %s; running it again", spec.key
                        )
                        in_flight[plain(spec)] = (spec, None)
                        continue
                    except Exception as err:
                        raise _unwrap(err, spec) from getattr(err, "cause", None)
                    on_result(result)
        except BaseException:
            for ref in in_flight:
                ray.cancel(ref, force=False)
            raise

    def warm_pool(self) -> Any:
        """The warm workers this executor hands its tasks to (``core/_warm.py``), found
        or started on first use; None where there are none (not a cluster ``minjiang
        cluster start`` started with warm workers, or a driver with a runtime
        environment, which warm workers do not share)."""
        if self._pool is None and self._warm is not None:
            ray = self.connect()
            if dict(ray.get_runtime_context().runtime_env or {}):
                self._warm = None
                return None
            from minjiang.core._warm import WarmPool

            size, idle_s = self._warm
            self._pool = WarmPool.shared(ray, size, idle_s)
        return self._pool

    def _check_feasible(self, tasks: Sequence[TaskSpec]) -> None:
        """Refuse a task that asks for what no live node has (CPUs, GPUs, memory, a
        custom resource): Ray would leave it pending forever."""
        from minjiang.core._cluster import check_tasks_feasible, nodes_from_ray

        by_operator: dict[str, list[TaskSpec]] = {}
        for spec in tasks:
            by_operator.setdefault(spec.operator, []).append(spec)
        check_tasks_feasible(
            ((f"operator {op!r}", specs) for op, specs in by_operator.items()),
            nodes_from_ray(self._ray),
        )

    def describe(self) -> dict[str, Any]:
        res = self._resources()
        return {
            "executor": "ray",
            "workers": int(res.get("CPU", 0)),
            "gpus": res.get("GPU", 0.0),
            "nodes": len([n for n in self.connect().nodes() if n.get("Alive")]),
        }

    def close(self) -> None:
        if self._started and self._ray is not None and self._ray.is_initialized():
            self._ray.shutdown()
        self._started = False
        if self._temp_dir is not None:
            import shutil

            from minjiang.core._cluster import cluster_processes, refresh_ray_auth, terminate

            # what ray.shutdown left behind (agents, idle workers), by this Ray's folder
            terminate(cluster_processes(self._temp_dir), grace=2.0)
            if self._watchdog is not None:
                self._watchdog.kill()
                self._watchdog.wait()
                self._watchdog = None
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None
            for key, value in self._env_before.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            refresh_ray_auth()


def _warm_of(
    address: str, runtime_env: dict[str, Any] | None, state: Any = None
) -> tuple[int, float] | None:
    """(size, idle seconds) of the warm workers a driver of ``address`` uses: those of
    the cluster ``minjiang cluster start`` recorded, when that is the one (and the
    driver has no runtime environment, which warm workers do not share)."""
    from minjiang.core._cluster import ClusterState

    state = state or ClusterState.load()
    if state is None or state.address != address or state.warm_workers <= 0 or runtime_env:
        return None
    return state.warm_workers, state.warm_idle_s


def _loopback_if(flag: bool) -> contextlib.AbstractContextManager[None]:
    if not flag:
        return contextlib.nullcontext()
    from minjiang.core._cluster import loopback_ray

    return loopback_ray()


def _reachable(address: str) -> bool:
    import socket

    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except (OSError, ValueError):
        return False


def _resolve_address(address: str | None, num_cpus: int | None) -> tuple[str | None, str | None]:
    """Where a Ray executor connects: ``(address, how it was found)``, or ``(None,
    None)`` to start a local Ray of its own.

    In order: ``address`` (``"local"`` asks for a new local Ray), ``RAY_ADDRESS``, the
    cluster ``minjiang cluster start`` recorded, and a cluster ``ray start`` left in
    Ray's default temp folder (which ``ray.init`` would join on its own). Options for a
    local Ray (``num_cpus``) cannot apply to a cluster that is already running.
    """
    from minjiang.core._cluster import ClusterError, use_token_for

    explicit = address or os.environ.get("RAY_ADDRESS") or None
    if explicit == "local":
        return None, None
    if explicit is not None:
        use_token_for(explicit)
        return explicit, "address"
    found = running_cluster()
    if found is None:
        return None, None
    if num_cpus is not None:
        raise ClusterError(
            f"a Ray cluster is already running at {found[0]} ({found[1]}) and minjiang "
            f"would use it, but --num-cpus {num_cpus} only applies to a Ray that minjiang "
            "starts: drop --num-cpus to use the running cluster, or add --new-cluster to "
            "start a separate local Ray"
        )
    use_token_for(found[0])
    return found[0], found[1]


def running_cluster() -> tuple[str, str] | None:
    """The running cluster a Ray executor without an address would join, as ``(address,
    how it was found)``, or None; nothing is connected to.

    A cluster ``minjiang cluster start`` recorded comes first, then one ``ray start``
    recorded in Ray's default temp folder (``ray.init()`` would join that one itself).
    """
    from minjiang.core._cluster import cluster_dir, find_running

    state = find_running()
    if state is not None:
        return state.address, f"the minjiang cluster recorded in {cluster_dir()}"
    record = _ray_address_file()
    try:
        boot = record.read_text().strip()
    except OSError:
        return None
    if boot and _reachable(boot):
        return boot, f"the Ray cluster `ray start` recorded in {record}"
    return None


def _ray_address_file() -> Path:
    """Where ``ray start`` records the cluster that ``ray.init()`` joins by itself
    (Ray's ``get_ray_address_file(None)``, found without importing Ray)."""
    base = os.environ.get("RAY_TMPDIR")
    if base is None:
        base = os.environ.get("TMPDIR") if sys.platform.startswith("linux") else None
    return Path(base or "/tmp") / "ray" / "ray_current_cluster"


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

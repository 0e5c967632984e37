"""Executors run the tasks of one stage: ``ray`` (default) and ``local`` (in-process).

The registry is an explicit dict of dotted paths, imported lazily; an unknown name is
an error that lists the valid ones.
"""

from __future__ import annotations

import abc
import logging
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from minjiang.core.errors import ExecutionError, MinjiangError, PlanError

if TYPE_CHECKING:
    from minjiang.core._events import TaskResult
    from minjiang.core._planner import TaskSpec

log = logging.getLogger("minjiang.executor")

__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "RayExecutor", "create_executor"]

EXECUTORS: dict[str, str] = {
    "local": "minjiang.core._executors:LocalExecutor",
    "ray": "minjiang.core._executors:RayExecutor",
}


class Executor(abc.ABC):
    """Runs independent tasks and reports each result as it arrives."""

    name: ClassVar[str] = ""
    supports_gpu: ClassVar[bool] = False

    @abc.abstractmethod
    def workers(self) -> int:
        """How many tasks can run at once."""

    def gpus(self) -> float:
        """GPUs the executor can schedule (0 when none)."""
        return 0.0

    def gpu_memory(self) -> int:
        """Free memory of the smallest GPU in bytes (0 when unknown)."""
        return 0

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


def _unwrap(err: BaseException, spec: TaskSpec) -> BaseException:
    cause = getattr(err, "cause", None) or err
    if isinstance(cause, MinjiangError):
        return cause
    return ExecutionError(
        f"task {spec.key} of {spec.operator} (dataset {spec.dataset_id}) failed: {type(cause).__name__}: {cause}"
    )


def _local_gpus() -> float:
    try:
        import cupy

        return float(cupy.cuda.runtime.getDeviceCount())
    except Exception:
        return 0.0


def _local_gpu_free() -> int:
    try:
        import cupy

        return int(cupy.cuda.runtime.memGetInfo()[0])
    except Exception:
        return 0


class LocalExecutor(Executor):
    """Sequential, in-process: for debugging, and as the test oracle for ``ray``."""

    name = "local"
    supports_gpu = True

    def workers(self) -> int:
        return 1

    def gpus(self) -> float:
        return _local_gpus()

    def gpu_memory(self) -> int:
        return _local_gpu_free()

    def run(self, tasks: Sequence[TaskSpec], on_result: Callable[[TaskResult], None]) -> None:
        from minjiang.core._tasks import run_task

        for spec in tasks:
            try:
                result = run_task(spec)
            except MinjiangError:
                raise
            except Exception as err:
                raise _unwrap(err, spec) from err
            on_result(result)


class RayExecutor(Executor):
    """Core Ray tasks with a bounded in-flight window and explicit retries.

    With no ``address`` (and no ``RAY_ADDRESS``) a local Ray is started on demand with
    ``num_cpus`` CPUs (the embedded default); otherwise it joins that cluster. A Ray
    already initialised in this process (a test session's) is reused as it is.
    """

    name = "ray"
    supports_gpu = True

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
            if runtime_env:
                kwargs["runtime_env"] = runtime_env
            ray.init(address=address, **kwargs)
            self._started = True
        self.max_retries = max_retries
        self._window = window
        self._remote = ray.remote(_ray_task)

    def _resources(self) -> dict[str, float]:
        return dict(self._ray.cluster_resources())

    def workers(self) -> int:
        return max(1, int(self._resources().get("CPU", 1)))

    def gpus(self) -> float:
        return float(self._resources().get("GPU", 0.0))

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
                    in_flight[self._remote.options(**opts).remote(spec)] = spec
                done, _ = ray.wait(list(in_flight), num_returns=1)
                for ref in done:
                    spec = in_flight.pop(ref)
                    try:
                        result = ray.get(ref)
                    except Exception as err:
                        raise _unwrap(err, spec) from None
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


def _ray_task(spec: TaskSpec) -> TaskResult:
    from minjiang.core._tasks import run_task

    return run_task(spec)


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

"""Warm workers: Ray actors that outlive a job and run minjiang's tasks for later jobs.

On a Ray cluster every job gets worker processes of its own. Each ``minjiang run``
therefore pays, before its first task starts, for starting a worker and for what a
task imports (numpy, zarr, numba and the kernels' cached machine code): about 2.5 s
on a 2-core host, more than a small job's work. On a cluster that ``minjiang cluster
start`` started, the Ray executor instead hands its CPU tasks to *warm workers*:
named, detached actors in the namespace :data:`NAMESPACE` that the first job creates
and later jobs find by name.

What keeps a long-lived process from running stale or foreign code:

* A pool is keyed by what a fresh worker of the driver would share with it (the
  interpreter, the import path, minjiang's version; :func:`pool_key`): a driver with
  another key gets a pool of its own.
* A warm worker records the file (mtime, size) of every module it has imported; a
  driver asks each worker whether any changed (:meth:`WarmWorker.changed`) before
  using it, and replaces one that answers no. Editing a plugin's source between two
  runs thus gets a fresh process for the second.
* A warm worker left idle for ``idle_s`` seconds exits by itself, so the pools of
  drivers that stopped coming go away.

What they do not do: hold Ray resources. A warm worker reserves no CPU (``num_cpus=0``;
one that held a CPU would starve every plain task on the node), so concurrency is
bounded by the pool's size, which is the node's CPU count. Only tasks a plain Ray task
of one CPU would run go to them (no GPU, no custom resources, one CPU); the others,
and every task of a driver with a runtime environment, run as plain Ray tasks. A task
whose warm worker dies under it is run again as a plain Ray task.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from minjiang.core._events import TaskResult
    from minjiang.core._tasks import TaskSpec

log = logging.getLogger("minjiang")

__all__ = ["NAMESPACE", "WarmPool", "WarmWorker", "pool_key"]

#: Ray namespace of the warm workers.
NAMESPACE = "minjiang-warm"
#: Calls queued on one warm worker at a time (one runs, the next waits beside it).
DEPTH = 2


def _import_path() -> list[str]:
    return [os.path.abspath(p) for p in sys.path if p]


def pool_key() -> str:
    """What a warm worker shares with the driver that uses it: the interpreter, the
    import path (a warm worker takes the driver's) and minjiang's version, hashed."""
    import minjiang

    ident = [sys.executable, _import_path(), minjiang.__version__]
    return hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:12]


def _stamp(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


class ModuleStamps:
    """The file (mtime, size) of every module this process has imported: a long-lived
    process asks :meth:`changed` whether what it runs is still what is on disk."""

    def __init__(self) -> None:
        self._stamps: dict[str, tuple[int, int] | None] = {}
        self._noted = 0
        self.note()

    def note(self) -> None:
        """Record the file of each module imported since the last call."""
        if len(sys.modules) == self._noted:
            return
        for module in list(sys.modules.values()):
            path = getattr(module, "__file__", None)
            if isinstance(path, str) and path not in self._stamps:
                self._stamps[path] = _stamp(path)
        self._noted = len(sys.modules)

    def changed(self) -> list[str]:
        """The module files that changed since they were imported (none: current)."""
        self.note()
        return [path for path, stamp in self._stamps.items() if _stamp(path) != stamp]


class WarmWorker:
    """One warm worker (wrapped by ``ray.remote`` in :class:`WarmPool`).

    Parameters
    ----------
    key
        The :func:`pool_key` of the driver that started it.
    path
        That driver's import path, put first on its own (a plain task's worker gets
        it from the job; a detached actor does not, and the tasks it is sent name
        their kernels by module).
    idle_s
        Seconds without a task after which it exits (0: never).
    exit
        What ends the process (``os._exit``; a test passes its own).
    """

    def __init__(
        self, key: str, path: list[str], idle_s: float, exit: Callable[[int], Any] = os._exit
    ) -> None:
        sys.path[:0] = [p for p in path if p not in sys.path]
        # what every task imports, paid once (a task's own kernels load on first use)
        import minjiang.core._tasks
        import minjiang.storage  # noqa: F401
        import zarr  # noqa: F401

        self.key = key
        self._idle_s = idle_s
        self._exit = exit
        self._lock = threading.Lock()
        self._busy = 0
        self._last = time.monotonic()
        self._modules = ModuleStamps()
        self.tasks_run = 0
        if idle_s > 0:
            threading.Thread(target=self._reap, name="minjiang-warm-idle", daemon=True).start()

    def changed(self) -> tuple[list[str], int]:
        """The module files it imported that changed since (none: it is current), and
        how many tasks it has run (the kernels those loaded are warm). A run asks this
        as it begins, so the worker also forgets the catalog records it cached."""
        from minjiang.storage import forget_cached

        forget_cached()
        return self._modules.changed(), self.tasks_run

    def run(self, spec: TaskSpec) -> TaskResult:
        """Run one task, exactly as a plain Ray task would."""
        from minjiang.core._executors import _ray_task

        with self._lock:
            self._busy += 1
        try:
            return _ray_task(spec)
        finally:
            self._modules.note()
            with self._lock:
                self._busy -= 1
                self.tasks_run += 1
                self._last = time.monotonic()

    def idle_for(self) -> float:
        """Seconds since it last finished a task (0 while one runs)."""
        with self._lock:
            return 0.0 if self._busy else time.monotonic() - self._last

    def _reap(self) -> None:
        while True:
            time.sleep(min(max(self._idle_s / 4, 0.05), 30.0))
            if self.idle_for() > self._idle_s:
                self._exit(0)
                return


#: the pools :meth:`WarmPool.shared` gathered, by (GCS address, size, idle seconds)
_SHARED: dict[tuple[str, int, float], WarmPool] = {}


class WarmPool:
    """The warm workers of one :func:`pool_key` on the connected cluster, found by
    name or created, each checked with :meth:`~WarmWorker.changed` before use.

    Parameters
    ----------
    ray
        The connected ``ray`` module.
    size
        How many workers (the node's CPUs).
    idle_s
        Idle seconds after which a worker exits.
    """

    def __init__(self, ray: Any, size: int, idle_s: float) -> None:
        self.ray = ray
        self.key = pool_key()
        self.size = size
        self.idle_s = idle_s
        self._cls = ray.remote(WarmWorker)
        self.actors: list[Any] = []
        self.replaced = 0  #: stale or dead workers replaced when the pool was gathered
        self.created = 0
        self.refresh()

    @classmethod
    def shared(cls, ray: Any, size: int, idle_s: float) -> WarmPool:
        """This process's pool on the connected cluster: gathered on first use and
        checked again (:meth:`refresh`) on each later one, so a long-lived driver (the
        run service, ``core/_service.py``) pays for finding its workers once."""
        where = (ray.get_runtime_context().gcs_address, size, idle_s)
        pool = _SHARED.get(where)
        if pool is None:
            pool = _SHARED[where] = cls(ray, size, idle_s)
        else:
            pool.refresh()
        return pool

    def refresh(self) -> None:
        """Gather the workers again: a stale, dead or missing one is replaced, and every
        queue starts empty (a run stopped mid-way leaves none behind)."""
        self.actors = []
        self._gather(self.size)
        self._load = {id(a): 0 for a in self.actors}

    def _gather(self, size: int) -> None:
        ray = self.ray
        names = sorted(
            n["name"]
            for n in ray.util.list_named_actors(all_namespaces=True)
            if n.get("namespace") == NAMESPACE and n["name"].startswith(self.key + "-")
        )
        found = []
        for name in names[:size]:
            with contextlib.suppress(ValueError):
                found.append(ray.get_actor(name, namespace=NAMESPACE))
        checks = []
        for actor in found:
            try:
                checks.append(actor.changed.remote())
            except AttributeError:  # a worker of an older WarmWorker class
                checks.append(None)
        used: dict[int, int] = {}
        for actor, check in zip(found, checks, strict=True):
            try:
                changed, used[id(actor)] = (
                    (["its class changed"], 0) if check is None else ray.get(check, timeout=60)
                )
            except Exception as err:  # died, or busy past the timeout with another job's task
                changed = [f"{type(err).__name__}"]
            if not changed:
                self.actors.append(actor)
            else:
                log.info("replacing a warm worker (%s)", ", ".join(changed[:3]))
                with contextlib.suppress(Exception):
                    ray.kill(actor, no_restart=True)
                self.replaced += 1
        # the most used first: an equally loaded pool sends work where kernels are loaded
        self.actors.sort(key=lambda a: -used.get(id(a), 0))
        while len(self.actors) < size:
            name = f"{self.key}-{uuid.uuid4().hex[:8]}"
            actor = self._cls.options(
                name=name,
                namespace=NAMESPACE,
                lifetime="detached",
                num_cpus=0,
                max_restarts=0,
                max_concurrency=1,
            ).remote(self.key, _import_path(), self.idle_s)
            self.actors.append(actor)
            self.created += 1

    @staticmethod
    def takes(spec: TaskSpec) -> bool:
        """Whether a warm worker may run ``spec`` (what one CPU of a plain task runs)."""
        return not spec.gpus and not spec.resources and spec.cpus <= 1

    def submit(self, spec: TaskSpec) -> tuple[Any, Any] | None:
        """Send ``spec`` to the least loaded worker: ``(ref, worker)``, or None when
        every worker already has :data:`DEPTH` calls."""
        if not self.actors:
            return None
        actor = min(self.actors, key=lambda a: self._load[id(a)])
        if self._load[id(actor)] >= DEPTH:
            return None
        self._load[id(actor)] += 1
        return actor.run.remote(spec), actor

    def done(self, actor: Any) -> None:
        """A call on ``actor`` returned."""
        if id(actor) in self._load:
            self._load[id(actor)] -= 1

    def drop(self, actor: Any) -> None:
        """``actor`` died: no more calls go to it."""
        self.actors = [a for a in self.actors if a is not actor]
        self._load.pop(id(actor), None)

"""pytest fixtures for plugin authors (loaded through the ``pytest11`` entry point).

* ``minjiang_store`` – a fresh temporary store folder;
* ``runtime`` – a fresh :class:`minjiang.Runtime` on that store with the in-process
  ``local`` executor (fast, deterministic: the test oracle);
* ``ray_session`` – one local Ray for the whole test session (2 CPUs unless
  ``MINJIANG_TEST_RAY_CPUS`` says otherwise), shut down at the end;
* ``ray_runtime`` – a fresh runtime on the ``ray`` executor, on that shared Ray;
* :func:`tmp_plugin` – register a plugin object on a runtime for a ``with`` block.

Nothing heavy is imported until a fixture is used.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from minjiang.core._runtime import Runtime

__all__ = ["tmp_plugin"]


@contextlib.contextmanager
def tmp_plugin(runtime: Runtime, plugin: Any, name: str | None = None) -> Iterator[Runtime]:
    """Register ``plugin`` (a module or an object with ``@hookimpl`` methods) on
    ``runtime`` for the duration of the block (npe2's ``tmp_plugin`` in spirit)."""
    from minjiang.core._plugins import Registry

    before = runtime.registry
    runtime.register(plugin, name=name or f"tmp-{id(plugin):x}")
    try:
        yield runtime
    finally:
        runtime.registry.pm.unregister(plugin)
        runtime.registry = Registry(before.pm, before.problems)


@pytest.fixture
def minjiang_store(tmp_path: Path) -> Path:
    """A fresh, empty store folder."""
    return tmp_path / "store"


@pytest.fixture
def runtime(minjiang_store: Path) -> Iterator[Runtime]:
    """A fresh runtime with the ``local`` executor on a temporary store."""
    from minjiang.core._runtime import Runtime

    rt = Runtime(store=minjiang_store, executor="local", memory_budget="2GiB")
    yield rt
    rt.close()


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    """One local Ray per test session (starting Ray costs seconds)."""
    ray = pytest.importorskip("ray")
    started = False
    if not ray.is_initialized():
        ray.init(
            num_cpus=int(os.environ.get("MINJIANG_TEST_RAY_CPUS", "2")),
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
        started = True
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture
def ray_runtime(ray_session: Any, minjiang_store: Path) -> Iterator[Runtime]:
    """A fresh runtime with the ``ray`` executor, on the session's Ray."""
    from minjiang.core._runtime import Runtime

    rt = Runtime(store=minjiang_store, executor="ray", memory_budget="2GiB")
    yield rt
    rt.close()  # does not stop the shared Ray: this runtime did not start it

"""pytest fixtures for plugin authors (loaded through the ``pytest11`` entry point).

* ``minjiang_store`` – a fresh temporary store folder;
* ``runtime`` – a fresh :class:`minjiang.Runtime` on that store with the in-process
  ``local`` executor (fast, deterministic: the test oracle);
* ``ray_session`` – one local Ray for the whole test session (2 CPUs unless
  ``MINJIANG_TEST_RAY_CPUS`` says otherwise), shut down at the end;
* ``ray_runtime`` – a fresh runtime on the ``ray`` executor, on that shared Ray;
* :func:`tmp_plugin` – register a plugin object on a runtime for a ``with`` block;
* :func:`assert_one_writer_per_chunk` – check that a plan writes every output chunk
  from exactly one task.

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

__all__ = ["assert_one_writer_per_chunk", "tmp_plugin"]


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


def assert_one_writer_per_chunk(plan: Any) -> None:
    """Fail if two tasks of a plan write the same chunk of an output array.

    Tasks run in parallel and write chunks without locks, so each chunk must have one
    writer (see docs/architecture.md). ``plan`` is what :meth:`Runtime.plan` returns.
    Scratch arrays (rechunk targets), whose chunks the plan does not list, are checked
    for overlapping regions instead.
    """
    import itertools

    def overlap(a: tuple[slice, ...], b: tuple[slice, ...]) -> bool:
        return all(x.start < y.stop and y.start < x.stop for x, y in zip(a, b, strict=True))

    for step in plan.steps:
        arrays = getattr(step, "arrays", None)
        if arrays is None:  # an ingest
            continue
        for stage in step.stages:
            owner: dict[tuple[str, tuple[int, ...]], str] = {}
            scratch: list[tuple[str, tuple[slice, ...], str]] = []
            for task in stage.tasks:
                for w in task.writes:
                    where = f"step {step.step!r}, stage {stage.name!r}: tasks"
                    if w.scratch or w.array not in arrays:
                        for name, region, other in scratch:
                            if name == w.array and overlap(region, w.region):
                                raise AssertionError(
                                    f"{where} {other} and {task.key} both write {w.region!r} "
                                    f"of scratch array {w.array!r}"
                                )
                        scratch.append((w.array, w.region, task.key))
                        continue
                    chunks = arrays[w.array].chunks
                    ranges = [
                        range(r.start // c, -(-r.stop // c))
                        for r, c in zip(w.region, chunks, strict=True)
                    ]
                    for idx in itertools.product(*ranges):
                        if (w.array, idx) in owner:
                            raise AssertionError(
                                f"{where} {owner[w.array, idx]} and {task.key} both write "
                                f"chunk {idx} of {w.array!r}"
                            )
                        owner[w.array, idx] = task.key


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

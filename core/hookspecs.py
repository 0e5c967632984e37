"""The plugin contract: every hook minjiang calls, in one module.

Plugins are ordinary Python modules (or objects) with functions decorated by
:data:`hookimpl`, registered through the ``minjiang`` entry-point group::

    [project.entry-points.minjiang]
    mylab = "mylab_minjiang"          # a module with @hookimpl functions

Every hook is named ``minjiang_<verb>_<noun>``, is called with keyword arguments
only, and evolves only by gaining arguments (an implementation may accept any
subset of the arguments, so old plugins keep working). Return types are fixed.
The built-in domain plugins (medicine, forestry, ocean, materials) and the generic
``array`` operators register through these same hooks and entry points.

A runtime owns its own ``pluggy.PluginManager``; there are no module globals, and
Ray workers never see it: tasks carry dotted import paths to kernels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from minjiang.core._events import RunEvent
    from minjiang.core._operator import Operator
    from minjiang.core._pipeline import Pipeline
    from minjiang.core._reader import Reader
    from minjiang.storage import Record

PROJECT = "minjiang"

hookspec = pluggy.HookspecMarker(PROJECT)
#: Decorator for plugin hook implementations: ``@minjiang.hookimpl``.
hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = [
    "PROJECT",
    "hookimpl",
    "hookspec",
    "minjiang_catalog_metadata",
    "minjiang_configure",
    "minjiang_register_operators",
    "minjiang_register_pipelines",
    "minjiang_register_readers",
    "minjiang_run_event",
]


@hookspec
def minjiang_register_operators() -> list[Operator]:
    """Return the operators this plugin provides.

    Called once per runtime, when the operator registry is first needed. Each
    :class:`minjiang.Operator` carries a namespaced name (``ocean.marine_heatwaves``),
    a version, its input contract, a pydantic parameter model, its outputs, a chunk
    pattern and its kernels by dotted path. Names must be unique across plugins: a
    second registration of a name is reported as a :class:`minjiang.core.errors.PluginError`
    naming both plugins.

    Keep the module light: import numba, CuPy and big libraries inside kernel
    functions, not at the top of the plugin module.

    Returns
    -------
    list of Operator
        Possibly empty.
    """


@hookspec
def minjiang_register_readers() -> list[Reader]:
    """Return the ingest readers this plugin provides.

    A :class:`minjiang.core.Reader` has a namespaced name (``ocean.netcdf``), a
    version, ``guess_can_open(path)`` and ``open(paths, params)`` returning a lazy
    :class:`xarray.Dataset`. Readers must validate their input fully and raise
    :class:`minjiang.core.errors.ReaderError` (never leaking file contents or PHI
    into messages) before anything is written.

    Returns
    -------
    list of Reader
    """


@hookspec
def minjiang_register_pipelines() -> list[Pipeline]:
    """Return named, versioned pipelines (domain workflows) this plugin provides.

    A :class:`minjiang.Pipeline` has a namespaced ``name`` and a ``version``; users
    run it with ``minjiang run NAME`` or ``Runtime.run_pipeline(NAME, inputs=...)``.

    Returns
    -------
    list of Pipeline
    """


@hookspec
def minjiang_configure(config: dict[str, Any]) -> None:
    """Read the plugin's own configuration section.

    Called once per runtime after all plugins are registered. ``config`` is the
    runtime's whole configuration mapping (from ``Runtime(config=...)``); a plugin
    reads ``config.get("<plugin name>", {})`` and must not mutate other sections.
    Raise :class:`minjiang.core.errors.PluginError` for invalid settings.
    """


@hookspec
def minjiang_catalog_metadata(record: Record) -> dict[str, Any] | None:
    """Add domain fields to a catalog record before it is published.

    Called for every dataset about to be committed, with the complete record.
    Return a mapping of extra fields (JSON-safe, no patient data) to merge under
    ``record.metadata[<plugin name>]``, or ``None`` to add nothing.
    """


@hookspec
def minjiang_run_event(event: RunEvent) -> None:
    """Observe job, step and task events (progress bars, audit trails, metrics).

    ``event`` is a frozen :class:`minjiang.core.RunEvent` with ``kind`` one of
    ``run_started``, ``step_planned``, ``step_reused``, ``step_started``,
    ``task_finished``, ``task_skipped``, ``step_committed``, ``run_finished``,
    ``run_failed``, and the ids, counts and timings that go with it. Called on the
    driver, synchronously: implementations must be quick and must not raise (an
    exception is reported with the plugin's name and otherwise ignored).
    """

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

Hooks are called through pluggy (``pm.hook.<name>(...)``), so pluggy's rules hold:
implementations run last-registered first unless marked ``tryfirst``/``trylast``;
a ``@hookimpl(wrapper=True)`` generator wraps the call, receives the list of the other
implementations' results and may return a different list; ``None`` results are left
out. An implementation that raises is reported with its plugin's name (``minjiang
plugins`` lists it as skipped) and the hook is called again without it, so one broken
plugin never breaks the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from minjiang.core._events import RunEvent
    from minjiang.core._operator import Operator
    from minjiang.core._pipeline import Pipeline, Report
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
    "minjiang_register_reports",
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
    :class:`xarray.Dataset`. ``guess_can_open`` is how ``minjiang ingest PATH...``
    picks a reader when none is named: it must be cheap (the name, at most a few
    header bytes), must not raise, and should claim only what ``open`` can read; when
    no reader or more than one claims every path, the user is asked to name one. Readers must validate their input fully and raise
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
    Its ``report``, if any, names a report registered through
    :func:`minjiang_register_reports` (by this plugin or another).

    Returns
    -------
    list of Pipeline
    """


@hookspec
def minjiang_register_reports() -> list[Report]:
    """Return the reports this plugin can write after a pipeline run.

    A :class:`minjiang.core.Report` has a namespaced ``name`` (``ocean.mhw_quicklook``),
    a ``function(results, directory) -> [paths]``, the ``steps`` (step ids) it reads
    and a one-line ``description``. A pipeline names a report in its ``report`` field;
    that is the only way a pipeline runs code after its steps: a pipeline file cannot
    name an import path, so it can only choose among the reports installed plugins
    registered. The name is looked up when the pipeline is planned: an unknown name is
    a :class:`minjiang.core.errors.PipelineError` listing the registered reports, and
    a report whose ``steps`` the pipeline lacks is refused the same way, before any
    work starts.

    ``function`` runs on the driver after every step has been committed. ``results``
    maps step id to :class:`minjiang.Result`; ``directory`` is the report's own folder
    in the store (``reports/<pipeline>/<last dataset id>/``), and the function writes
    only there and returns the files it wrote. An exception it raises becomes a
    :class:`minjiang.core.errors.PluginError` naming the report; the committed datasets
    are kept. Names must be unique across plugins, as for operators.

    Returns
    -------
    list of Report
        Possibly empty.
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

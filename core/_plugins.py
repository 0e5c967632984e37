"""Plugin loading: one PluginManager per runtime, entry points loaded lazily.

Hooks are called through ``pm.hook.<name>(...)``, so pluggy decides the order
(``tryfirst``/``trylast``, then last registered first), runs hook wrappers around
the call, and traces it. A plugin that fails to import, or whose hook raises, is
reported by name and skipped; it never breaks the others. So is a plugin with a
hook implementation named after no hook (a misspelling); a function named like a hook
but not marked ``@hookimpl``, and a second registration of a taken operator, reader,
pipeline or report name, are reported (the later registration is skipped).

Compatibility gate: a plugin declares the plugin API versions it supports as a
module (or object) attribute, ``MINJIANG_API = ">=1.0,<2"``; a plugin whose range
does not hold :data:`minjiang.API_VERSION`, or whose declaration cannot be read, is
refused like the other faults, with a report naming both versions and the fix. An
attribute rather than a hook: the range must be read before any hook of the plugin
is trusted, and an attribute costs nothing to read. A plugin that declares nothing is
loaded; ``minjiang doctor`` and ``minjiang validate`` warn about it.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import re
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pluggy
from minjiang.core import hookspecs
from minjiang.core.errors import OperatorNotFoundError, PipelineError, PluginError, ReaderError

if TYPE_CHECKING:
    from minjiang.core._operator import Operator
    from minjiang.core._pipeline import Pipeline, Report
    from minjiang.core._reader import Reader

log = logging.getLogger("minjiang.plugins")

__all__ = [
    "API_ATTRIBUTE",
    "PluginProblem",
    "Registry",
    "api_compatibility",
    "call_hook",
    "check_plugin",
    "make_plugin_manager",
    "parse_api_range",
    "suggested_range",
]

#: The attribute of a plugin module (or object) that declares the API range it supports.
API_ATTRIBUTE = "MINJIANG_API"
_CLAUSE = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(\d{1,6}(?:\.\d{1,6}){0,2})\s*$")


@dataclasses.dataclass(frozen=True)
class PluginProblem:
    """A plugin that was skipped, and why (the exception type and message)."""

    plugin: str
    stage: str
    error: str


def make_plugin_manager(
    plugins: Iterable[Any] = (), *, entry_points: bool = True
) -> tuple[pluggy.PluginManager, list[PluginProblem]]:
    """A fresh PluginManager with the ``minjiang`` entry points and ``plugins`` registered."""
    from importlib.metadata import entry_points as _entry_points

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    problems: list[PluginProblem] = []
    if entry_points:
        for ep in sorted(_entry_points(group=hookspecs.PROJECT), key=lambda e: e.name):
            if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
                pm.register(plugin, name=ep.name)
            except Exception as err:  # one broken plugin must not break the others
                problems.append(PluginProblem(ep.name, "import", f"{type(err).__name__}: {err}"))
                log.warning(
                    "plugin %r failed to load and was skipped: %s: %s",
                    ep.name,
                    type(err).__name__,
                    err,
                )
    for plugin in plugins:
        name = getattr(plugin, "__name__", None) or type(plugin).__name__
        try:
            pm.register(plugin, name=name)
        except Exception as err:
            problems.append(PluginProblem(name, "register", f"{type(err).__name__}: {err}"))
    for name, plugin in list(pm.list_name_plugin()):
        problems.extend(check_plugin(pm, name, plugin))
    return pm, problems


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = tuple(int(x) for x in text.split("."))
    return parts + (0,) * (3 - len(parts))


def parse_api_range(spec: object) -> list[tuple[str, tuple[int, ...]]]:
    """The clauses of an API range such as ``">=1.0,<2"``: ``(operator, version)`` pairs.

    A range is one or more comma-separated clauses, each an operator (``>=``, ``>``,
    ``<=``, ``<``, ``==``, ``!=``) and a version of one to three numbers; every clause
    must hold. Versions compare number by number, missing numbers being zero.

    Raises
    ------
    PluginError
        If ``spec`` is not such a string (the message shows the expected form).
    """
    if not isinstance(spec, str) or not spec.strip() or len(spec) > 200:
        shown = repr(spec)[:80]
        raise PluginError(
            f"{API_ATTRIBUTE} = {shown} is not an API range; declare one such as "
            f'{API_ATTRIBUTE} = ">=1.0,<2" (comma-separated >=, >, <=, <, ==, != clauses)'
        )
    clauses = []
    for raw in spec.split(","):
        match = _CLAUSE.match(raw)
        if match is None:
            raise PluginError(
                f"{API_ATTRIBUTE} = {spec!r}: clause {raw.strip()[:40]!r} is not an operator "
                f"(>=, >, <=, <, ==, !=) and a version such as 1.0; declare e.g. "
                f'{API_ATTRIBUTE} = ">=1.0,<2"'
            )
        clauses.append((match.group(1), _version_tuple(match.group(2))))
    return clauses


def _holds(op: str, have: tuple[int, ...], want: tuple[int, ...]) -> bool:
    return {
        ">=": have >= want,
        ">": have > want,
        "<=": have <= want,
        "<": have < want,
        "==": have == want,
        "!=": have != want,
    }[op]


def suggested_range() -> str:
    """The API range a plugin written for this minjiang declares: this API version up
    to the next major one (``">=1.0,<2"`` for API 1.0)."""
    from minjiang import API_VERSION

    return f">={API_VERSION},<{int(API_VERSION.split('.')[0]) + 1}"


def api_compatibility(plugin: Any, api: str | None = None) -> tuple[str | None, str | None]:
    """The API range ``plugin`` declares and, when it excludes ``api`` (default: this
    minjiang's :data:`minjiang.API_VERSION`) or cannot be read, the problem with the fix:
    ``(range, problem)``.

    ``(None, None)``: the plugin declares no range (it is loaded; doctor and validate
    warn). ``(range, None)``: compatible.
    """
    from minjiang import API_VERSION

    api = API_VERSION if api is None else api
    spec = getattr(plugin, API_ATTRIBUTE, None)
    if spec is None:
        return None, None
    try:
        clauses = parse_api_range(spec)
    except PluginError as err:
        return repr(spec)[:80], str(err)
    have = _version_tuple(api)
    if all(_holds(op, have, want) for op, want in clauses):
        return spec, None
    module = str(getattr(plugin, "__name__", None) or type(plugin).__module__)
    dist = _distribution(module).get("package")
    release = f"a release of {dist} (pip install -U {dist})" if dist else "a release of the plugin"
    return spec, (
        f"supports minjiang API {spec!r}, but this minjiang provides API {api}; install "
        f"{release} that supports API {api}, or a minjiang whose API is in {spec!r}"
    )


def check_plugin(pm: pluggy.PluginManager, name: str, plugin: Any) -> list[PluginProblem]:
    """A registered plugin's own problems: a declared API range that excludes this
    minjiang, or cannot be read (the plugin is unregistered); a hook implementation
    named after no hook (misspelt: unregistered, the others go on); and a function
    named like a hook but not marked ``@hookimpl`` (reported; it is never called)."""
    import difflib

    _, incompatible = api_compatibility(plugin)
    if incompatible is not None:
        pm.unregister(plugin)
        return [
            PluginProblem(
                name,
                "compat",
                f"{incompatible}; the plugin was skipped",
            )
        ]
    hooks = sorted(n for n in dir(hookspecs) if n.startswith("minjiang_"))
    out: list[PluginProblem] = []
    unknown = [
        caller.name
        for caller in pm.get_hookcallers(plugin) or []
        if not caller.has_spec() and caller.name.startswith(hookspecs.PROJECT)
    ]
    if unknown:
        pm.unregister(plugin)
        for hook in unknown:
            close = difflib.get_close_matches(hook, hooks, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            out.append(
                PluginProblem(
                    name,
                    "register",
                    f"{hook!r} is not a minjiang hook{hint} (the hooks are in "
                    "minjiang.core.hookspecs); the plugin was skipped",
                )
            )
        return out
    marked = {caller.name for caller in pm.get_hookcallers(plugin) or []}
    for hook in hooks:
        if hook not in marked and callable(getattr(plugin, hook, None)):
            out.append(
                PluginProblem(
                    name,
                    "register",
                    f"{hook} is not marked with @hookimpl (from minjiang import hookimpl), so "
                    "it is never called",
                )
            )
    return out


def _code_of(function: Any) -> Any:
    return getattr(getattr(function, "__func__", function), "__code__", None)


def _culprit(err: BaseException, impls: Sequence[pluggy.HookImpl]) -> pluggy.HookImpl | None:
    """The hook implementation an exception raised by a pluggy hook call came from.

    pluggy runs every implementation (and wrapper) from ``_multicall``; the innermost
    frame of the traceback that belongs to one of them raised it (an exception that
    passes through a wrapper gains the wrapper's frame further out). When no frame
    matches (an implementation that is not a Python function), ``_multicall``'s
    current ``hook_impl`` names it.
    """
    codes: dict[Any, pluggy.HookImpl] = {}
    for impl in impls:
        code = _code_of(impl.function)
        if code is not None:
            codes.setdefault(code, impl)
    tb: TracebackType | None = err.__traceback__
    found: pluggy.HookImpl | None = None
    fallback: Any = None
    while tb is not None:
        frame = tb.tb_frame
        match = codes.get(frame.f_code)
        if match is not None:
            found = match
        elif frame.f_code.co_name == "_multicall":
            current = frame.f_locals.get("hook_impl")
            if any(current is i for i in impls):
                fallback = current
        tb = tb.tb_next
    return found or fallback


def call_hook(
    pm: pluggy.PluginManager,
    hook: str,
    problems: list[PluginProblem],
    skipped: set[Any] | None = None,
    **kwargs: Any,
) -> list[tuple[str, Any]]:
    """Call ``hook`` through pluggy; return ``(plugin name, result)`` in pluggy's order.

    One call of ``pm.hook.<hook>(**kwargs)`` does the work: pluggy's order, hook
    wrappers (which see and may replace the list of results) and tracing all apply.
    When an implementation raises, its plugin is reported in ``problems`` with the
    hook's name, added to ``skipped`` (so later calls leave it out), and the hook is
    called again without it through ``pm.subset_hook_caller``. Results are paired with
    the plugins that returned them; a result a wrapper put in, which no plugin
    returned, is attributed to the wrapper's plugin.
    """
    skipped = set() if skipped is None else skipped
    while True:
        caller = pm.subset_hook_caller(hook, remove_plugins=skipped)
        impls = caller.get_hookimpls()
        try:
            results = caller(**kwargs)
        except Exception as err:
            impl = _culprit(err, impls)
            if impl is None or impl.plugin in skipped:
                raise PluginError(
                    f"hook {hook} raised {type(err).__name__}: {err}, and the plugin it came "
                    "from cannot be told; uninstall the plugin that raised it"
                ) from err
            skipped.add(impl.plugin)
            name = impl.plugin_name
            problems.append(PluginProblem(name, hook, f"{type(err).__name__}: {err}"))
            log.warning(
                "plugin %r raised in %s and was skipped: %s: %s",
                name,
                hook,
                type(err).__name__,
                err,
            )
            continue
        return _attribute(pm, hook, results, impls, problems, kwargs)


#: Hooks whose implementations only return data (no side effects), so that asking one
#: implementation again, alone, is harmless.
ASKED_AGAIN = frozenset(
    {
        "minjiang_register_operators",
        "minjiang_register_readers",
        "minjiang_register_pipelines",
        "minjiang_register_reports",
        "minjiang_catalog_metadata",
    }
)


def _same(result: Any, own: Any) -> bool:
    """Whether ``result`` (after wrappers) is, or is drawn from, a plugin's ``own`` result.

    A list counts as drawn from another when each of its items is one of the other's
    items or has the same ``name`` (a wrapper may filter a plugin's list).
    """
    if result is own:
        return True
    try:
        if result == own:
            return True
    except Exception:
        return False
    if isinstance(result, list | tuple) and isinstance(own, list | tuple) and result:
        names = {getattr(x, "name", None) for x in own} - {None}
        return all(any(x is y for y in own) or getattr(x, "name", None) in names for x in result)
    return False


def _attribute(
    pm: pluggy.PluginManager,
    hook: str,
    results: Any,
    impls: Sequence[pluggy.HookImpl],
    problems: list[PluginProblem],
    kwargs: dict[str, Any],
) -> list[tuple[str, Any]]:
    """Pair pluggy's list of results with the plugins that returned them.

    pluggy calls the plain (non-wrapper) implementations last-registered first
    (``tryfirst``/``trylast`` aside) and keeps the results that are not ``None``, in
    that order. When every plain implementation returned something and no wrapper
    took part, the positions say who returned what. Otherwise (an implementation
    returned ``None``, or a wrapper may have changed the list) each plain
    implementation is asked alone, through ``pm.subset_hook_caller``, and the results
    are matched against those answers; a result no implementation gave came from a
    wrapper and is attributed to the wrapping plugins. Only the hooks in
    :data:`ASKED_AGAIN`, whose implementations only return what they have, are asked
    again; results of the others are then left unattributed (``"?"``).
    """
    if not isinstance(results, list):
        raise PluginError(
            f"a hook wrapper of {hook} replaced its list of results with a "
            f"{type(results).__name__}; a wrapper must return a list"
        )
    plain = [i for i in reversed(impls) if not (i.hookwrapper or i.wrapper)]
    wrappers = [i for i in impls if i.hookwrapper or i.wrapper]
    if not results:
        return []
    if not wrappers and len(results) == len(plain):
        return [(impl.plugin_name, res) for impl, res in zip(plain, results, strict=True)]
    if hook not in ASKED_AGAIN:  # events and configuration: never call a plugin twice
        return [("?", res) for res in results]
    everyone = set(pm.get_plugins())
    alone: list[tuple[str, Any]] = []
    for impl in plain:
        try:
            own = pm.subset_hook_caller(hook, remove_plugins=everyone - {impl.plugin})(**kwargs)
        except Exception:  # it answered inside the full call; a second failure is not news
            continue
        alone.extend((impl.plugin_name, r) for r in own)
    wrapped_by = "+".join(w.plugin_name for w in wrappers) or "?"
    out: list[tuple[str, Any]] = []
    taken: set[int] = set()
    for res in results:
        owner = wrapped_by
        for k, (name, own_res) in enumerate(alone):
            if k not in taken and _same(res, own_res):
                owner = name
                taken.add(k)
                break
        out.append((owner, res))
    return out


class Registry:
    """Operators, readers, pipelines and reports collected from a PluginManager (on first use)."""

    def __init__(self, pm: pluggy.PluginManager, problems: list[PluginProblem]) -> None:
        self.pm = pm
        self.problems = problems
        self.skipped: dict[str, set[Any]] = {}
        self._operators: dict[str, tuple[str, Operator]] | None = None
        self._readers: dict[str, tuple[str, Reader]] | None = None
        self._pipelines: dict[str, tuple[str, Pipeline]] | None = None
        self._reports: dict[str, tuple[str, Report]] | None = None

    def call(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call ``hook`` through pluggy with per-plugin isolation (see :func:`call_hook`)."""
        return call_hook(
            self.pm, hook, self.problems, self.skipped.setdefault(hook, set()), **kwargs
        )

    def _collect(self, hook: str, kind: str, cls: type | None = None) -> dict[str, tuple[str, Any]]:
        found: dict[str, tuple[str, Any]] = {}
        # in registration order, so that of two plugins claiming one name the one
        # registered first keeps it (pluggy calls the last registered first)
        order = {name: i for i, (name, _) in enumerate(self.pm.list_name_plugin())}
        answers = sorted(self.call(hook), key=lambda pair: order.get(pair[0], len(order)))
        for plugin, items in answers:
            if isinstance(items, str | bytes) or not isinstance(items, Iterable):
                self.problems.append(
                    PluginProblem(plugin, hook, f"returned {type(items).__name__}, not a list")
                )
                continue
            for item in items:
                if cls is not None and not isinstance(item, cls):
                    self.problems.append(
                        PluginProblem(
                            plugin, hook, f"returned a {type(item).__name__}, not a {cls.__name__}"
                        )
                    )
                    continue
                name = getattr(item, "name", None)
                if not name or not isinstance(name, str):
                    self.problems.append(
                        PluginProblem(plugin, hook, f"{kind} without a name: {item!r}")
                    )
                    continue
                if name in found:
                    # the first registration keeps the name; the later one is refused
                    self.problems.append(
                        PluginProblem(
                            plugin,
                            hook,
                            f"{kind} {name!r} is already registered by plugin "
                            f"{found[name][0]!r}; this one was skipped (rename it, or "
                            "uninstall one of the two plugins)",
                        )
                    )
                    continue
                found[name] = (plugin, item)
        return dict(sorted(found.items()))

    @property
    def operators(self) -> dict[str, tuple[str, Operator]]:
        if self._operators is None:
            self._operators = self._collect("minjiang_register_operators", "operator")
        return self._operators

    @property
    def readers(self) -> dict[str, tuple[str, Reader]]:
        if self._readers is None:
            self._readers = self._collect("minjiang_register_readers", "reader")
        return self._readers

    @property
    def pipelines(self) -> dict[str, tuple[str, Pipeline]]:
        if self._pipelines is None:
            self._pipelines = self._collect("minjiang_register_pipelines", "pipeline")
        return self._pipelines

    @property
    def reports(self) -> dict[str, tuple[str, Report]]:
        if self._reports is None:
            from minjiang.core._pipeline import Report

            self._reports = self._collect("minjiang_register_reports", "report", Report)
        return self._reports

    def _lookup(
        self,
        table: dict[str, tuple[str, Any]],
        name: str,
        kind: str,
        error: type[Exception] = OperatorNotFoundError,
    ) -> Any:
        if isinstance(name, str) and name in table:
            return table[name][1]
        import difflib

        close = (
            difflib.get_close_matches(name, list(table), n=3)
            if isinstance(name, str) and len(name) <= 200
            else []
        )
        hint = f" Did you mean {close!r}?" if close else ""
        shown = name if not isinstance(name, str) or len(name) <= 200 else name[:200] + "..."
        raise error(
            f"no {kind} named {shown!r}.{hint} Registered: {sorted(table)!r} "
            "(`minjiang plugins` lists them with their plugins)"
        )

    def provenance(self, kind: str, name: str) -> dict[str, str]:
        """Which plugin registered the operator or reader ``name``: its registered
        name, module, and the installed distribution and version that provide the
        module (empty when ``name`` is not registered)."""
        table = self.operators if kind == "operator" else self.readers
        if name not in table:
            return {}
        plugin = table[name][0]
        obj = self.pm.get_plugin(plugin)
        module = str(getattr(obj, "__name__", None) or type(obj).__module__)
        out = {"name": plugin, "module": module}
        out.update(_distribution(module))
        return out

    def operator(self, name: str) -> Operator:
        return self._lookup(self.operators, name, "operator")

    def reader(self, name: str) -> Reader:
        return self._lookup(self.readers, name, "reader")

    def pipeline(self, name: str) -> Pipeline:
        return self._lookup(self.pipelines, name, "pipeline")

    def report(self, name: str) -> Report:
        """The report a plugin registered as ``name``; :class:`PipelineError` when none did."""
        return self._lookup(self.reports, name, "report", PipelineError)

    def pipeline_report(self, pipeline: Pipeline) -> Report | None:
        """The registered report ``pipeline.report`` names, checked against its steps.

        Raises :class:`PipelineError` when no plugin registered a report of that name,
        or when the report reads a step the pipeline does not have. Call it when the
        pipeline is planned, so that a bad report name fails before any work starts.
        """
        if pipeline.report is None:
            return None
        report = self.report(pipeline.report)
        report.check(pipeline)
        return report

    def guess_reader(self, paths: Sequence[str | os.PathLike[str]]) -> Reader:
        """The one registered reader whose ``guess_can_open`` claims every path.

        Raises :class:`ReaderError` listing the readers when none or several claim them:
        then name the reader.
        """
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        if not paths:
            raise ReaderError("no source paths given; give the files or folders to ingest")
        claims = []
        for name, (_, reader) in self.readers.items():
            try:
                if all(reader.guess_can_open(p) for p in paths):
                    claims.append(name)
            except Exception as err:  # a reader's guess must not break the choice
                self.problems.append(
                    PluginProblem(name, "guess_can_open", f"{type(err).__name__}: {err}")
                )
        if len(claims) == 1:
            return self.readers[claims[0]][1]
        first = os.fspath(paths[0])
        what = f"{first[-80:]!r}" + (f" and {len(paths) - 1} more" if len(paths) > 1 else "")
        if not claims:
            raise ReaderError(
                f"no reader recognises {what}; name one of the registered readers "
                f"{sorted(self.readers)!r}"
            )
        raise ReaderError(f"several readers can open {what}: {claims!r}; name the one to use")

    def plugin_names(self) -> list[str]:
        return sorted(n for n, _ in self.pm.list_name_plugin() if n)

    def emit(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call ``hook`` for its side effects (events, configuration, metadata)."""
        return self.call(hook, **kwargs)


@functools.lru_cache(maxsize=1)
def _top_level_distributions() -> dict[str, list[str]]:
    """Top-level module -> distributions, read once per process (it scans every
    installed distribution's files: about half a second)."""
    from importlib.metadata import packages_distributions

    return dict(packages_distributions())


def _distribution(module: str) -> dict[str, str]:
    """The installed distribution providing ``module`` and its version, if any.

    A distribution named like the top-level module (``minjiang``, most plugins) is
    asked first, and taken when it declares that module (its ``top_level.txt``, or
    the files it installed); only otherwise is every installed distribution scanned
    (seconds on a large environment). Where several distributions install one
    top-level module, the one named like it answers.
    """
    from importlib.metadata import PackageNotFoundError, version

    top = module.split(".", 1)[0]
    named = _named_distribution(top)
    if named is not None:
        return named
    for dist in sorted(_top_level_distributions().get(top, [])):
        try:
            return {"package": dist, "version": version(dist)}
        except PackageNotFoundError:
            continue
    return {}


def _named_distribution(top: str) -> dict[str, str] | None:
    """The distribution named ``top``, if it provides the top-level module ``top``."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution(top)
    except (PackageNotFoundError, ValueError):
        return None
    declared = (dist.read_text("top_level.txt") or "").split()
    if declared:
        provides = top in declared
    else:
        provides = any(
            (len(f.parts) > 1 and f.parts[0] == top and f.suffix == ".py")
            or (len(f.parts) == 1 and f.name == f"{top}.py")
            for f in dist.files or ()
        )
    name, release = dist.metadata["Name"], dist.version
    if not provides or not name or not release:
        return None
    return {"package": name, "version": release}

"""Plugin loading: one PluginManager per runtime, entry points loaded lazily.

A plugin that fails to import, or whose hooks raise, is reported by name and skipped;
it never breaks the others. ``check_pending()`` catches misspelt hook names.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pluggy
from minjiang.core import hookspecs
from minjiang.core.errors import OperatorNotFoundError, PluginError

if TYPE_CHECKING:
    from minjiang.core._operator import Operator
    from minjiang.core._pipeline import Pipeline
    from minjiang.core._reader import Reader

log = logging.getLogger("minjiang.plugins")

__all__ = ["PluginProblem", "Registry", "make_plugin_manager"]


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
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as err:
        raise PluginError(
            f"{err}. Hook implementations must be named after a hook in minjiang.core.hookspecs "
            "(minjiang_register_operators, minjiang_register_readers, ...)"
        ) from None
    return pm, problems


def _call_each(
    pm: pluggy.PluginManager, hook: str, problems: list[PluginProblem], **kwargs: Any
) -> list[tuple[str, Any]]:
    """Call ``hook`` on each plugin separately so one raising plugin is isolated."""
    caller = getattr(pm.hook, hook)
    results = []
    for impl in caller.get_hookimpls():
        name = pm.get_name(impl.plugin) or repr(impl.plugin)
        try:
            args = {k: kwargs[k] for k in impl.argnames}
            out = impl.function(**args)
        except Exception as err:
            problems.append(PluginProblem(name, hook, f"{type(err).__name__}: {err}"))
            log.warning(
                "plugin %r raised in %s and was skipped: %s: %s",
                name,
                hook,
                type(err).__name__,
                err,
            )
            continue
        results.append((name, out))
    return results


class Registry:
    """Operators, readers and pipelines collected from a PluginManager (on first use)."""

    def __init__(self, pm: pluggy.PluginManager, problems: list[PluginProblem]) -> None:
        self.pm = pm
        self.problems = problems
        self._operators: dict[str, tuple[str, Operator]] | None = None
        self._readers: dict[str, tuple[str, Reader]] | None = None
        self._pipelines: dict[str, tuple[str, Pipeline]] | None = None

    def _collect(self, hook: str, kind: str) -> dict[str, tuple[str, Any]]:
        found: dict[str, tuple[str, Any]] = {}
        for plugin, items in _call_each(self.pm, hook, self.problems):
            for item in items or ():
                name = getattr(item, "name", None)
                if not name:
                    self.problems.append(
                        PluginProblem(plugin, hook, f"{kind} without a name: {item!r}")
                    )
                    continue
                if name in found:
                    raise PluginError(
                        f"{kind} {name!r} is registered by both plugin {found[name][0]!r} and "
                        f"plugin {plugin!r}; uninstall or rename one of them"
                    )
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

    def _lookup(self, table: dict[str, tuple[str, Any]], name: str, kind: str) -> Any:
        try:
            return table[name][1]
        except KeyError:
            import difflib

            close = difflib.get_close_matches(name, list(table), n=3)
            hint = f" Did you mean {close!r}?" if close else ""
            raise OperatorNotFoundError(
                f"no {kind} named {name!r}.{hint} Registered: {sorted(table)!r} "
                "(`minjiang plugins` lists them with their plugins)"
            ) from None

    def operator(self, name: str) -> Operator:
        return self._lookup(self.operators, name, "operator")

    def reader(self, name: str) -> Reader:
        return self._lookup(self.readers, name, "reader")

    def pipeline(self, name: str) -> Pipeline:
        return self._lookup(self.pipelines, name, "pipeline")

    def plugin_names(self) -> list[str]:
        return sorted(n for n, _ in self.pm.list_name_plugin() if n)

    def emit(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        return _call_each(self.pm, hook, self.problems, **kwargs)

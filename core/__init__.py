"""minjiang.core: runtime, operator contracts, planner, executors, hookspecs, CLI.

The names in ``__all__`` are public (plugins and applications may import them from
here); the ``_``-prefixed modules are implementation and may change without notice.
Every name is imported on first use, and under ``TYPE_CHECKING`` for type checkers.
"""

from __future__ import annotations

if __name__ != "minjiang.core":  # this folder is only importable as minjiang.core
    raise ImportError(
        f"'{__name__}' is minjiang.core: install minjiang (`make demo` or `pip install -e .`) and `import minjiang.core`"
    )

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from minjiang.core._events import EventKind, RunEvent, TaskResult
    from minjiang.core._operator import (
        Aggregate,
        ArrayOutput,
        BlockContext,
        Composite,
        ExpandContext,
        FullAxis,
        Input,
        Map,
        NoParams,
        Operator,
        PlanInput,
        Reduce,
        State,
        StateArray,
        SubStep,
        TableOutput,
        TaskSize,
    )
    from minjiang.core._pipeline import Pipeline, Report, Step, load_pipeline
    from minjiang.core._reader import Reader
    from minjiang.core._runtime import PipelineResult, Plan, Result, Runtime, open
    from minjiang.core.hookspecs import hookimpl

__all__ = [
    "Aggregate",
    "ArrayOutput",
    "BlockContext",
    "Composite",
    "EventKind",
    "ExpandContext",
    "FullAxis",
    "Input",
    "Map",
    "NoParams",
    "Operator",
    "Pipeline",
    "PipelineResult",
    "Plan",
    "PlanInput",
    "Reader",
    "Reduce",
    "Report",
    "Result",
    "RunEvent",
    "Runtime",
    "State",
    "StateArray",
    "Step",
    "SubStep",
    "TableOutput",
    "TaskResult",
    "TaskSize",
    "hookimpl",
    "load_pipeline",
    "open",
]

#: public name -> the module that defines it (the same as the TYPE_CHECKING imports)
_LAZY = {
    "Aggregate": "_operator",
    "ArrayOutput": "_operator",
    "BlockContext": "_operator",
    "Composite": "_operator",
    "ExpandContext": "_operator",
    "FullAxis": "_operator",
    "Input": "_operator",
    "Map": "_operator",
    "NoParams": "_operator",
    "Operator": "_operator",
    "PlanInput": "_operator",
    "Reduce": "_operator",
    "State": "_operator",
    "StateArray": "_operator",
    "SubStep": "_operator",
    "TableOutput": "_operator",
    "TaskSize": "_operator",
    "Pipeline": "_pipeline",
    "Report": "_pipeline",
    "Step": "_pipeline",
    "load_pipeline": "_pipeline",
    "Reader": "_reader",
    "EventKind": "_events",
    "RunEvent": "_events",
    "TaskResult": "_events",
    "PipelineResult": "_runtime",
    "Plan": "_runtime",
    "Result": "_runtime",
    "Runtime": "_runtime",
    "open": "_runtime",
    "hookimpl": "hookspecs",
}

if not TYPE_CHECKING:  # to a type checker an unknown name is an error, not Any

    def __getattr__(name: str) -> object:
        mod = _LAZY.get(name)
        if mod is None:
            raise AttributeError(f"module 'minjiang.core' has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(f"minjiang.core.{mod}"), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

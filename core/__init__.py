"""minjiang.core: runtime, operator contracts, planner, executors, hookspecs, CLI."""

if __name__ != "minjiang.core":  # this folder is only importable as minjiang.core
    raise ImportError(
        f"'{__name__}' is minjiang.core: install minjiang (`make demo` or `pip install -e .`) and `import minjiang.core`"
    )

from typing import Any as _Any

__all__ = [
    "Aggregate",
    "ArrayOutput",
    "BlockContext",
    "Composite",
    "FullAxis",
    "Input",
    "Map",
    "Operator",
    "Pipeline",
    "PipelineResult",
    "Plan",
    "Reader",
    "Reduce",
    "Result",
    "RunEvent",
    "Runtime",
    "Step",
    "SubStep",
    "TableOutput",
    "TaskSize",
    "hookimpl",
    "open",
]

_LAZY = {
    "Aggregate": "_operator",
    "ArrayOutput": "_operator",
    "BlockContext": "_operator",
    "Composite": "_operator",
    "FullAxis": "_operator",
    "Input": "_operator",
    "Map": "_operator",
    "Operator": "_operator",
    "Reduce": "_operator",
    "SubStep": "_operator",
    "TableOutput": "_operator",
    "TaskSize": "_operator",
    "Pipeline": "_pipeline",
    "Step": "_pipeline",
    "Reader": "_reader",
    "RunEvent": "_events",
    "PipelineResult": "_runtime",
    "Plan": "_runtime",
    "Result": "_runtime",
    "Runtime": "_runtime",
    "open": "_runtime",
    "hookimpl": "hookspecs",
}


def __getattr__(name: str) -> _Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'minjiang.core' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"minjiang.core.{mod}"), name)
    globals()[name] = value
    return value

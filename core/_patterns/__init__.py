"""The chunk patterns, one module each: how a pattern is planned and how its tasks run.

============ ================================= =========================================
pattern      stages                            task payloads
============ ================================= =========================================
map          ``map``                           ``map.BlockTask``
reduce       ``reduce``, or                    ``reduce.ReduceBlockTask``,
             ``partial`` → ``combine``         ``ReducePartialTask``, ``ReduceCombineTask``
full_axis    ``full_axis``, or                 ``map.BlockTask``
             ``rechunk`` → ``full_axis``       (``rechunk.RechunkTask``)
aggregate    ``partial`` → ``combine``         ``aggregate.AggregatePartialTask``,
                                               ``AggregateCombineTask``
composite    sub-steps (hidden datasets)       none of its own
============ ================================= =========================================

:data:`PLANNERS` maps each per-step pattern type to its planner
``(StepPlanner, Request, pattern) -> StepPlan``; :data:`EXPANDERS` maps the patterns
the plan builder expands into sub-steps. A task payload is a frozen dataclass with
``read``, ``compute`` and ``write`` (``core/_tasks.py:TaskStep``), run by the one
generic driver ``core/_tasks.py:run_task``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from minjiang.core._operator import Aggregate, Composite, FullAxis, Map, Reduce
from minjiang.core._patterns.aggregate import plan_aggregate
from minjiang.core._patterns.composite import expand_composite
from minjiang.core._patterns.full_axis import plan_full_axis
from minjiang.core._patterns.map import plan_map
from minjiang.core._patterns.reduce import plan_reduce

__all__ = ["EXPANDERS", "PLANNERS"]

PLANNERS: dict[type, Callable[..., Any]] = {
    Map: plan_map,
    Reduce: plan_reduce,
    FullAxis: plan_full_axis,
    Aggregate: plan_aggregate,
}

EXPANDERS: dict[type, Callable[..., str]] = {Composite: expand_composite}

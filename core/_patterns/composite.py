"""``Composite``: a small DAG of the other patterns.

A composite is not planned into tasks of its own: the plan builder expands it into
sub-steps, each an ordinary operator application planned by its own pattern. The
intermediates are content-addressed datasets marked ``hidden``, so they are reused
like any other; the last sub-step's output is the composite's output.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from minjiang.core._operator import Composite
from minjiang.core._pipeline import Step
from minjiang.core.errors import ContractError

if TYPE_CHECKING:
    from minjiang.core._operator import Operator
    from minjiang.core._planner import BoundInput

__all__ = ["expand_composite"]

#: ``(step, hidden=, op=, raw_inputs=, params=) -> dataset id``: plans one operator step.
PlanStep = Callable[..., str]


def expand_composite(
    plan_step: PlanStep,
    step: Step,
    op: Operator,
    model: Any,
    bound: Mapping[str, BoundInput],
    plan_inputs: Callable[[Mapping[str, BoundInput]], Mapping[str, Any]],
) -> str:
    """Plan each sub-step of ``op`` through ``plan_step``; the last one's dataset id."""
    pattern = op.pattern
    assert isinstance(pattern, Composite)
    subs = pattern.expand(model, plan_inputs(bound))
    if not subs:
        raise ContractError(f"{op.name}: composite expanded to no sub-steps")
    local: dict[str, str] = {}
    did = ""
    for i, sub in enumerate(subs):
        refs: dict[str, Any] = {}
        for k, v in sub.inputs.items():
            if v in local:
                refs[k] = local[v]
            elif v in bound:
                b = bound[v]
                refs[k] = f"{b.dataset_id}:{b.array.name if b.array is not None else b.table}"
            else:
                raise ContractError(f"{op.name}: sub-step {sub.id!r} refers to unknown {v!r}")
        last = i == len(subs) - 1
        sub_step = Step(
            id=f"{step.id}__{sub.id}" if not last else step.id,
            operator=sub.operator.name,
            inputs={},
            params=dict(sub.params),
            name=step.name if last else None,
            backend=step.backend,
            resources=dict(step.resources),
        )
        sub_params = sub.operator.validate_params(sub.params)
        did = plan_step(
            sub_step, hidden=not last, op=sub.operator, raw_inputs=refs, params=sub_params
        )
        local[sub.id] = did
    return did

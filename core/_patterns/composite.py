"""``Composite``: a small DAG of the other patterns.

A composite is not planned into tasks of its own: the plan builder expands it into
sub-steps, each an ordinary operator application planned by its own pattern. The
intermediates are content-addressed datasets marked ``hidden``, so they are reused
like any other; the last sub-step's output is the composite's output.

Lineage. The output is recorded under the composite the user called, not under its
last sub-step: the final sub-step's plan carries a :class:`CompositeLineage` (the
composite's name, version, parameters and inputs, and every sub-step beneath it with
its operator, version, parameters, inputs and dataset), and ``core/_commit.py`` writes
the record's ``producer`` from it. The record's ``inputs`` stay the datasets the output
was computed from (the last sub-step's inputs, hidden intermediates among them), so the
lineage graph walks through the sub-steps; the hidden intermediates keep records of
their own sub-step operators.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from minjiang.core._operator import Composite, ExpandContext
from minjiang.core._pipeline import Step
from minjiang.core.errors import ContractError

if TYPE_CHECKING:
    from minjiang.core._operator import Operator
    from minjiang.core._planner import BoundInput, StepPlan

__all__ = ["CompositeLineage", "composite_lineage", "expand_composite"]

#: ``(step, hidden=, op=, raw_inputs=, params=) -> dataset id``: plans one operator step.
PlanStep = Callable[..., str]
#: ``(step, op, raw_inputs, params) -> bool``: whether an operator step plans within
#: the memory budget (``raw_inputs`` as ``plan_step`` takes them).
FitsStep = Callable[[Step, "Operator", Mapping[str, Any], Any], bool]

#: The attribute of a final sub-step's :class:`StepPlan` that holds its composite.


@dataclasses.dataclass(frozen=True)
class CompositeLineage:
    """What the record of a composite's output says about how it was made.

    ``steps`` are the sub-steps in order, each ``{"id", "operator", "version",
    "params", "pattern", "dataset", "inputs"}`` (a nested composite adds its own
    ``steps``); ``inputs`` maps the composite's input names to dataset ids.
    """

    operator: str
    version: str
    params: dict[str, Any]
    inputs: dict[str, str]
    steps: tuple[dict[str, Any], ...]

    def producer(self) -> dict[str, Any]:
        """The record's ``producer`` fields that name the composite, its inputs as the
        user gave them, and its sub-steps."""
        return {
            "operator": self.operator,
            "version": self.version,
            "params": dict(self.params),
            "pattern": "composite",
            "inputs": dict(self.inputs),
            "steps": [dict(s) for s in self.steps],
        }


def composite_lineage(step: StepPlan) -> CompositeLineage | None:
    """The composite whose output ``step`` plans (``None`` for an ordinary step)."""
    value = getattr(step, "composite", None)
    return value if isinstance(value, CompositeLineage) else None


def expand_composite(
    plan_step: PlanStep,
    step: Step,
    op: Operator,
    model: Any,
    bound: Mapping[str, BoundInput],
    plan_inputs: Callable[[Mapping[str, BoundInput]], Mapping[str, Any]],
    planned: Callable[[str], StepPlan | None],
    *,
    budget: int,
    workers: int,
    fits: FitsStep,
) -> str:
    """Plan each sub-step of ``op`` through ``plan_step``; the last one's dataset id.
    ``planned(dataset_id)`` is the step plan the builder made for a dataset (None for
    one it did not plan, such as a reused ingest); ``budget``, ``workers`` and
    ``fits`` make the :class:`ExpandContext` an ``expand`` may ask."""
    pattern = op.pattern
    assert isinstance(pattern, Composite)
    local: dict[str, str] = {}

    def refs_of(sub_id: str, inputs: Mapping[str, str]) -> dict[str, Any]:
        refs: dict[str, Any] = {}
        for k, v in inputs.items():
            if v in local:
                refs[k] = local[v]
            elif v in bound:
                b = bound[v]
                refs[k] = f"{b.dataset_id}:{b.array.name if b.array is not None else b.table}"
            else:
                raise ContractError(f"{op.name}: sub-step {sub_id!r} refers to unknown {v!r}")
        return refs

    def sub_fits(sub_op: Operator, inputs: Mapping[str, str], params: Mapping[str, Any]) -> bool:
        probe = Step(id=f"{step.id}__fits", operator=sub_op.name, inputs={}, params=dict(params))
        refs = refs_of(sub_op.name, inputs)
        return fits(probe, sub_op, refs, sub_op.validate_params(params))

    context = ExpandContext(budget=budget, workers=workers, _fits=sub_fits)
    subs = pattern.sub_steps(model, plan_inputs(bound), context)
    if not subs:
        raise ContractError(f"{op.name}: composite expanded to no sub-steps")
    did = ""
    lineage: list[dict[str, Any]] = []
    for i, sub in enumerate(subs):
        refs = refs_of(sub.id, sub.inputs)
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
        entry: dict[str, Any] = {
            "id": sub.id,
            "operator": sub.operator.name,
            "version": sub.operator.version,
            "params": sub_params.model_dump(mode="json"),
            "pattern": sub.operator.pattern.pattern,
            "dataset": did,
            "inputs": {k: str(v).split(":", 1)[0] for k, v in sorted(refs.items())},
        }
        sub_plan = planned(did)
        nested = composite_lineage(sub_plan) if sub_plan is not None else None
        if nested is not None and nested.operator == sub.operator.name:
            entry["steps"] = [dict(s) for s in nested.steps]
        lineage.append(entry)
    final = planned(did)
    if final is not None:
        # the record names the operator the user called; the sub-steps go beneath it
        final.composite = CompositeLineage(
            operator=op.name,
            version=op.version,
            params=model.model_dump(mode="json"),
            inputs={k: b.dataset_id for k, b in sorted(bound.items())},
            steps=tuple(lineage),
        )
        final.attrs = {**final.attrs, "minjiang_operator": op.name, "minjiang_version": op.version}
    return did

"""``Aggregate``: (values, labels) → table, through per-block partial states.

Planning: a ``partial`` stage, one task per block (with the pattern's optional halo),
each writing its partial state as one Parquet part into scratch; then one ``combine``
task reads every part, combines and finalizes them and writes the output tables.

Tasks: :class:`AggregatePartialTask`, :class:`AggregateCombineTask`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from minjiang.core._operator import Aggregate, dotted_path, import_dotted
from minjiang.core._tasks import Outputs, PartialKernels, context, to_arrow, to_host, write_outputs
from minjiang.core.errors import ContractError

if TYPE_CHECKING:
    from minjiang.core._planner import Request, StepPlan, StepPlanner, TaskSpec
    from minjiang.core._tasks import TaskIO

__all__ = ["AggregateCombineTask", "AggregatePartialTask", "plan_aggregate"]

#: The TaskResult.tables entry under which partial parts are reported (never a table).
PARTIALS = "__agg__"
#: Memory of the combine task (it holds every partial state: small by design).
COMBINE_MEMORY = 64 << 20


@dataclasses.dataclass(frozen=True)
class AggregatePartialTask(PartialKernels):
    """One block's partial state → one Parquet part in scratch."""

    def read(self, io: TaskIO, spec: TaskSpec) -> Any:
        return io.read_inputs(spec)

    def compute(self, data: Any, spec: TaskSpec) -> Any:
        return import_dotted(self.partial)(data, spec.params, context(spec, Outputs()))

    def write(self, io: TaskIO, spec: TaskSpec, result: Any) -> None:
        part = to_arrow({k: to_host(v) for k, v in result.items()})
        before = io.staging.scratch.bytes_written
        key, digest = io.staging.write_partial_part(spec.key.rsplit("/", 1)[-1], part)
        io.bytes_written += io.staging.scratch.bytes_written - before
        io.tables[PARTIALS] = {key: digest}


@dataclasses.dataclass(frozen=True)
class AggregateCombineTask(PartialKernels):
    """Every partial part → ``finalize(combine(states))`` → the output tables."""

    n_parts: int = 1
    outputs: Outputs = dataclasses.field(default_factory=Outputs)

    def read(self, io: TaskIO, spec: TaskSpec) -> Any:
        states = []
        for i in range(self.n_parts):
            table = io.staging.read_partial_part(f"{i:06d}")
            io.bytes_read += table.nbytes
            states.append(
                {
                    k: v.to_numpy(zero_copy_only=False)
                    for k, v in zip(table.column_names, table.columns, strict=True)
                }
            )
        return states

    def compute(self, data: Any, spec: TaskSpec) -> Any:
        combine, finalize = import_dotted(self.combine), import_dotted(self.finalize)
        return finalize(combine(data, spec.params), spec.params)

    def write(self, io: TaskIO, spec: TaskSpec, result: Any) -> None:
        write_outputs(io, spec, self.outputs, result)


def plan_aggregate(planner: StepPlanner, r: Request, pattern: Aggregate) -> StepPlan:
    from minjiang.core._patterns.map import halo_of
    from minjiang.core._planner import Stage

    halo = halo_of(pattern.halo, r.params, planner.plan_inputs(r.inputs))
    arrays, tables = planner.output_arrays(r.op, r.params, r.inputs)
    if arrays:
        raise ContractError(
            f"{r.op.name}: an aggregate writes tables only, not arrays {sorted(arrays)!r}"
        )
    choice = planner.choose(r, halo, {})
    kernels = {
        "partial": dotted_path(pattern.partial),
        "combine": dotted_path(pattern.combine),
        "finalize": dotted_path(pattern.finalize),
    }
    partial = planner.block_stage(
        r,
        "partial",
        choice.block,
        AggregatePartialTask(**kernels),
        {},
        halo=halo,
        boundary=pattern.boundary,
        scratch=True,
    )
    combine = planner.task(
        r,
        key="combine/000000",
        payload=AggregateCombineTask(
            **kernels, n_parts=len(partial.tasks), outputs=planner.outputs({}, tables)
        ),
        region=tuple(slice(0, s) for s in r.shape),
        n_tasks=1,
        memory=min(planner.budget, COMBINE_MEMORY),
        backend="cpu",
        coords=False,
    )
    plan = planner.new_plan(r, arrays, tables, [partial, Stage("combine", (combine,))], choice)
    plan.partition = list(choice.block)  # the blocks order the combine of their states
    return plan

"""``Aggregate``: (values, labels) → table, through per-block partial states.

Planning: a ``partial`` stage, one task per block (with the pattern's optional halo),
each writing its partial state as one Parquet part into scratch; then one ``combine``
task reads every part, combines and finalizes them and writes the output tables.
Without a halo, and unless the chunks are slabs (spanning every dim but the first),
a partial task works its block in steps of whole chunks, as a streamed map does
(``planner.stepper``), folding each step's state into its own with ``combine``: each
step decodes into the same buffers, and the task's memory is projected from a step.
The steps are part of the plan's partition (the content id).

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
    """One block's partial state → one Parquet part in scratch (worked in steps of
    ``step`` cells when given)."""

    step: tuple[int, ...] = ()

    def read(self, io: TaskIO, spec: TaskSpec) -> Any:
        if self.step:
            return io  # each step is read and folded into the state in compute
        return io.read_inputs(spec)

    def compute(self, data: Any, spec: TaskSpec) -> Any:
        partial = import_dotted(self.partial)
        if not self.step:
            return partial(data, spec.params, context(spec, Outputs()))
        import numpy as np

        io: TaskIO = data
        combine = import_dotted(self.combine)
        acc: dict[str, Any] | None = None
        for sub, arrays in io.stream_inputs(spec, self.step, None):
            # as columns, the way the combine task reads parts back; a column that
            # views the step's buffers is copied (the next step reuses them)
            state = _columns(partial(arrays, sub.params, context(sub, Outputs())))
            for k, v in state.items():
                if any(np.may_share_memory(v, x) for x in arrays.values()):
                    state[k] = v.copy()
            acc = state if acc is None else _columns(combine([acc, state], spec.params))
        assert acc is not None  # a task's block is never empty
        return acc

    def write(self, io: TaskIO, spec: TaskSpec, result: Any) -> None:
        part = to_arrow({k: to_host(v) for k, v in result.items()})
        before = io.staging.scratch.bytes_written
        key, digest = io.staging.write_partial_part(spec.key.rsplit("/", 1)[-1], part)
        io.bytes_written += io.staging.scratch.bytes_written - before
        io.tables[PARTIALS] = {key: digest}


def _table_columns(table: Any) -> dict[str, Any]:
    return {
        k: v.to_numpy(zero_copy_only=False)
        for k, v in zip(table.column_names, table.columns, strict=True)
    }


def _columns(state: Any) -> dict[str, Any]:
    """A partial state as the NumPy columns of its Parquet part."""
    return _table_columns(to_arrow({k: to_host(v) for k, v in state.items()}))


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
            states.append(_table_columns(table))
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
    # The partial stage writes no output (its parts are scratch): a block without halo
    # is worked in steps, each decoded into the same buffers, where its chunks would
    # otherwise decode through a temporary each (chunks that do not span the array
    # along every dim but the first: pencils). Slab chunks decode straight into any
    # block of them, and there steps measured slower (docs/benchmarks.md).
    slabs = all(c >= n for c, n in zip(r.chunks[1:], r.shape[1:], strict=True))
    held = None if any(halo.values()) or slabs else planner.stepper(r, {}, {})
    choice = planner.choose(r, halo, {}, held=held)
    kernels = {
        "partial": dotted_path(pattern.partial),
        "combine": dotted_path(pattern.combine),
        "finalize": dotted_path(pattern.finalize),
    }
    stepped = held(choice.block) if held is not None else choice.block
    partial = planner.block_stage(
        r,
        "partial",
        choice.block,
        AggregatePartialTask(**kernels, step=() if stepped == choice.block else stepped),
        {},
        halo=halo,
        boundary=pattern.boundary,
        scratch=True,
        held=held,
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
    # the blocks, and the steps a partial folds, order the combine of their states
    plan.partition = [*choice.block, *stepped]
    return plan

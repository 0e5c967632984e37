"""``Map``: blockwise over aligned inputs, with an optional halo per dim.

Planning: one ``map`` stage, one task per block of the primary input's grid (the block
chosen by ``core/_blocks.py``). A task reads its block plus the halo; neighbouring
data fills the halo inside the array, and boundary padding is applied only at the
true array edge. A ``wrap`` boundary makes every task span each axis that has a halo
(the wrapped cells come from the far end of the array).

Task: :class:`BlockTask` reads the padded block, runs the kernel, crops each output
to its write region and writes whole chunks (and table parts). ``full_axis`` tasks
are the same step.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from minjiang.core._operator import Map, dotted_path, import_dotted
from minjiang.core._tasks import Outputs, context, write_outputs

if TYPE_CHECKING:
    from minjiang.core._planner import Request, StepPlan, StepPlanner, TaskSpec
    from minjiang.core._tasks import TaskIO

__all__ = ["BlockTask", "halo_of", "plan_map"]


@dataclasses.dataclass(frozen=True)
class BlockTask:
    """Read a block (+halo) → ``kernel(arrays, params, ctx)`` → write its outputs."""

    kernel: str
    outputs: Outputs
    threaded: bool = True

    @property
    def kernels(self) -> tuple[str, ...]:
        return (self.kernel,)

    def read(self, io: TaskIO, spec: TaskSpec) -> Any:
        return io.read_inputs(spec)

    def compute(self, data: Any, spec: TaskSpec) -> Any:
        return import_dotted(self.kernel)(data, spec.params, context(spec, self.outputs))

    def write(self, io: TaskIO, spec: TaskSpec, result: Any) -> None:
        write_outputs(io, spec, self.outputs, result)


def halo_of(spec: Any, params: Any, inputs: Any) -> dict[str, int]:
    """A pattern's halo (static, or from ``(params, inputs)``), checked to be >= 0."""
    from minjiang.core.errors import ContractError

    halo = spec(params, inputs) if callable(spec) else spec
    out = {}
    for dim, h in dict(halo or {}).items():
        if int(h) < 0:
            raise ContractError(f"halo along {dim!r} is {h}; it must be >= 0")
        out[dim] = int(h)
    return out


def plan_map(planner: StepPlanner, r: Request, pattern: Map) -> StepPlan:
    halo = halo_of(pattern.halo, r.params, planner.plan_inputs(r.inputs))
    boundary = pattern.boundary(r.params) if callable(pattern.boundary) else pattern.boundary
    arrays, tables = planner.output_arrays(r.op, r.params, r.inputs)
    # A wrapped halo comes from the far end of the array: a task must then span
    # every dim that has a halo, so its own read holds the wrapped cells.
    fixed = {
        i: r.shape[i] for i, d in enumerate(r.dims) if boundary == "wrap" and halo.get(d, 0) > 0
    }
    choice = planner.choose(r, halo, arrays, fixed=fixed)
    step = BlockTask(dotted_path(pattern.kernel), planner.outputs(arrays, tables))
    stage = planner.block_stage(r, "map", choice.block, step, arrays, halo=halo, boundary=boundary)
    return planner.new_plan(r, arrays, tables, [stage], choice)

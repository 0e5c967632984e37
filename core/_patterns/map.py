"""``Map``: blockwise over aligned inputs, with an optional halo per dim.

Planning: one ``map`` stage, one task per block of the primary input's grid (the block
chosen by ``core/_blocks.py``). A task reads its block plus the halo; neighbouring
data fills the halo inside the array, and boundary padding is applied only at the
true array edge. A ``wrap`` boundary makes every task span each axis that has a halo
(the wrapped cells come from the far end of the array).

Task: :class:`BlockTask` reads the padded block, runs the kernel, crops each output
to its write region and writes whole chunks (and table parts). ``full_axis`` tasks
are the same step (streamed too when they read straight from storage, whole along
the full dims).

Streaming: a map without halo whose outputs are arrays over the input's grid, and
whose inputs share the primary's chunks, works its block in steps
(``core/_blocks.stream_step``: whole chunks, about 32 MiB of the primary): it reads a
step (into the same buffers step after step), runs the kernel on it and writes the
step's output chunks before reading the next; a kernel that fills ``ctx.empty`` gets the
same output memory step after step too. A task then holds one step, not its
block, and its memory is projected from one step. A step is what the planner could
have made a task of (``core/_tasks.sub_spec``), so the kernel sees the same either way.
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
    """Read a block (+halo) → ``kernel(arrays, params, ctx)`` → write its outputs;
    with ``step`` (cells per dim), that in steps of the block (see the module
    docstring)."""

    kernel: str
    outputs: Outputs
    threaded: bool = True
    step: tuple[int, ...] = ()

    @property
    def kernels(self) -> tuple[str, ...]:
        return (self.kernel,)

    def read(self, io: TaskIO, spec: TaskSpec) -> Any:
        if self.step:
            return io  # each step is read, computed and written in compute
        return io.read_inputs(spec)

    def compute(self, data: Any, spec: TaskSpec) -> Any:
        kernel = import_dotted(self.kernel)
        if not self.step:
            return kernel(data, spec.params, context(spec, self.outputs))
        io: TaskIO = data
        buffers: dict[str, Any] = {}  # outputs a kernel fills through ctx.empty
        for sub, arrays in io.stream_inputs(spec, self.step, self.outputs):
            result = kernel(arrays, sub.params, context(sub, self.outputs, buffers))
            with io.phase("write"):
                write_outputs(io, sub, self.outputs, result)
        return None

    def write(self, io: TaskIO, spec: TaskSpec, result: Any) -> None:
        if not self.step:
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
    # a halo would be decoded again by every step
    held = None if any(halo.values()) else planner.stepper(r, arrays, tables)
    choice = planner.choose(r, halo, arrays, fixed=fixed, held=held)
    step = held(choice.block) if held is not None else choice.block
    payload = BlockTask(
        dotted_path(pattern.kernel),
        planner.outputs(arrays, tables),
        step=() if step == choice.block else step,
    )
    stage = planner.block_stage(
        r, "map", choice.block, payload, arrays, halo=halo, boundary=boundary, held=held
    )
    return planner.new_plan(r, arrays, tables, [stage], choice)

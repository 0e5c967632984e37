"""``Reduce``: reduce along some dims through per-block partial states.

Planning: when the chosen block spans the reduced dims, one ``reduce`` stage (each
task runs ``partial`` then ``finalize`` on its block). Otherwise a ``partial`` stage
writes each block's state into the scratch Zarr group (one slot per partition along
the reduced dims), and a ``combine`` stage folds the states of each output block and
finalizes it, one task per output block.

Streaming: a ``reduce`` task whose outputs lie on the kept dims, chunked as the
primary is there, works its block in steps along the kept dims
(``core/_blocks.stream_step``, the whole block along the reduced dims): it reads a
step into the same buffers as the last, runs ``partial`` and ``finalize`` on it and
writes the step's output chunks before reading the next, as a map does
(``core/_patterns/map.py``). A ``partial`` task works its block in steps along the
reduced dims (the whole block along the kept ones): each step's state is folded into
the task's with ``combine`` (steps in order) and the task writes its state once. The
memory of either is projected from one step (a partial's with three states: the
task's, the step's and their combination).

Tasks: :class:`ReduceBlockTask`, :class:`ReducePartialTask`, :class:`ReduceCombineTask`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

from minjiang.core._blocks import iter_blocks
from minjiang.core._operator import (
    BlockContext,
    Reduce,
    State,
    dotted_path,
    import_dotted,
)
from minjiang.core._tasks import Outputs, PartialKernels, context, to_host, write_outputs
from minjiang.core.errors import ExecutionError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from minjiang.core._planner import Request, StepPlan, StepPlanner, TaskSpec
    from minjiang.core._tasks import TaskIO

__all__ = ["ReduceBlockTask", "ReduceCombineTask", "ReducePartialTask", "plan_reduce"]

_STATE_PREFIX = "state_"


@dataclasses.dataclass(frozen=True)
class ReduceBlockTask(PartialKernels):
    """A block that spans the reduced dims: ``finalize(partial(block))`` → write;
    with ``step`` (cells per dim), that in steps along the kept dims (see the module
    docstring)."""

    state: State
    reduce_dims: tuple[str, ...] = ()
    outputs: Outputs = dataclasses.field(default_factory=Outputs)
    step: tuple[int, ...] = ()

    def read(self, io: TaskIO, spec: TaskSpec) -> Any:
        if self.step:
            return io  # each step is read, reduced and written in compute
        return io.read_inputs(spec)

    def compute(self, data: Any, spec: TaskSpec) -> Any:
        if not self.step:
            return self._reduce(data, spec)
        io: TaskIO = data
        for sub, arrays in io.stream_inputs(spec, self.step, self.outputs):
            result = self._reduce(arrays, sub)
            with io.phase("write"):
                write_outputs(io, sub, self.outputs, result)
        return None

    def _reduce(self, arrays: Any, spec: TaskSpec) -> Any:
        ctx = context(spec, self.outputs)
        state = import_dotted(self.partial)(arrays, spec.params, ctx)
        _check_names(state, self.state, spec.operator)
        return import_dotted(self.finalize)(state, spec.params, _kept(ctx, self.reduce_dims))

    def write(self, io: TaskIO, spec: TaskSpec, result: Any) -> None:
        if not self.step:
            write_outputs(io, spec, self.outputs, result)


@dataclasses.dataclass(frozen=True)
class ReducePartialTask(PartialKernels):
    """One block's partial state, written to its slot of the scratch state arrays
    (``spec.writes``: one per declared state array)."""

    state: State
    block: tuple[int, ...] = ()
    step: tuple[int, ...] = ()

    def read(self, io: TaskIO, spec: TaskSpec) -> Any:
        if self.step:
            return io  # each step is read and folded into the state in compute
        return io.read_inputs(spec)

    def compute(self, data: Any, spec: TaskSpec) -> Any:
        if not self.step:
            return self._partial(data, spec)
        import numpy as np

        io: TaskIO = data
        combine = import_dotted(self.combine)
        acc: dict[str, Any] | None = None
        for sub, arrays in io.stream_inputs(spec, self.step, None):
            state = self._partial(arrays, sub)
            # a state that views the step's buffers is copied: the next step reuses them
            for k, v in state.items():
                if any(np.may_share_memory(v, x) for x in arrays.values()):
                    state[k] = v.copy()
            if acc is not None:
                state = check_state(
                    combine([acc, state], spec.params), self.state, self.block, spec.operator
                )
            acc = state
        assert acc is not None  # a task's block is never empty
        return acc

    def _partial(self, arrays: Any, spec: TaskSpec) -> dict[str, Any]:
        state = import_dotted(self.partial)(arrays, spec.params, context(spec, Outputs()))
        return check_state(state, self.state, self.block, spec.operator)

    def write(self, io: TaskIO, spec: TaskSpec, result: Any) -> None:
        for w in spec.writes:
            io.write_array(w.array, w.region, result[w.output][None, ...], scratch=True)


@dataclasses.dataclass(frozen=True)
class ReduceCombineTask(PartialKernels):
    """Fold the partial states of one output block and finalize it."""

    state: State
    n_parts: int = 1
    outputs: Outputs = dataclasses.field(default_factory=Outputs)

    def read(self, io: TaskIO, spec: TaskSpec) -> Any:
        import numpy as np
        import zarr

        group = io.staging.scratch_group()
        states: list[dict[str, Any]] = [{} for _ in range(self.n_parts)]
        for a in self.state.arrays:
            arr = group[state_array(a.name)]
            assert isinstance(arr, zarr.Array)
            block = np.asarray(arr[(slice(0, self.n_parts), *spec.region)])
            io.bytes_read += block.nbytes
            for p in range(self.n_parts):
                states[p][a.name] = block[p]
        return states

    def compute(self, data: Any, spec: TaskSpec) -> Any:
        state = import_dotted(self.combine)(data, spec.params)
        return import_dotted(self.finalize)(state, spec.params, context(spec, self.outputs))

    def write(self, io: TaskIO, spec: TaskSpec, result: Any) -> None:
        write_outputs(io, spec, self.outputs, result)


def state_array(name: str) -> str:
    """The scratch array that holds state array ``name`` of every partition."""
    return f"{_STATE_PREFIX}{name}"


def _check_names(state: Any, declared: State, operator: str) -> None:
    want = sorted(a.name for a in declared.arrays)
    if not isinstance(state, dict) or sorted(state) != want:
        got = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise ExecutionError(
            f"{operator}: partial returned state {got!r} but the operator declares "
            f"{want!r}; return exactly the declared state arrays (Reduce.state)"
        )


def check_state(
    state: Any, declared: State, block: tuple[int, ...], operator: str
) -> dict[str, Any]:
    """The partial's state as declared host arrays, or a typed error naming the key."""
    import numpy as np

    want = {a.name: a for a in declared.arrays}
    _check_names(state, declared, operator)
    out = {}
    for name, a in want.items():
        arr = np.ascontiguousarray(to_host(state[name]))
        shape = a.shape(block)
        if arr.shape != shape:
            raise ExecutionError(
                f"{operator}: partial state {name!r} has shape {arr.shape!r}; it must be shaped "
                f"like the output block followed by its declared trailing sizes: {shape!r}"
            )
        if not np.can_cast(arr.dtype, a.dtype, casting="same_kind"):
            raise ExecutionError(
                f"{operator}: partial state {name!r} is {arr.dtype} but is declared {a.dtype}; "
                "return the declared dtype"
            )
        out[name] = arr.astype(a.dtype, copy=False)
    return out


def _kept(ctx: BlockContext, reduce_dims: tuple[str, ...]) -> BlockContext:
    """The context over the kept dims, for a reduction's finalize step."""
    keep = tuple(d for d in ctx.dims if d not in set(reduce_dims))
    return BlockContext(
        operator=ctx.operator,
        backend=ctx.backend,
        task=ctx.task,
        dims=keep,
        region={d: ctx.region[d] for d in keep},
        halo={d: ctx.halo[d] for d in keep},
        sizes={d: ctx.sizes[d] for d in keep},
        coords={d: v for d, v in ctx.coords.items() if d in keep},
        attrs=ctx.attrs,
        n_tasks=ctx.n_tasks,
        outputs=ctx.outputs,
    )


def plan_reduce(planner: StepPlanner, r: Request, pattern: Reduce) -> StepPlan:
    import numpy as np
    from minjiang.core._planner import (
        ArrayWrite,
        OutputArraySpec,
        Stage,
        chunks_touched,
        codec_bytes,
    )

    rdims = planner.pattern_dims(r, pattern.dims, "cannot reduce over")
    arrays, tables = planner.output_arrays(r.op, r.params, r.inputs, drop=rdims)
    state = pattern.resolve_state(r.params, planner.plan_inputs(r.inputs))
    span = tuple(d in rdims for d in r.dims)

    # A partial state is the declared arrays, each shaped like the output block.
    def state_bytes(block: tuple[int, ...]) -> int:
        return state.nbytes(math.prod(b for b, sp in zip(block, span, strict=True) if not sp))

    def state_specs(block: tuple[int, ...]) -> dict[str, OutputArraySpec]:
        """A partial's state arrays as it writes them: one slot (one chunk) each."""
        kept_block = tuple(b for b, sp in zip(block, span, strict=True) if not sp)
        return {
            a.name: OutputArraySpec(
                a.name,
                ("part", *(f"s{i}" for i in range(len(a.shape(kept_block))))),
                (1, *a.shape(kept_block)),
                (1, *a.shape(kept_block)),
                str(np.dtype(a.dtype)),
                {},
                scratch=True,
            )
            for a in state.arrays
        }

    def spans(block: tuple[int, ...]) -> bool:
        return all(b >= s for b, s, sp in zip(block, r.shape, span, strict=True) if sp)

    def task_outputs(
        block: tuple[int, ...], part: tuple[int, ...]
    ) -> tuple[int, Mapping[str, OutputArraySpec]]:
        # a task spanning the reduced dims writes the outputs of a part; any other its
        # state (while folding steps: its own, the step's and their combination)
        if spans(block):
            return planner.out_bytes(arrays, r.dims, part), arrays
        return (1 if part == block else 3) * state_bytes(part), state_specs(part)

    kept = tuple(d for d in r.dims if d not in rdims)
    streamed = planner.stepper(r, arrays, tables, whole=rdims)
    # a partial steps along the reduced dims, writing its state (no outputs) at its end
    folded = planner.stepper(r, {}, tables, whole=kept)

    def held(block: tuple[int, ...]) -> tuple[int, ...]:
        stepper = streamed if spans(block) else folded
        return stepper(block) if stepper is not None else block

    choice = planner.choose(
        r, {}, arrays, span=span, partial_bytes=state_bytes, outputs=task_outputs, held=held
    )
    kernels = {
        "partial": dotted_path(pattern.partial),
        "combine": dotted_path(pattern.combine),
        "finalize": dotted_path(pattern.finalize),
    }
    outputs = planner.outputs(arrays, tables)
    if spans(choice.block):
        step = held(choice.block)
        payload = ReduceBlockTask(
            **kernels,
            state=state,
            reduce_dims=rdims,
            outputs=outputs,
            step=() if step == choice.block else step,
        )
        stage = planner.block_stage(
            r, "reduce", choice.block, payload, arrays, held=held if streamed else None
        )
        return planner.new_plan(r, arrays, tables, [stage], choice)
    # Partial states go to scratch Zarr arrays (one slot per partition along the
    # reduced dims), then one combine task per output block folds them.
    step = held(choice.block)
    part_shape = tuple(
        math.ceil(s / b) for s, b, sp in zip(r.shape, choice.block, span, strict=True) if sp
    )
    n_parts = math.prod(part_shape)
    out_block = tuple(b for b, sp in zip(choice.block, span, strict=True) if not sp)
    kept_shape = tuple(s for s, sp in zip(r.shape, span, strict=True) if not sp)
    scratch = {
        state_array(a.name): OutputArraySpec(
            state_array(a.name),
            (
                "part",
                *(f"d{i}" for i in range(len(kept_shape))),
                *(f"s{i}" for i in range(len(a.extra))),
            ),
            (n_parts, *a.shape(kept_shape)),
            (1, *a.shape(out_block)),
            str(np.dtype(a.dtype)),
            {},
            scratch=True,
        )
        for a in state.arrays
    }
    regions = iter_blocks(r.shape, choice.block)
    partial_tasks = []
    for i, region in enumerate(regions):
        reads, _ = planner.reads(r, region, {}, "reflect")
        part_idx = tuple(
            g.start // b for g, b, sp in zip(region, choice.block, span, strict=True) if sp
        )
        part = int(np.ravel_multi_index(part_idx, part_shape))
        kept_region = tuple(g for g, sp in zip(region, span, strict=True) if not sp)
        kept_block = tuple(g.stop - g.start for g in kept_region)
        writes = [
            ArrayWrite(
                a.name,
                state_array(a.name),
                (slice(part, part + 1), *kept_region, *(slice(0, n) for n in a.extra)),
                scratch=True,
            )
            for a in state.arrays
        ]
        blk = tuple(s.stop - s.start for s in region)
        partial = ReducePartialTask(
            **kernels, state=state, block=kept_block, step=() if step == choice.block else step
        )
        partial_tasks.append(
            planner.task(
                r,
                key=f"partial/{i:06d}",
                payload=partial,
                region=region,
                n_tasks=len(regions),
                memory=planner.block_memory(r, blk, {}, {}, outputs=task_outputs, held=held),
                reads=reads,
                writes=writes,
            )
        )
    kept_regions = iter_blocks(kept_shape, out_block)
    combine_tasks = []
    written: set[tuple[str, tuple[tuple[int, int], ...]]] = set()
    combine = ReduceCombineTask(**kernels, state=state, n_parts=n_parts, outputs=outputs)
    # A combine task decodes its slot of every partition's state and encodes its
    # block of the outputs.
    combine_decoded = [
        (n_parts, math.prod(a.shape(out_block)) * np.dtype(a.dtype).itemsize) for a in state.arrays
    ]
    kept_pos = {d: i for i, d in enumerate(kept)}
    combine_encoded = [
        (
            math.prod(
                chunks_touched(s, c, out_block[kept_pos[d]]) if d in kept_pos else -(-s // c)
                for d, s, c in zip(a.dims, a.shape, a.chunks, strict=True)
            ),
            math.prod(a.chunks) * np.dtype(a.dtype).itemsize,
        )
        for a in arrays.values()
    ]
    combine_codec = codec_bytes(combine_decoded, combine_encoded)
    for i, region in enumerate(kept_regions):
        cells = math.prod(g.stop - g.start for g in region)
        combine_tasks.append(
            planner.task(
                r,
                key=f"combine/{i:06d}",
                payload=combine,
                region=region,
                n_tasks=len(kept_regions),
                memory=3 * state.nbytes(cells) + 2 * cells * r.itemsize + combine_codec,
                writes=planner.writes(arrays, kept, region, written),
                dims=kept,
                sizes=kept_shape,
            )
        )
    stages = [
        Stage("partial", tuple(partial_tasks), scratch=True),
        Stage("combine", tuple(combine_tasks)),
    ]
    plan = planner.new_plan(r, {**arrays, **scratch}, tables, stages, choice)
    # the partitions along the reduced dims, and the steps a partial folds, order the
    # additions of a floating-point state: another split gives other last bits
    plan.partition = [
        *(b for b, sp in zip(choice.block, span, strict=True) if sp),
        *(s for s, sp in zip(step, span, strict=True) if sp),
    ]
    plan.notes.append(
        f"reduction split into {n_parts} partitions along {rdims!r}; partial states combined"
    )
    return plan

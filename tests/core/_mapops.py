"""A test plugin: a map whose output depends on where its block lies (its region and
its coordinate values), the same map filling the output memory ``ctx.empty`` hands
out (keeping each array it was given, per task), one whose kernel returns its own
input block, one that needs the whole array in one task, a composite that takes
that one where it fits the memory budget and the map otherwise, and an aggregate
whose partial state is its input block itself (a view of the buffer a stepped task
decodes into)."""

from __future__ import annotations

import numpy as np
from minjiang.core import (
    Aggregate,
    ArrayOutput,
    Composite,
    ExpandContext,
    FullAxis,
    Input,
    Map,
    Operator,
    SubStep,
    TableOutput,
    TaskSize,
    hookimpl,
)


def located(arrays, params, ctx):
    """x + 1000 × the block's t coordinate + 10⁶ × the global y index."""
    x = np.asarray(arrays["x"], dtype=np.float64)
    t = np.asarray(ctx.coords["t"], dtype=np.float64)
    y0 = ctx.region["y"].start
    y = np.arange(y0, y0 + x.shape[1], dtype=np.float64)
    return {"y": x + 1e3 * t[:, None, None] + 1e6 * y[None, :, None]}


#: (task, the output array it filled) of every call of ``located_into``: kept alive,
#: so two arrays handed out in turn cannot share an address by chance
FILLED: list[tuple[int, np.ndarray]] = []


def located_into(arrays, params, ctx):
    """``located`` written into ``ctx.empty``."""
    out = ctx.empty("y", arrays["x"].shape)
    out[...] = located(arrays, params, ctx)["y"]
    FILLED.append((ctx.task, out))
    return {"y": out}


def same(arrays, params, ctx):
    return {"y": arrays["x"]}  # the decoded block itself, no copy


LOCATED = Operator(
    name="testlab.located",
    version="1",
    inputs=(Input("x"),),
    outputs=(ArrayOutput("y", dtype="float64"),),
    pattern=Map(located),
)
LOCATED_INTO = Operator(
    name="testlab.located_into",
    version="1",
    inputs=(Input("x"),),
    outputs=(ArrayOutput("y", dtype="float64"),),
    pattern=Map(located_into),
)
SAME = Operator(
    name="testlab.same",
    version="1",
    inputs=(Input("x"),),
    outputs=(ArrayOutput("y"),),
    pattern=Map(same),
)


def centred(arrays, params, ctx):
    """x minus the mean of the whole array."""
    x = np.asarray(arrays["x"], dtype=np.float64)
    return {"y": x - x.mean()}


def _eight_copies(size: TaskSize, params) -> int:
    return 8 * (size.input_bytes + size.output_bytes)


CENTRED = Operator(
    name="testlab.centred",
    version="1",
    inputs=(Input("x", dims=("t", "y", "x")),),
    outputs=(ArrayOutput("y", dtype="float64"),),
    pattern=FullAxis(dims=("t", "y", "x"), kernel=centred),
    memory=_eight_copies,
)


def _whole_or_blocks(params, inputs, plan: ExpandContext) -> list[SubStep]:
    if plan.fits(CENTRED, {"x": "x"}):
        return [SubStep("whole", CENTRED, {"x": "x"})]
    return [SubStep("blocks", SAME, {"x": "x"})]


WHOLE_OR_BLOCKS = Operator(
    name="testlab.whole_or_blocks",
    version="1",
    inputs=(Input("x", dims=("t", "y", "x")),),
    outputs=(ArrayOutput("y", dtype="float64"),),
    pattern=Composite(_whole_or_blocks),
)


def collect_partial(arrays, params, ctx):
    """The block's values and their flat indices in the whole array."""
    x = arrays["x"]
    index = np.ravel_multi_index(
        np.indices(x.shape).reshape(x.ndim, -1)
        + np.array([s.start for s in ctx.region.values()])[:, None],
        tuple(ctx.sizes[d] for d in ctx.dims),
    )
    return {"value": x.reshape(-1), "index": index}  # "value" views the block


def collect_combine(states, params):
    return {k: np.concatenate([s[k] for s in states]) for k in ("value", "index")}


def collect_finalize(state, params):
    order = np.argsort(state["index"], kind="stable")
    return {"values": {"index": state["index"][order], "value": state["value"][order]}}


COLLECT = Operator(
    name="testlab.collect",
    version="1",
    inputs=(Input("x"),),
    outputs=(TableOutput("values", {"index": "int64", "value": "double"}),),
    pattern=Aggregate(collect_partial, collect_combine, collect_finalize),
)


@hookimpl
def minjiang_register_operators():
    return [LOCATED, LOCATED_INTO, SAME, CENTRED, WHOLE_OR_BLOCKS, COLLECT]

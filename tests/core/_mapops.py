"""A test plugin: a map whose output depends on where its block lies (its region and
its coordinate values), the same map filling the output memory ``ctx.empty`` hands
out (keeping each array it was given, per task), and one whose kernel returns its own
input block."""

from __future__ import annotations

import numpy as np
from minjiang.core import ArrayOutput, Input, Map, Operator, hookimpl


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


@hookimpl
def minjiang_register_operators():
    return [LOCATED, LOCATED_INTO, SAME]

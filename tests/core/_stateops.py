"""A test plugin: reductions whose partial state has a trailing dim, one whose partial
breaks its own state declaration, and one whose state is a view of its block."""

from __future__ import annotations

import numpy as np
from minjiang.core import ArrayOutput, Input, Operator, Reduce, State, StateArray, hookimpl
from pydantic import BaseModel, ConfigDict


class BreakParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    how: str = "none"  # none | extra_key | shape | dtype


def partial(arrays, params, ctx):
    x = np.asarray(arrays["x"], dtype=np.float64)
    axis = ctx.dims.index("t")
    state = {"acc": np.stack([np.nansum(x, axis=axis), np.sum(~np.isnan(x), axis=axis)], -1)}
    if params.how == "extra_key":
        state["oops"] = state["acc"]
    elif params.how == "shape":
        state["acc"] = state["acc"][..., :1]
    elif params.how == "dtype":
        state["acc"] = state["acc"].astype(np.complex128)
    return state


def combine(states, params):
    out = states[0]["acc"].copy()
    for s in states[1:]:
        out += s["acc"]
    return {"acc": out}


def finalize(state, params, ctx):
    acc = state["acc"]
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"mean": acc[..., 0] / acc[..., 1]}


MEAN = Operator(
    name="testlab.state_mean",
    version="1",
    inputs=(Input("x"),),
    outputs=(ArrayOutput("mean", dtype="float64"),),
    pattern=Reduce(
        dims=("t",),
        partial=partial,
        combine=combine,
        finalize=finalize,
        state=State((StateArray("acc", "float64", (2,)),)),
    ),
    params=BreakParams,
)


def first_partial(arrays, params, ctx):
    # the block's first time step, as a view of the block (t is the leading dim)
    return {"first": arrays["x"][0]}


def first_combine(states, params):
    return states[0]


def first_finalize(state, params, ctx):
    return {"first": state["first"]}


FIRST = Operator(
    name="testlab.state_first",
    version="1",
    inputs=(Input("x"),),
    outputs=(ArrayOutput("first", dtype="float64"),),
    pattern=Reduce(
        dims=("t",),
        partial=first_partial,
        combine=first_combine,
        finalize=first_finalize,
        state=State((StateArray("first", "float64"),)),
    ),
)


@hookimpl
def minjiang_register_operators():
    return [MEAN, FIRST]

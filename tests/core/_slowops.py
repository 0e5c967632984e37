"""A test plugin: a slow map (to interrupt a driver), a map that kills its worker once,
and a map whose kernel raises in one task."""

from __future__ import annotations

import os
import time
from pathlib import Path

from minjiang.core import ArrayOutput, Input, Map, Operator, hookimpl
from pydantic import BaseModel, ConfigDict


class SlowParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    delay: float = 0.2
    crash_marker: str | None = None
    crash_task: int = 3


def slow_affine(arrays, params: SlowParams, ctx):
    if (
        params.crash_marker
        and ctx.task == params.crash_task
        and not Path(params.crash_marker).exists()
    ):
        Path(params.crash_marker).write_text("crashed once")
        os._exit(1)  # the worker process dies mid-task, as if the node were lost
    time.sleep(params.delay)
    return {"y": arrays["x"] * 2.0 + 1.0}


SLOW = Operator(
    name="testlab.slow_affine",
    version="1",
    inputs=(Input("x"),),
    outputs=(ArrayOutput("y"),),
    pattern=Map(slow_affine),
    params=SlowParams,
)


class FailParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    task: int = 1


def fail_in_one_task(arrays, params: FailParams, ctx):
    if ctx.task == params.task:
        raise ZeroDivisionError(f"no way to divide block {ctx.region['x']}")
    return {"y": arrays["x"]}


FAILS = Operator(
    name="testlab.fails",
    version="1",
    inputs=(Input("x"),),
    outputs=(ArrayOutput("y"),),
    pattern=Map(fail_in_one_task),
    params=FailParams,
)


@hookimpl
def minjiang_register_operators():
    return [SLOW, FAILS]

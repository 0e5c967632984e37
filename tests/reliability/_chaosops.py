"""A test plugin for the chaos suite: a map whose worker dies on chosen tasks, once each."""

from __future__ import annotations

import os
import time
from pathlib import Path

from minjiang.core import ArrayOutput, Input, Map, Operator, hookimpl
from pydantic import BaseModel, ConfigDict


class ChaosParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    delay: float = 0.0
    #: a folder of marker files; the task numbered in ``crash_tasks`` dies once each
    markers: str | None = None
    crash_tasks: tuple[int, ...] = ()


def chaos_affine(arrays, params: ChaosParams, ctx):
    if params.markers and ctx.task in params.crash_tasks:
        marker = Path(params.markers) / f"task-{ctx.task}"
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(1)  # the worker process dies mid-task, as if its node were lost
    time.sleep(params.delay)
    return {"y": arrays["x"] * 3.0 - 1.0}


CHAOS = Operator(
    name="chaoslab.affine",
    version="1",
    inputs=(Input("x"),),
    outputs=(ArrayOutput("y"),),
    pattern=Map(chaos_affine),
    params=ChaosParams,
)


@hookimpl
def minjiang_register_operators():
    return [CHAOS]

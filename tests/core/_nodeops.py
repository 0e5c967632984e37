"""A test plugin for the multi-node tests: a map that records the Ray node each of its
tasks ran on (one marker file per attempt) and can be slowed down per task, or held on
one node."""

from __future__ import annotations

import os
import time
from pathlib import Path

from minjiang.core import ArrayOutput, Input, Map, Operator, hookimpl
from pydantic import BaseModel, ConfigDict


class WhereParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    #: a folder; each attempt of a task writes ``<task>.<pid>`` holding its Ray node id
    markers: str
    delay: float = 0.0
    #: a Ray node id: a task that runs there holds for ``hold_s`` seconds (so that it is
    #: still running when the test removes that node)
    hold_on: str = ""
    hold_s: float = 300.0


def _node_id() -> str:
    import ray

    return str(ray.get_runtime_context().get_node_id()) if ray.is_initialized() else "local"


def where_affine(arrays, params: WhereParams, ctx):
    node = _node_id()
    Path(params.markers, f"{ctx.task}.{os.getpid()}").write_text(node)
    time.sleep(params.hold_s if params.hold_on and node == params.hold_on else params.delay)
    return {"y": arrays["x"] * 2.0 + 1.0}


WHERE = Operator(
    name="nodelab.where",
    version="1",
    inputs=(Input("x"),),
    outputs=(ArrayOutput("y"),),
    pattern=Map(where_affine),
    params=WhereParams,
)


@hookimpl
def minjiang_register_operators():
    return [WHERE]

"""A step's resources: what each of its tasks asks the scheduler for.

A pipeline step may set ``resources`` (``{"CPU": 2, "GPU": 0.5, "licence": 1}``):

``CPU`` (alias ``cpus``)
    CPUs per task: Ray's ``num_cpus``, and the cap on numba's threads inside the task.
``GPU`` (alias ``gpus``)
    GPUs per task of the step's kernel on the ``gpu`` backend (Ray's ``num_gpus``),
    instead of the share the planner derives from device memory. Tasks that only move
    bytes on the CPU (rechunk, an aggregate's combine) never ask for a GPU.
``memory`` (bytes)
    A floor under each task's projected peak (Ray's ``memory``).
any other name
    A custom resource the cluster defines (``ray start --resources``), per task.

The planner's task shapes do not change: the memory budget per task is the same.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from minjiang.core._planner import StepPlan

__all__ = ["apply_resources", "check_resources"]

_ALIASES = {"cpus": "CPU", "gpus": "GPU", "CPU": "CPU", "GPU": "GPU", "memory": "memory"}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,63}$")
#: No task asks for more of anything than this (a typo such as 1e12 CPUs would never run).
_MAX = 1 << 50


def check_resources(resources: Mapping[str, Any]) -> dict[str, float]:
    """Validated, canonical resources (``cpus`` → ``CPU``); ``ValueError`` naming the
    entry and the fix otherwise."""
    out: dict[str, float] = {}
    for name, value in resources.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(
                f"resource name {str(name)[:64]!r} must be a letter then letters, digits, "
                "'_', '.', ':' or '-' (at most 64)"
            )
        key = _ALIASES.get(name, name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"resource {name!r} must be a number, not {type(value).__name__}")
        number = float(value)
        if not math.isfinite(number) or number < 0 or number > _MAX:
            raise ValueError(f"resource {name!r} is {value!r}; give a finite number >= 0")
        if key == "CPU" and number <= 0:
            raise ValueError(f"resource {name!r} is {value!r}; a task needs more than 0 CPUs")
        if key in out:
            raise ValueError(f"resource {name!r} is given twice (as {key!r} too)")
        out[key] = number
    return out


def apply_resources(plan: StepPlan, resources: Mapping[str, float]) -> None:
    """Make every task of ``plan`` ask for the step's ``resources``."""
    if not resources:
        return
    res = check_resources(resources)
    custom = tuple(sorted((k, v) for k, v in res.items() if k not in ("CPU", "GPU", "memory")))
    floor = int(res.get("memory", 0))

    def task(t: Any) -> Any:
        gpus = t.gpus
        if "GPU" in res and t.backend == "gpu":
            gpus = res["GPU"]
        return dataclasses.replace(
            t,
            cpus=res.get("CPU", t.cpus),
            gpus=gpus,
            memory=max(t.memory, floor),
            resources=custom,
        )

    plan.stages = [
        dataclasses.replace(stage, tasks=tuple(task(t) for t in stage.tasks))
        for stage in plan.stages
    ]

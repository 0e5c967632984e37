"""A test plugin: a map whose output is the numba thread count and the CPUs Ray
assigned to the task that computed each block."""

from __future__ import annotations

import numpy as np
from minjiang.core import ArrayOutput, Input, Map, Operator, hookimpl


def resource_probe(arrays, params, ctx):
    import numba

    x = arrays["x"]
    cpus = 0.0
    try:
        import ray

        if ray.is_initialized() and ray.get_runtime_context().worker.mode == ray.WORKER_MODE:
            cpus = float(ray.get_runtime_context().get_assigned_resources().get("CPU", 0.0))
    except ImportError:
        pass
    return {
        "threads": np.full(x.shape, numba.get_num_threads(), dtype=np.int32),
        "cpus": np.full(x.shape, cpus, dtype=np.float32),
    }


PROBE = Operator(
    name="testlab.resource_probe",
    version="1",
    inputs=(Input("x"),),
    outputs=(ArrayOutput("threads", dtype="int32"), ArrayOutput("cpus", dtype="float32")),
    pattern=Map(resource_probe),
)


@hookimpl
def minjiang_register_operators():
    return [PROBE]

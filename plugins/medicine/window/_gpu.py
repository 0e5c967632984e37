"""GPU kernel of the modality LUT and VOI windowing (``numba.cuda``, one fused pass).

One thread per voxel with the CPU kernel's operations in the CPU kernel's order, so
LINEAR and LINEAR_EXACT agree with the CPU to the compiler's fused multiply-adds, and
SIGMOID to CUDA's ``exp`` (a few ulp from the host's). Written in numba so that it also
runs under numba's CUDA simulator, where ``tests/kernels/test_cudasim.py`` checks it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from minjiang.kernels import _cuda
from numba import cuda, float64

__all__ = ["voi_window"]


def _build() -> Any:
    @cuda.jit
    def window(flat, out, slope, intercept, center, width, function, y_min, y_max):
        y_range = y_max - y_min
        if function == 1 or function == 2:
            c = center
            w = width
        else:
            c = center - 0.5
            w = width - 1
        lo = c - w / 2
        hi = c + w / 2
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for i in range(start, flat.size, stride):
            v = float64(flat[i]) * slope
            v = v + intercept
            if function == 2:
                out[i] = y_range / (1 + math.exp(-4 * (v - c) / w)) + y_min
            elif v <= lo:
                out[i] = y_min
            elif v > hi:
                out[i] = y_max
            else:
                out[i] = ((v - c) / w + 0.5) * y_range + y_min

    return window


def voi_window(
    x: Any,
    slope: float,
    intercept: float,
    center: float,
    width: float,
    function: int,
    y_min: float,
    y_max: float,
    out_dtype: np.dtype,
) -> Any:
    """The window of device ``x`` (NumPy arrays only under the simulator)."""
    xp = _cuda.array_module(x)
    flat = xp.ascontiguousarray(x).reshape(-1)
    out = xp.empty(flat.size, dtype=out_dtype)
    kernel = _cuda.cached(("medicine.voi_window",), _build)
    _cuda.launch(
        kernel,
        flat.size,
        flat,
        out,
        float(slope),
        float(intercept),
        float(center),
        float(width),
        int(function),
        float(y_min),
        float(y_max),
    )
    return out.reshape(x.shape)

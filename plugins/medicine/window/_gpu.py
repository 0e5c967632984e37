"""GPU kernel of the modality LUT and VOI windowing (``numba.cuda``, one fused pass).

One thread per voxel, compiling the source the CPU kernel compiles (``_value.py``), so
LINEAR and LINEAR_EXACT agree with the CPU to the compiler's fused multiply-adds, and
SIGMOID to CUDA's ``exp`` (a few ulp from the host's). Written in numba so that it also
runs under numba's CUDA simulator, where ``tests/kernels/test_cudasim.py`` checks it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from minjiang.kernels import cuda as _cuda
from minjiang.plugins.medicine.window._value import window_params, window_value
from numba import cuda, float64

__all__ = ["voi_window"]


def _build() -> Any:
    params = cuda.jit(device=True)(window_params)
    value = cuda.jit(device=True)(window_value)

    @cuda.jit
    def window(flat, out, slope, intercept, center, width, function, y_min, y_max):
        c, w, lo, hi, y_range = params(center, width, function, y_min, y_max)
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for i in range(start, flat.size, stride):
            out[i] = value(
                float64(flat[i]), slope, intercept, c, w, lo, hi, y_range, y_min, y_max, function
            )

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

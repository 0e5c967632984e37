"""The windowing of one value: plain Python that both windowing kernels compile, numba
``njit`` on the CPU (``_cpu.py``) and a ``numba.cuda`` device function on the GPU
(``_gpu.py``), so that they do the same operations in the same order."""

from __future__ import annotations

import math


def window_params(center, width, function, y_min, y_max):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """``(c, w, lo, hi, y_range)`` of a window: LINEAR uses ``c - 0.5`` and ``w - 1``."""
    if function == 1 or function == 2:
        c = center
        w = width
    else:
        c = center - 0.5
        w = width - 1
    return c, w, c - w / 2, c + w / 2, y_max - y_min


def window_value(x, slope, intercept, c, w, lo, hi, y_range, y_min, y_max, function):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """Rescale one stored value and map it through the VOI function (no fastmath: NaN
    stays NaN and no fused multiply-add may change a rounding on the CPU)."""
    v = x * slope
    v = v + intercept
    if function == 2:
        return y_range / (1 + math.exp(-4 * (v - c) / w)) + y_min
    if v <= lo:
        return y_min
    if v > hi:
        return y_max
    return ((v - c) / w + 0.5) * y_range + y_min

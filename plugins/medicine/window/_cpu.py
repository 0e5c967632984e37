"""numba CPU kernel of the modality LUT and VOI windowing (one fused pass)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def voi_window(
    flat, out, slope, intercept, center, width, function, y_min, y_max
):  # pragma: no cover
    # Same operations, same order as the reference (no fastmath: NaN must stay NaN and
    # no fused multiply-add may change a rounding).
    y_range = y_max - y_min
    if function == 1 or function == 2:
        c, w = center, width
    else:
        c, w = center - 0.5, width - 1
    lo = c - w / 2
    hi = c + w / 2
    for i in range(flat.size):
        v = np.float64(flat[i]) * slope
        v = v + intercept
        if function == 2:
            out[i] = y_range / (1 + np.exp(-4 * (v - c) / w)) + y_min
        elif v <= lo:
            out[i] = y_min
        elif v > hi:
            out[i] = y_max
        else:
            out[i] = ((v - c) / w + 0.5) * y_range + y_min

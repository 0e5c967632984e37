"""numba CPU kernel of the modality LUT and VOI windowing (one fused pass)."""

from __future__ import annotations

import numba
import numpy as np
from minjiang.plugins.medicine.window._value import window_params, window_value

_params = numba.njit(cache=True, nogil=True)(window_params)
_value = numba.njit(cache=True, nogil=True, inline="always")(window_value)


@numba.njit(cache=True, nogil=True)
def voi_window(
    flat, out, slope, intercept, center, width, function, y_min, y_max
):  # pragma: no cover
    # Same operations, same order as the reference (see _value.py).
    c, w, lo, hi, y_range = _params(center, width, function, y_min, y_max)
    for i in range(flat.size):
        out[i] = _value(
            np.float64(flat[i]), slope, intercept, c, w, lo, hi, y_range, y_min, y_max, function
        )

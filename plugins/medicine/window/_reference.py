"""NumPy specification of the modality LUT (linear rescale) and VOI windowing.

The windowing follows DICOM PS3.3 C.11.2.1.2 (LINEAR, with the ``c - 0.5`` and
``w - 1`` of the standard), C.11.2.1.3.2 (LINEAR_EXACT) and C.11.2.1.3.1 (SIGMOID),
written with the same operations in the same order as ``pydicom.pixels.apply_voi_lut``
so that both give the same float64 numbers. NaN stays NaN.
"""

from __future__ import annotations

import numpy as np

LINEAR, LINEAR_EXACT, SIGMOID = 0, 1, 2


def voi_window(
    x: np.ndarray,
    slope: float,
    intercept: float,
    center: float,
    width: float,
    function: int,
    y_min: float,
    y_max: float,
    out_dtype: np.dtype,
) -> np.ndarray:
    """Rescale (``x * slope + intercept``) then window into ``[y_min, y_max]``."""
    v = x.astype(np.float64) * slope
    v += intercept
    y_range = y_max - y_min
    if function == SIGMOID:
        with np.errstate(over="ignore"):  # exp -> inf gives y_min, as it should
            out = y_range / (1 + np.exp(-4 * (v - center) / width)) + y_min
        return out.astype(out_dtype)
    if function == LINEAR:
        center = center - 0.5
        width = width - 1
    below = v <= (center - width / 2)
    above = v > (center + width / 2)
    between = ~below & ~above
    out = v.copy()
    out[below] = y_min
    out[above] = y_max
    if between.any():
        out[between] = ((v[between] - center) / width + 0.5) * y_range + y_min
    return out.astype(out_dtype)

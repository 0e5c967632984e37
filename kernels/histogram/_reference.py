"""NumPy specification of the histogram kernels (uniform bins, NaN ignored)."""

from __future__ import annotations

import numpy as np


def finite_range(x: np.ndarray) -> tuple[float, float, int]:
    """``(min, max, count)`` of the finite values of ``x`` (``(inf, -inf, 0)`` if none)."""
    v = np.asarray(x, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("inf"), float("-inf"), 0
    return float(v.min()), float(v.max()), int(v.size)


def histogram_partial(x: np.ndarray, bins: int, lo: float, hi: float) -> np.ndarray:
    """``numpy.histogram(x, bins, range=(lo, hi))`` over the finite values, in float64."""
    v = np.asarray(x, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    counts, _ = np.histogram(v, bins=bins, range=(lo, hi))
    return counts.astype(np.int64)

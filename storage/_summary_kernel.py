"""The one-pass numba kernel behind :func:`minjiang.storage.block_summary` (imported
when a numeric block is first summarised, so that importing the storage layer does
not import numba)."""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["summarise"]


@numba.njit(cache=True, nogil=True)
def summarise(flat: np.ndarray) -> tuple[int, float, float, float]:  # pragma: no cover
    """NaN count, min, max and float64 sum of the non-NaN values of a 1-D array, in one
    pass (min and max are +inf and -inf when every value is NaN)."""
    nan = 0
    lo = np.inf
    hi = -np.inf
    total = 0.0
    for i in range(flat.size):
        v = flat[i]
        if v != v:
            nan += 1
            continue
        if v < lo:
            lo = v
        if v > hi:
            hi = v
        total += v
    return nan, float(lo), float(hi), total

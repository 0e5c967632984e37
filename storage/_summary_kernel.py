"""The one-pass numba kernel behind :func:`minjiang.storage.block_summary` (imported
when a numeric block is first summarised, so that importing the storage layer does
not import numba)."""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["summarise", "summarise_small_ints"]


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


@numba.njit(cache=True, nogil=True)
def summarise_small_ints(flat: np.ndarray) -> tuple[int, int, int]:  # pragma: no cover
    """Min, max and exact int64 sum of a non-empty 1-D array of integers of at most 32
    bits, in one pass. Integer addition is associative, so the loop vectorises (about
    0.04 s per GB on one core, against 0.16-0.26 for NumPy's three reductions)."""
    lo = flat[0]
    hi = flat[0]
    total = np.int64(0)
    for i in range(flat.size):
        v = flat[i]
        lo = min(lo, v)
        hi = max(hi, v)
        total += np.int64(v)
    return int(lo), int(hi), int(total)

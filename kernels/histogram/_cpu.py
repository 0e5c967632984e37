"""numba CPU histogram kernels (same binning arithmetic as ``numpy.histogram``)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def finite_range(flat):  # pragma: no cover - compiled
    lo = np.inf
    hi = -np.inf
    n = 0
    for i in range(flat.size):
        v = np.float64(flat[i])
        if np.isfinite(v):
            n += 1
            if v < lo:
                lo = v
            if v > hi:
                hi = v
    return lo, hi, n


@numba.njit(cache=True, nogil=True)
def histogram_partial(flat, edges):  # pragma: no cover - compiled
    # numpy.histogram's uniform-bin path: a scaled index, then corrected against the
    # edges so that a value on an edge lands where numpy puts it.
    nbins = edges.size - 1
    counts = np.zeros(nbins, dtype=np.int64)
    first = edges[0]
    last = edges[nbins]
    denom = last - first
    for i in range(flat.size):
        v = np.float64(flat[i])
        if not (v >= first and v <= last):  # also drops NaN
            continue
        k = np.intp(((v - first) / denom) * nbins)
        if k == nbins:
            k -= 1
        if v < edges[k]:
            k -= 1
        elif k != nbins - 1 and v >= edges[k + 1]:
            k += 1
        counts[k] += 1
    return counts

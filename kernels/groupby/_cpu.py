"""numba kernels for the group operations (one pass, no temporaries).

``_group_mean`` walks the steps in time order for a band of columns at a time: the
band's sums and counts (``n_groups × width``) stay in cache while the steps stream
past, and bands run in parallel. Each (group, column) still adds its values in time
order, so the result does not depend on the band width or the number of threads.
"""

from __future__ import annotations

import numba
import numpy as np

#: Bytes of per-band accumulators (sums and counts) to keep within a core's cache.
_BAND_BYTES = 1 << 20


def band_width(n_groups: int, m: int) -> int:
    """Columns per band: the accumulators fit ``_BAND_BYTES``; a multiple of 16."""
    width = _BAND_BYTES // max(1, 16 * n_groups)
    return int(max(16, min(m, width // 16 * 16)))


@numba.njit(cache=True, nogil=True, parallel=True)
def _group_mean(x: np.ndarray, groups: np.ndarray, n_groups: int, width: int) -> np.ndarray:
    t, m = x.shape
    out = np.empty((n_groups, m), dtype=np.float64)
    n_bands = (m + width - 1) // width
    for band in numba.prange(n_bands):
        c0 = band * width
        c1 = min(c0 + width, m)
        w = c1 - c0
        acc = np.zeros((n_groups, w), dtype=np.float64)
        cnt = np.zeros((n_groups, w), dtype=np.int64)
        for i in range(t):
            xi = x[i, c0:c1]
            ag = acc[groups[i]]
            cg = cnt[groups[i]]
            for j in range(w):
                v = xi[j]
                ok = not np.isnan(v)
                # branch-free, so it vectorises; adding +0.0 leaves a sum unchanged
                # (it is never -0.0: it starts at +0.0)
                ag[j] += v if ok else 0.0
                cg[j] += ok
        for g in range(n_groups):
            og = out[g, c0:c1]
            ag = acc[g]
            cg = cnt[g]
            for j in range(w):
                og[j] = ag[j] / cg[j] if cg[j] else np.nan
    return out


@numba.njit(cache=True, nogil=True, parallel=True)
def _subtract_group(x: np.ndarray, groups: np.ndarray, table: np.ndarray, out: np.ndarray) -> None:
    t, m = x.shape
    for i in numba.prange(t):
        xi = x[i]
        ti = table[groups[i]]
        oi = out[i]
        for j in range(m):
            oi[j] = xi[j] - ti[j]


#: reductions of ``_group_reduce`` (its ``how`` code)
HOWS = ("mean", "sum", "min", "max", "count")


@numba.njit(cache=True, nogil=True, parallel=True)
def _group_reduce(
    x: np.ndarray, groups: np.ndarray, n_groups: int, how: int, min_valid: int, width: int
) -> np.ndarray:
    """NaN-skipping mean/sum/min/max/count per group over axis 0, band by band like
    ``_group_mean``; a (group, column) with fewer than ``min_valid`` values is NaN
    (count: its count regardless)."""
    t, m = x.shape
    out = np.empty((n_groups, m), dtype=np.float64)
    n_bands = (m + width - 1) // width
    for band in numba.prange(n_bands):
        c0 = band * width
        c1 = min(c0 + width, m)
        w = c1 - c0
        acc = np.zeros((n_groups, w), dtype=np.float64)
        if how == 2:
            acc[:] = np.inf
        elif how == 3:
            acc[:] = -np.inf
        cnt = np.zeros((n_groups, w), dtype=np.int64)
        for i in range(t):
            xi = x[i, c0:c1]
            ag = acc[groups[i]]
            cg = cnt[groups[i]]
            for j in range(w):
                v = xi[j]
                if v != v:  # NaN (never true for integers, which need no copy)
                    continue
                cg[j] += 1
                if how == 2:
                    if v < ag[j]:
                        ag[j] = v
                elif how == 3:
                    if v > ag[j]:
                        ag[j] = v
                else:
                    ag[j] += v
        for g in range(n_groups):
            for j in range(w):
                c = cnt[g, j]
                if how == 4:
                    out[g, c0 + j] = c
                elif c < min_valid or c == 0:
                    out[g, c0 + j] = np.nan
                elif how == 0:
                    out[g, c0 + j] = acc[g, j] / c
                else:
                    out[g, c0 + j] = acc[g, j]
    return out

"""numba kernels of the climatology statistics.

One pass per pixel and pool: gather the finite samples, sum them for the mean and
sort them for the percentile (NumPy's ``linear`` interpolation, same arithmetic as
``numpy.nanpercentile`` so both backends agree to rounding of the mean only).
"""

from __future__ import annotations

import numpy as np
from minjiang.plugins.ocean.climatology._quantile import lerp, virtual_index
from numba import njit, prange

_virtual_index = njit(cache=True)(virtual_index)
_lerp = njit(cache=True)(lerp)


@njit(cache=True)
def _quantile_sorted(a, n, q):
    # numpy's virtual index and _lerp for method="linear", bit for bit
    vi = _virtual_index(n, q)
    if vi <= 0.0:
        return a[0]
    if vi >= n - 1:
        return a[n - 1]
    lo = int(np.floor(vi))
    return _lerp(a[lo], a[lo + 1], vi - lo)


@njit(cache=True)
def _sort_in_place(a, n):
    # Pools hold a few dozen samples (years x window): insertion sort, no allocation
    # (np.sort allocated a new array for each of the 366 pools of every pixel).
    if n > 64:
        a[:n].sort()
        return
    for i in range(1, n):
        v = a[i]
        j = i - 1
        while j >= 0 and a[j] > v:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = v


@njit(cache=True, parallel=True)
def _pooled_stats(values, offsets, index, q, seas, thresh):
    npix = values.shape[0]
    npool = offsets.size - 1
    maxlen = 0
    for k in range(npool):
        maxlen = max(maxlen, offsets[k + 1] - offsets[k])
    for p in prange(npix):
        buf = np.empty(maxlen, dtype=np.float64)
        row = values[p]
        for k in range(npool):
            n = 0
            total = 0.0
            for j in range(offsets[k], offsets[k + 1]):
                v = row[index[j]]
                if not np.isnan(v):
                    buf[n] = v
                    total += v
                    n += 1
            if n == 0:
                seas[p, k] = np.nan
                thresh[p, k] = np.nan
                continue
            seas[p, k] = total / n
            _sort_in_place(buf, n)
            thresh[p, k] = _quantile_sorted(buf, n, q)


def pooled_stats(values: np.ndarray, pools, percentile: float) -> tuple[np.ndarray, np.ndarray]:
    """See :func:`minjiang.plugins.ocean.climatology._reference.pooled_stats`."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    npix = values.shape[0]
    seas = np.empty((npix, len(pools)), dtype=np.float64)
    thresh = np.empty((npix, len(pools)), dtype=np.float64)
    if npix:
        _pooled_stats(
            values, pools.offsets, pools.index, float(np.true_divide(percentile, 100)), seas, thresh
        )
    return seas, thresh


@njit(cache=True, parallel=True)
def _smooth(clim, width, out):
    # Each output adds its window's values in window order, from 0.0, as the
    # reference does; the loops run over the periodically extended row, tap by tap,
    # so that they vectorise (no modulo per value) and pixels run in parallel.
    n = clim.shape[1]
    h = width // 2
    for p in prange(clim.shape[0]):
        ext = np.empty(n + 2 * h)
        row = clim[p]
        for i in range(n + 2 * h):
            ext[i] = row[(i - h) % n]
        total = np.zeros(n)
        for j in range(width):
            tap = ext[j : j + n]
            for i in range(n):
                total[i] += tap[i]
        o = out[p]
        for i in range(n):
            o[i] = total[i] / width


def smooth_circular(clim: np.ndarray, width: int) -> np.ndarray:
    """See :func:`minjiang.plugins.ocean.climatology._reference.smooth_circular`."""
    flat = np.ascontiguousarray(clim, dtype=np.float64).reshape(-1, clim.shape[-1])
    out = np.empty_like(flat)
    _smooth(flat, int(width), out)
    return out.reshape(clim.shape)

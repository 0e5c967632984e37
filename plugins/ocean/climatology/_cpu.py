"""numba kernels of the climatology statistics.

One pass per pixel and pool: sum the pool's finite samples in pool order for the
mean, and keep them sorted for the percentile (NumPy's ``linear`` interpolation, same
arithmetic as ``numpy.nanpercentile`` so both backends agree to rounding of the mean
only). Day-of-year pools overlap their predecessor in all but a few days per year, so
the sorted samples slide: the days that leave are deleted and the days that enter are
inserted, each by binary search; a pool sharing too little with the one before is
gathered and sorted afresh.
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


@njit(cache=True)
def _count_below(a, n, v, inclusive):
    # Position of v in sorted a[:n] by counting, branch-free so that it vectorises:
    # pools are a few dozen to a few hundred samples, where a binary search's
    # mispredicted branches cost more than a full compare.
    c = np.int64(0)
    if inclusive:
        for i in range(n):
            c += np.int64(a[i] <= v)
    else:
        for i in range(n):
            c += np.int64(a[i] < v)
    return c


@njit(cache=True)
def _gather_sorted(row, index, j0, j1, buf):
    n = 0
    for j in range(j0, j1):
        v = row[index[j]]
        if not np.isnan(v):
            buf[n] = v
            n += 1
    _sort_in_place(buf, n)
    return n


@njit(cache=True)
def _delete(buf, n, v):
    pos = _count_below(buf, n, v, False)  # the first sample equal to v
    for i in range(pos, n - 1):
        buf[i] = buf[i + 1]
    return n - 1


@njit(cache=True)
def _insert(buf, n, v):
    pos = _count_below(buf, n, v, True)  # after equal values, as insertion sort does
    for i in range(n, pos, -1):
        buf[i] = buf[i - 1]
    buf[pos] = v
    return n + 1


@njit(cache=True)
def _replace(buf, n, old, v):
    # delete old and insert v in one move: only the samples between the two positions
    # shift (a day leaving and the one entering for the same year are often close)
    p = _count_below(buf, n, old, False)
    q = _count_below(buf, n, v, True)
    if q > p:
        for i in range(p, q - 1):
            buf[i] = buf[i + 1]
        buf[q - 1] = v
    else:
        for i in range(p, q, -1):
            buf[i] = buf[i - 1]
        buf[q] = v


@njit(cache=True)
def _slide(row, rem, r0, r1, add, a0, a1, buf, n):
    # buf[:n] sorted: delete the samples of rem[r0:r1], insert those of add[a0:a1]
    # (NaN samples are not in buf and are not inserted).
    m = min(r1 - r0, a1 - a0)
    for t in range(m):
        old = row[rem[r0 + t]]
        v = row[add[a0 + t]]
        if np.isnan(old):
            if not np.isnan(v):
                n = _insert(buf, n, v)
        elif np.isnan(v):
            n = _delete(buf, n, old)
        else:
            _replace(buf, n, old, v)
    for j in range(r0 + m, r1):
        old = row[rem[j]]
        if not np.isnan(old):
            n = _delete(buf, n, old)
    for j in range(a0 + m, a1):
        v = row[add[j]]
        if not np.isnan(v):
            n = _insert(buf, n, v)
    return n


@njit(cache=True, parallel=True)
def _pooled_stats(values, offsets, index, fresh, rem_off, rem, add_off, add, q, seas, thresh):
    npix = values.shape[0]
    npool = offsets.size - 1
    maxlen = 0
    for k in range(npool):
        maxlen = max(maxlen, offsets[k + 1] - offsets[k])
    for p in prange(npix):
        buf = np.empty(maxlen + 1, dtype=np.float64)
        row = values[p]
        n = 0
        for k in range(npool):
            total = 0.0
            for j in range(offsets[k], offsets[k + 1]):
                v = row[index[j]]
                if not np.isnan(v):
                    total += v
            if fresh[k]:
                n = _gather_sorted(row, index, offsets[k], offsets[k + 1], buf)
            else:
                n = _slide(
                    row, rem, rem_off[k], rem_off[k + 1], add, add_off[k], add_off[k + 1], buf, n
                )
            if n == 0:
                seas[p, k] = np.nan
                thresh[p, k] = np.nan
                continue
            seas[p, k] = total / n
            thresh[p, k] = _quantile_sorted(buf, n, q)


def _slides(pools) -> tuple[np.ndarray, ...]:
    """Per pool, whether to gather it afresh, else the samples leaving and entering
    since the previous pool (CSR tables like the pools'; in index order)."""
    npool = len(pools)
    fresh = np.ones(npool, dtype=np.bool_)
    rem: list[int] = []
    add: list[int] = []
    rem_off = np.zeros(npool + 1, dtype=np.int64)
    add_off = np.zeros(npool + 1, dtype=np.int64)
    offsets = pools.offsets.tolist()
    index = pools.index.tolist()
    prev: set[int] | None = None
    for k in range(npool):
        cur_list = index[offsets[k] : offsets[k + 1]]
        cur = set(cur_list)
        if prev is not None and len(cur) == len(cur_list):
            gone = sorted(prev - cur)
            new = sorted(cur - prev)
            if len(gone) + len(new) < len(cur_list) // 2:
                fresh[k] = False
                rem.extend(gone)
                add.extend(new)
        rem_off[k + 1] = len(rem)
        add_off[k + 1] = len(add)
        prev = cur if len(cur) == len(cur_list) else None
    return fresh, rem_off, np.array(rem, dtype=np.int64), add_off, np.array(add, dtype=np.int64)


def pooled_stats(values: np.ndarray, pools, percentile: float) -> tuple[np.ndarray, np.ndarray]:
    """See :func:`minjiang.plugins.ocean.climatology._reference.pooled_stats`."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    npix = values.shape[0]
    seas = np.empty((npix, len(pools)), dtype=np.float64)
    thresh = np.empty((npix, len(pools)), dtype=np.float64)
    if npix and len(pools):
        fresh, rem_off, rem, add_off, add = _slides(pools)
        _pooled_stats(
            values,
            pools.offsets,
            pools.index,
            fresh,
            rem_off,
            rem,
            add_off,
            add,
            float(np.true_divide(percentile, 100)),
            seas,
            thresh,
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

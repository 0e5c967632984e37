"""numba kernels of the NaN-skipping moments and quantiles.

Moments are two passes per output element (mean, then squared deviations), all in
float64. Two layouts avoid copying the block: ``rows`` (K, M) reduces the trailing
axis, ``cols`` (M, K) the leading one with K running accumulators (the common
"reduce over time" case of a (time, y, x) block).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_COL_STRIP = 2048  # columns per parallel work item in the (M, K) layout
_TILE = 64  # quantile lines gathered together: neighbours along the contiguous axis


@njit(cache=True, parallel=True)
def _moments_rows(x, count, mean, m2, mn, mx):
    n_k, n_m = x.shape
    for k in prange(n_k):
        row = x[k]
        c = 0
        s = 0.0
        lo = np.inf
        hi = -np.inf
        for m in range(n_m):
            v = np.float64(row[m])
            if v == v:
                c += 1
                s += v
                lo = min(lo, v)
                hi = max(hi, v)
        count[k] = c
        if c == 0:
            mean[k] = np.nan
            m2[k] = np.nan
            mn[k] = np.nan
            mx[k] = np.nan
            continue
        mu = s / c
        d2 = 0.0
        for m in range(n_m):
            v = np.float64(row[m])
            if v == v:
                d2 += (v - mu) * (v - mu)
        mean[k] = mu
        m2[k] = d2
        mn[k] = lo
        mx[k] = hi


@njit(cache=True, parallel=True)
def _moments_cols(x, count, mean, m2, mn, mx):
    n_m, n_k = x.shape
    n_strips = (n_k + _COL_STRIP - 1) // _COL_STRIP
    for strip in prange(n_strips):
        k0 = strip * _COL_STRIP
        k1 = min(n_k, k0 + _COL_STRIP)
        s = np.zeros(k1 - k0)
        c = np.zeros(k1 - k0, dtype=np.int64)
        lo = np.full(k1 - k0, np.inf)
        hi = np.full(k1 - k0, -np.inf)
        for m in range(n_m):
            row = x[m, k0:k1]
            for j in range(k1 - k0):
                v = np.float64(row[j])
                if v == v:
                    c[j] += 1
                    s[j] += v
                    lo[j] = min(lo[j], v)
                    hi[j] = max(hi[j], v)
        mu = np.empty(k1 - k0)
        for j in range(k1 - k0):
            mu[j] = s[j] / c[j] if c[j] > 0 else np.nan
        d2 = np.zeros(k1 - k0)
        for m in range(n_m):
            row = x[m, k0:k1]
            for j in range(k1 - k0):
                v = np.float64(row[j])
                if v == v:
                    d2[j] += (v - mu[j]) * (v - mu[j])
        for j in range(k1 - k0):
            count[k0 + j] = c[j]
            if c[j] == 0:
                mean[k0 + j] = np.nan
                m2[k0 + j] = np.nan
                mn[k0 + j] = np.nan
                mx[k0 + j] = np.nan
            else:
                mean[k0 + j] = mu[j]
                m2[k0 + j] = d2[j]
                mn[k0 + j] = lo[j]
                mx[k0 + j] = hi[j]


def moments_partial(x: np.ndarray, axes: tuple[int, ...]) -> dict[str, np.ndarray]:
    """NaN-skipping moments of ``x`` over the sorted, unique ``axes``."""
    ndim = x.ndim
    kept = tuple(d for d in range(ndim) if d not in axes)
    out_shape = tuple(x.shape[d] for d in kept)
    n_k = int(np.prod(out_shape, dtype=np.int64))
    n_m = int(np.prod([x.shape[d] for d in axes], dtype=np.int64))
    count = np.empty(n_k, dtype=np.int64)
    mean, m2, mn, mx = (np.empty(n_k) for _ in range(4))
    if n_k:
        if axes == tuple(range(len(axes))) and len(axes) < ndim:
            _moments_cols(np.ascontiguousarray(x).reshape(n_m, n_k), count, mean, m2, mn, mx)
        else:
            y = np.ascontiguousarray(np.transpose(x, kept + axes)).reshape(n_k, n_m)
            _moments_rows(y, count, mean, m2, mn, mx)
    return {
        "count": count.reshape(out_shape),
        "mean": mean.reshape(out_shape),
        "m2": m2.reshape(out_shape),
        "min": mn.reshape(out_shape),
        "max": mx.reshape(out_shape),
    }


@njit(cache=True)
def _select(v, lo, hi, k):
    # Rearrange v[lo:hi] so that v[k] holds the value it would have if v[lo:hi] were
    # sorted, with v[lo:k] <= v[k] <= v[k+1:hi] (Hoare partition, median-of-three pivot).
    hi -= 1
    while hi > lo:
        mid = (lo + hi) >> 1
        if v[mid] < v[lo]:
            v[mid], v[lo] = v[lo], v[mid]
        if v[hi] < v[lo]:
            v[hi], v[lo] = v[lo], v[hi]
        if v[hi] < v[mid]:
            v[hi], v[mid] = v[mid], v[hi]
        pivot = v[mid]
        i = lo
        j = hi
        while i <= j:
            while v[i] < pivot:
                i += 1
            while v[j] > pivot:
                j -= 1
            if i <= j:
                v[i], v[j] = v[j], v[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return


@njit(cache=True)
def _lerp(a, b, t):
    # numpy's _lerp, term for term (so that inf handling matches too).
    diff = b - a
    if t >= 0.5:
        return b - diff * (1.0 - t)
    return a + diff * t


@njit(cache=True, parallel=True)
def _nanquantile(x, q_sorted, order, sort_all, out):
    # x: (A, N, B); out: (Q, A, B) float64; q_sorted ascending, order[i] its slot in out.
    # A work item is a tile of up to _TILE neighbouring lines (consecutive b): their
    # values are gathered row by row (contiguous reads of x[a, n, b0:b1]) rather than
    # line by line (one cache line per value when the line runs across the array).
    n_a, n_n, n_b = x.shape
    n_q = q_sorted.size
    tiles_per_a = (n_b + _TILE - 1) // _TILE
    for item in prange(n_a * tiles_per_a):
        a = item // tiles_per_a
        b0 = (item - a * tiles_per_a) * _TILE
        width = min(_TILE, n_b - b0)
        bufs = np.empty((width, n_n))
        counts = np.zeros(width, dtype=np.int64)
        for n in range(n_n):
            row = x[a, n, b0 : b0 + width]
            for t in range(width):
                v = np.float64(row[t])
                if v == v:
                    bufs[t, counts[t]] = v
                    counts[t] += 1
        for t in range(width):
            b = b0 + t
            m = counts[t]
            buf = bufs[t]
            if m == 0:
                for iq in range(n_q):
                    out[order[iq], a, b] = np.nan
                continue
            if sort_all:
                buf[:m].sort()
            lo = 0
            for iq in range(n_q):
                virtual = (m - 1) * q_sorted[iq]
                if virtual >= m - 1:
                    prev = m - 1
                    nxt = m - 1
                    gamma = virtual + 1.0  # numpy's index -1 for "last"; lerp(a, a, .) = a
                else:
                    prev = int(np.floor(virtual))
                    nxt = prev + 1
                    gamma = virtual - prev
                if not sort_all:
                    if prev >= lo:
                        _select(buf, lo, m, prev)
                        lo = prev + 1
                    if nxt != prev:
                        # everything above prev is >= buf[prev]: the next order
                        # statistic is the smallest of them
                        smallest = buf[prev + 1]
                        at = prev + 1
                        for j in range(prev + 2, m):
                            if buf[j] < smallest:
                                smallest = buf[j]
                                at = j
                        buf[prev + 1], buf[at] = buf[at], buf[prev + 1]
                        lo = prev + 2
                out[order[iq], a, b] = _lerp(buf[prev], buf[nxt], gamma)


def nanquantile(x: np.ndarray, q: np.ndarray, axis: int) -> np.ndarray:
    """``numpy.nanquantile(x, q, axis, method="linear")`` for 1-D ``q``, in float64."""
    shape = x.shape
    n_a = int(np.prod(shape[:axis], dtype=np.int64))
    n_b = int(np.prod(shape[axis + 1 :], dtype=np.int64))
    out = np.empty((q.size, n_a, n_b))
    order = np.argsort(q, kind="stable")
    if out.size:
        x3 = np.ascontiguousarray(x).reshape(n_a, shape[axis], n_b)
        # Selection costs O(N) per quantile, a sort O(N log N) once: sort for many q.
        sort_all = q.size > 8
        _nanquantile(x3, np.ascontiguousarray(q[order]), order, sort_all, out)
    return out.reshape((q.size, *shape[:axis], *shape[axis + 1 :]))

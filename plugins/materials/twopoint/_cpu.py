"""FFT pair counts and the numba radial average of the two-point correlation.

``num`` is the autocorrelation of the phase indicator: ``irfftn(|rfftn(I)|**2)``,
zero-padded to at least ``n_i + L_i`` per axis (non-periodic, no wrap-around within
the lag box) or not padded (periodic); the values are integers, recovered by
rounding (the FFT error is far below 0.5 for any image that fits in memory).
``overlap`` has a closed form: ``prod(n_i - |r_i|)`` (non-periodic) or ``N``.
"""

from __future__ import annotations

import numba
import numpy as np


def _fast_len(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n (sizes pocketfft transforms fastest)."""
    best = 1 << max(int(n - 1).bit_length(), 0)
    p5 = 1
    while p5 < 2 * n:
        p35 = p5
        while p35 < 2 * n:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def pair_counts(
    ind: np.ndarray, lags: tuple[int, ...], periodic: bool
) -> tuple[np.ndarray, np.ndarray]:
    """int64 ``num`` and ``overlap`` over the lag box, index ``r + L`` per axis."""
    x = np.asarray(ind, dtype=np.float64)
    if periodic:
        size = x.shape
    else:
        size = tuple(_fast_len(n + m) for n, m in zip(x.shape, lags, strict=True))
    axes = tuple(range(x.ndim))
    f = np.fft.rfftn(x, s=size, axes=axes)
    corr = np.fft.irfftn(f.real**2 + f.imag**2, s=size, axes=axes)
    take = np.ix_(*[np.arange(-m, m + 1) % s for m, s in zip(lags, size, strict=True)])
    num = np.rint(corr[take]).astype(np.int64)
    return num, overlap_counts(x.shape, lags, periodic)


def overlap_counts(shape: tuple[int, ...], lags: tuple[int, ...], periodic: bool) -> np.ndarray:
    """Pairs inside the image per lag vector: ``prod(n_i - |r_i|)``, or ``N`` (periodic)."""
    box = tuple(2 * m + 1 for m in lags)
    if periodic:
        return np.full(box, int(np.prod(shape)), dtype=np.int64)
    overlap = np.ones(box, dtype=np.int64)
    for ax, (m, n) in enumerate(zip(lags, shape, strict=True)):
        w = np.maximum(n - np.abs(np.arange(-m, m + 1)), 0).astype(np.int64)
        dims = [1] * len(shape)
        dims[ax] = w.size
        overlap = overlap * w.reshape(dims)
    return overlap


@numba.njit(cache=True)
def _radial(num, overlap, lags, spacing, edges, out_sum, out_n):
    nb = edges.size - 1
    total = num.size
    nd = lags.size
    for flat in range(total):
        if overlap[flat] <= 0:
            continue
        rem = flat
        d2 = 0.0
        for ax in range(nd - 1, -1, -1):
            w = 2 * lags[ax] + 1
            r = rem % w - lags[ax]
            rem //= w
            d = r * spacing[ax]
            d2 += d * d
        d = np.sqrt(d2)
        if d < edges[0] or d >= edges[nb]:
            continue
        lo, hi = 0, nb
        while hi - lo > 1:  # edges[lo] <= d < edges[hi]
            mid = (lo + hi) // 2
            if edges[mid] <= d:
                lo = mid
            else:
                hi = mid
        out_sum[lo] += num[flat] / overlap[flat]
        out_n[lo] += 1


def radial_average(
    num: np.ndarray, overlap: np.ndarray, spacing: np.ndarray, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``num / overlap`` over the lag vectors in each distance bin, and their number."""
    lags = np.array([(s - 1) // 2 for s in num.shape], dtype=np.int64)
    out_sum = np.zeros(edges.size - 1)
    out_n = np.zeros(edges.size - 1, dtype=np.int64)
    _radial(
        np.ascontiguousarray(num).ravel(),
        np.ascontiguousarray(overlap).ravel(),
        lags,
        np.asarray(spacing, dtype=np.float64),
        np.asarray(edges, dtype=np.float64),
        out_sum,
        out_n,
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(out_n > 0, out_sum / np.maximum(out_n, 1), np.nan), out_n

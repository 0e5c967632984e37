"""numba kernels of per-label statistics.

A block's labels usually span a small range (organ ids, or the labels of one region of
a connected-components result): then one pass accumulates into arrays indexed by
``label - min_label``. A sparse range (few labels spread over a wide interval) is first
renumbered 0..n-1 with ``numpy.unique``; both paths visit each label's values in data
order, so they give identical sums. States are sorted by label, so merging two
is a linear two-way merge; many are merged pairwise as a balanced tree.

Serial by design: the runtime runs one task per core, and per-thread accumulators
would multiply the scratch memory by the thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Dense accumulators are used while the label range is at most the kept voxels plus this.
_DENSE_SLACK = 65536


@njit(cache=True)
def _label_range(labels, ignore, has_ignore):
    lo = np.int64(0)
    hi = np.int64(-1)
    kept = 0
    for i in range(labels.size):
        lab = np.int64(labels[i])
        if has_ignore and lab == ignore:
            continue
        if kept == 0:
            lo = lab
            hi = lab
        elif lab < lo:
            lo = lab
        elif lab > hi:
            hi = lab
        kept += 1
    return lo, hi, kept


@njit(cache=True)
def _partial_dense(values, labels, ignore, has_ignore, lo, n_bins):
    seen = np.zeros(n_bins, dtype=np.bool_)
    count = np.zeros(n_bins, dtype=np.int64)
    total = np.zeros(n_bins)
    sumsq = np.zeros(n_bins)
    mn = np.full(n_bins, np.inf)
    mx = np.full(n_bins, -np.inf)
    for i in range(labels.size):
        lab = np.int64(labels[i])
        if has_ignore and lab == ignore:
            continue
        j = lab - lo
        seen[j] = True
        v = np.float64(values[i])
        if v == v:
            count[j] += 1
            total[j] += v
            sumsq[j] += v * v
            mn[j] = min(mn[j], v)
            mx[j] = max(mx[j], v)
    n = 0
    for j in range(n_bins):
        n += seen[j]
    out_label = np.empty(n, dtype=np.int64)
    out_count = np.empty(n, dtype=np.int64)
    out_sum = np.empty(n)
    out_sumsq = np.empty(n)
    out_min = np.empty(n)
    out_max = np.empty(n)
    r = 0
    for j in range(n_bins):
        if seen[j]:
            out_label[r] = j + lo
            out_count[r] = count[j]
            out_sum[r] = total[j]
            out_sumsq[r] = sumsq[j]
            out_min[r] = mn[j] if count[j] > 0 else np.nan
            out_max[r] = mx[j] if count[j] > 0 else np.nan
            r += 1
    return out_label, out_count, out_sum, out_sumsq, out_min, out_max


_COLUMNS = ("label", "count", "sum", "sumsq", "min", "max")


def label_stats_partial(
    values: np.ndarray, labels: np.ndarray, ignore: int | None
) -> dict[str, np.ndarray]:
    """Per-label partial state of flat, C-contiguous ``values`` and ``labels``."""
    has_ignore = ignore is not None
    ignore64 = np.int64(ignore if ignore is not None else 0)
    lo, hi, kept = _label_range(labels, ignore64, has_ignore)
    if kept == 0:
        cols = _empty()
    elif int(hi) - int(lo) < kept + _DENSE_SLACK:  # Python ints: no int64 overflow
        cols = _partial_dense(values, labels, ignore64, has_ignore, lo, int(hi) - int(lo) + 1)
    else:
        # Sparse labels: number them 0..n-1 by sorting (NumPy's sort beats numba's
        # argsort here), then accumulate densely; values are still visited in data order.
        if has_ignore:
            keep = labels != ignore64
            values, labels = values[keep], labels[keep]
        uniq, ids = np.unique(labels, return_inverse=True)
        cols = _partial_dense(values, ids.reshape(-1), ignore64, False, np.int64(0), uniq.size)
        cols = (uniq.astype(np.int64), *cols[1:])
    return dict(zip(_COLUMNS, cols, strict=True))


def _empty() -> tuple[np.ndarray, ...]:
    return (np.empty(0, np.int64), np.empty(0, np.int64), *(np.empty(0) for _ in range(4)))


@njit(cache=True)
def _merge2(la, ca, sa, qa, mna, mxa, lb, cb, sb, qb, mnb, mxb):
    na = la.size
    nb = lb.size
    n = na + nb
    i = 0
    j = 0
    while i < na and j < nb:  # count the union of labels first
        if la[i] == lb[j]:
            n -= 1
            i += 1
            j += 1
        elif la[i] < lb[j]:
            i += 1
        else:
            j += 1
    label = np.empty(n, dtype=np.int64)
    count = np.empty(n, dtype=np.int64)
    total = np.empty(n)
    sumsq = np.empty(n)
    mn = np.empty(n)
    mx = np.empty(n)
    i = 0
    j = 0
    for r in range(n):
        if j >= nb or (i < na and la[i] < lb[j]):
            label[r], count[r], total[r], sumsq[r], mn[r], mx[r] = (
                la[i],
                ca[i],
                sa[i],
                qa[i],
                mna[i],
                mxa[i],
            )
            i += 1
        elif i >= na or lb[j] < la[i]:
            label[r], count[r], total[r], sumsq[r], mn[r], mx[r] = (
                lb[j],
                cb[j],
                sb[j],
                qb[j],
                mnb[j],
                mxb[j],
            )
            j += 1
        else:
            label[r] = la[i]
            count[r] = ca[i] + cb[j]
            total[r] = sa[i] + sb[j]
            sumsq[r] = qa[i] + qb[j]
            mn[r] = np.fmin(mna[i], mnb[j])
            mx[r] = np.fmax(mxa[i], mxb[j])
            i += 1
            j += 1
    return label, count, total, sumsq, mn, mx


def label_stats_combine(states: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Merge sorted states pairwise, as a balanced tree."""
    level = [tuple(s[k] for k in _COLUMNS) for s in states]
    while len(level) > 1:
        merged = [_merge2(*level[i], *level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            merged.append(level[-1])
        level = merged
    return dict(zip(_COLUMNS, (np.array(c, copy=True) for c in level[0]), strict=True))

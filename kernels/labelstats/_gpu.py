"""GPU per-label statistics: ``numba.cuda`` kernels with atomic accumulators.

``label_stats_partial`` makes two passes over the block, as ``_cpu`` does:

1. the label range (min and max label, and how many voxels are kept), reduced per
   thread block in shared memory and merged with one set of atomics per block;
2. the accumulation into arrays indexed by ``label - min_label`` (or by the rank of the
   label among the sorted unique labels when the range is sparse, as on the CPU). Few
   labels (at most ``SHARED_BINS``) are accumulated per block in shared memory and
   flushed with one global atomic per bin and block: a block's threads contend only on
   fast shared-memory atomics, which matters when a handful of organ labels cover a
   whole volume. More labels go straight to global atomics, spread over many addresses.

Counts, minima and maxima are exact whatever the order of the atomics; sums and sums of
squares are added in an order that varies from run to run, so they are not bit for bit
reproducible. Each stays within ``(n - 1) * eps * sum(|v|)`` of the exact sum for the
``n`` values of a label (``eps`` = 2**-53; ``v**2`` in place of ``|v|`` for ``sumsq``),
the bound of recursive summation in any order, far inside the float64 test tolerance
(``tests/kernels/test_gpu_reproducibility.py`` checks it).

``label_stats_combine`` merges states whose columns are CuPy arrays on the device: the
rows of all states are stably sorted by label and one thread per label adds its rows in
state order, exactly as the NumPy reference does, so it gives the reference's sums bit
for bit.

Why ``numba.cuda``: the accumulation is a scatter with atomics and shared-memory
privatisation, written once in Python and run both on the GPU and, on machines without
one, under numba's CUDA simulator against the NumPy reference
(``tests/kernels/test_cudasim.py``).

States are host data: both functions return NumPy columns, ready for Parquet and for
the host-side combine of the runtime.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from minjiang.kernels import _cuda
from numba import cuda, float64, int32, int64

__all__ = ["SHARED_BINS", "label_stats_combine", "label_stats_partial"]

#: labels accumulated per thread block in shared memory (more go to global atomics)
SHARED_BINS = 512
# Dense accumulators while the label range is at most the kept voxels plus this (_cpu's rule).
_DENSE_SLACK = 65536
_COLUMNS = ("label", "count", "sum", "sumsq", "min", "max")
_INT_COLUMNS = ("label", "count")
_INT64_MIN = np.iinfo(np.int64).min
_INT64_MAX = np.iinfo(np.int64).max


def _build_range() -> Any:
    from minjiang.kernels._cuda_device import block_min_max_count as reduce_block

    threads = _cuda.THREADS

    @cuda.jit
    def label_range(labels, ignore, has_ignore, out):
        # out: int64 [min label, max label, kept voxels], preset to [max, min, 0]
        s_lo = cuda.shared.array(threads, int64)
        s_hi = cuda.shared.array(threads, int64)
        s_n = cuda.shared.array(threads, int64)
        lo = out[0]
        hi = out[1]
        kept = 0
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for i in range(start, labels.shape[0], stride):
            lab = int64(labels[i])
            if has_ignore and lab == ignore:
                continue
            if lab < lo:
                lo = lab
            if lab > hi:
                hi = lab
            kept += 1
        tid = cuda.threadIdx.x
        s_lo[tid] = lo
        s_hi[tid] = hi
        s_n[tid] = kept
        reduce_block(s_lo, s_hi, s_n)
        if tid == 0 and s_n[0] > 0:
            cuda.atomic.min(out, 0, s_lo[0])
            cuda.atomic.max(out, 1, s_hi[0])
            cuda.atomic.add(out, 2, s_n[0])

    return label_range


def _build_accumulate(shared: bool) -> Any:
    bins = SHARED_BINS

    @cuda.jit
    def accumulate_global(
        values, labels, ignore, has_ignore, lo, seen, count, total, sumsq, mn, mx
    ):
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for i in range(start, labels.shape[0], stride):
            lab = int64(labels[i])
            if has_ignore and lab == ignore:
                continue
            j = lab - lo
            seen[j] = 1  # every writer writes 1: no atomic needed
            v = float64(values[i])
            if v == v:
                cuda.atomic.add(count, j, 1)
                cuda.atomic.add(total, j, v)
                cuda.atomic.add(sumsq, j, v * v)
                cuda.atomic.min(mn, j, v)
                cuda.atomic.max(mx, j, v)

    @cuda.jit
    def accumulate_shared(
        values, labels, ignore, has_ignore, lo, seen, count, total, sumsq, mn, mx
    ):
        n_bins = seen.shape[0]
        s_seen = cuda.shared.array(bins, int32)
        s_count = cuda.shared.array(bins, int64)
        s_total = cuda.shared.array(bins, float64)
        s_sumsq = cuda.shared.array(bins, float64)
        s_mn = cuda.shared.array(bins, float64)
        s_mx = cuda.shared.array(bins, float64)
        tid = cuda.threadIdx.x
        for j in range(tid, n_bins, cuda.blockDim.x):
            s_seen[j] = 0
            s_count[j] = 0
            s_total[j] = 0.0
            s_sumsq[j] = 0.0
            s_mn[j] = np.inf
            s_mx[j] = -np.inf
        cuda.syncthreads()
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for i in range(start, labels.shape[0], stride):
            lab = int64(labels[i])
            if has_ignore and lab == ignore:
                continue
            j = lab - lo
            s_seen[j] = 1
            v = float64(values[i])
            if v == v:
                cuda.atomic.add(s_count, j, 1)
                cuda.atomic.add(s_total, j, v)
                cuda.atomic.add(s_sumsq, j, v * v)
                cuda.atomic.min(s_mn, j, v)
                cuda.atomic.max(s_mx, j, v)
        cuda.syncthreads()
        for j in range(tid, n_bins, cuda.blockDim.x):
            if s_seen[j]:
                seen[j] = 1
            if s_count[j] > 0:
                cuda.atomic.add(count, j, s_count[j])
                cuda.atomic.add(total, j, s_total[j])
                cuda.atomic.add(sumsq, j, s_sumsq[j])
                cuda.atomic.min(mn, j, s_mn[j])
                cuda.atomic.max(mx, j, s_mx[j])

    return accumulate_shared if shared else accumulate_global


def label_range(labels: Any, ignore: int | None) -> tuple[int, int, int]:
    """``(min label, max label, kept voxels)`` of flat device ``labels``, ``ignore`` skipped."""
    xp = _cuda.array_module(labels)
    out = xp.asarray(np.array([_INT64_MAX, _INT64_MIN, 0], dtype=np.int64))
    kernel = _cuda.cached(("labelstats.range",), _build_range)
    _cuda.launch(kernel, labels.shape[0], labels, np.int64(ignore or 0), ignore is not None, out)
    lo, hi, kept = (int(v) for v in _cuda.to_host(out))
    return lo, hi, kept


def accumulate(
    values: Any, labels: Any, ignore: int | None, lo: int, n_bins: int, shared: bool | None = None
) -> tuple:
    """Per-bin ``seen, count, sum, sumsq, min, max`` of flat device arrays (bin = label - lo).

    ``shared`` forces (True, when the bins fit) or avoids (False) the shared-memory
    accumulators; by default they are used when the bins fit.
    """
    xp = _cuda.array_module(values, labels)
    seen = xp.zeros(n_bins, dtype=np.int32)
    count = xp.zeros(n_bins, dtype=np.int64)
    total = xp.zeros(n_bins, dtype=np.float64)
    sumsq = xp.zeros(n_bins, dtype=np.float64)
    mn = xp.full(n_bins, np.inf)
    mx = xp.full(n_bins, -np.inf)
    shared = n_bins <= SHARED_BINS and shared is not False
    kernel = _cuda.cached(("labelstats.accumulate", shared), lambda: _build_accumulate(shared))
    _cuda.launch(
        kernel,
        labels.shape[0],
        values,
        labels,
        np.int64(ignore or 0),
        ignore is not None,
        np.int64(lo),
        seen,
        count,
        total,
        sumsq,
        mn,
        mx,
    )
    return seen, count, total, sumsq, mn, mx


def label_stats_partial(
    values: Any, labels: Any, ignore: int | None, *, shared: bool | None = None
) -> dict[str, np.ndarray]:
    """Per-label partial state of device ``values`` and integer ``labels`` (host columns).

    ``shared=False`` skips the shared-memory accumulators (the benchmark compares both).
    """
    xp = _cuda.array_module(values, labels)
    values = xp.ascontiguousarray(values).reshape(-1)
    labels = xp.ascontiguousarray(labels).reshape(-1)
    if labels.dtype == np.uint64:  # checked to fit; int64 keeps label arithmetic signed
        labels = labels.astype(np.int64)
    if labels.size == 0:
        return _empty()
    lo, hi, kept = label_range(labels, ignore)
    if kept == 0:
        return _empty()
    if hi - lo < kept + _DENSE_SLACK:  # Python ints: no int64 overflow
        seen, *cols = accumulate(values, labels, ignore, lo, hi - lo + 1, shared)
        present = xp.flatnonzero(seen)
        label = present + lo
    else:
        # Sparse labels: number them 0..n-1 by sorting, then accumulate densely.
        if ignore is not None:
            keep = labels != ignore
            values, labels = values[keep], labels[keep]
        uniq, ids = xp.unique(labels, return_inverse=True)
        ids = ids.reshape(-1).astype(np.int64)
        seen, *cols = accumulate(values, ids, None, 0, uniq.size, shared)
        present = xp.arange(uniq.size)
        label = uniq
    count, total, sumsq, mn, mx = (c[present] for c in cols)
    empty = count == 0
    state = {
        "label": label.astype(np.int64),
        "count": count,
        "sum": total,
        "sumsq": sumsq,
        "min": xp.where(empty, np.nan, mn),
        "max": xp.where(empty, np.nan, mx),
    }
    return {k: _cuda.to_host(v) for k, v in state.items()}


def _empty() -> dict[str, np.ndarray]:
    return {c: np.empty(0, dtype=np.int64 if c in _INT_COLUMNS else np.float64) for c in _COLUMNS}


def _build_merge() -> Any:
    @cuda.jit
    def merge_runs(
        starts, ends, count, total, sumsq, mn, mx, out_count, out_total, out_sumsq, out_mn, out_mx
    ):
        # One thread per label: its rows are starts[r]:ends[r] of the sorted columns.
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for r in range(start, starts.shape[0], stride):
            c = 0
            s = 0.0
            q = 0.0
            lo = np.nan
            hi = np.nan
            for k in range(starts[r], ends[r]):
                c += count[k]
                s += total[k]
                q += sumsq[k]
                v = mn[k]
                if v == v and not (lo <= v):  # fmin: NaN only where every side is NaN
                    lo = v
                v = mx[k]
                if v == v and not (hi >= v):
                    hi = v
            out_count[r] = c
            out_total[r] = s
            out_sumsq[r] = q
            out_mn[r] = lo
            out_mx[r] = hi

    return merge_runs


def _check_state(state: Any, where: str, xp: Any) -> dict[str, Any]:
    # The checks of labelstats._check_state, on device columns.
    if not isinstance(state, Mapping):
        raise TypeError(
            f"{where} is a {type(state).__name__}; expected a dict of columns from "
            "label_stats_partial"
        )
    missing = [c for c in _COLUMNS if c not in state]
    if missing:
        raise ValueError(
            f"{where} lacks the columns {missing!r}; a state has {list(_COLUMNS)!r} "
            "(build it with label_stats_partial)"
        )
    cols = {
        c: xp.ascontiguousarray(
            xp.asarray(state[c]), dtype=np.int64 if c in _INT_COLUMNS else np.float64
        )
        for c in _COLUMNS
    }
    shapes = {c: v.shape for c, v in cols.items()}
    if any(v.ndim != 1 for v in cols.values()) or len(set(shapes.values())) > 1:
        raise ValueError(f"{where}: columns must be 1-D and of one length, got shapes {shapes!r}")
    label = cols["label"]
    if label.size > 1 and not bool(xp.all(label[1:] > label[:-1])):
        raise ValueError(
            f"{where}: labels are not sorted and unique; states from label_stats_partial "
            "and label_stats_combine always are"
        )
    return cols


def label_stats_combine(states: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Merge states whose columns are device arrays; returns a host state."""
    xp = _cuda.array_module(*(v for s in states if isinstance(s, Mapping) for v in s.values()))
    checked = [_check_state(s, f"label_stats_combine: state {i}", xp) for i, s in enumerate(states)]
    cols = {c: xp.concatenate([s[c] for s in checked]) for c in _COLUMNS}
    if cols["label"].size == 0:
        return _empty()
    order = xp.argsort(cols["label"], kind="stable")  # keeps state order within a label
    cols = {c: v[order] for c, v in cols.items()}
    label = cols["label"]
    new = xp.concatenate([xp.ones(1, dtype=bool), label[1:] != label[:-1]])
    starts = xp.flatnonzero(new).astype(np.int64)
    ends = xp.concatenate([starts[1:], xp.asarray([label.size], dtype=np.int64)])
    n = int(starts.size)
    out = {
        "count": xp.empty(n, dtype=np.int64),
        "sum": xp.empty(n),
        "sumsq": xp.empty(n),
        "min": xp.empty(n),
        "max": xp.empty(n),
    }
    kernel = _cuda.cached(("labelstats.merge",), _build_merge)
    _cuda.launch(
        kernel,
        n,
        starts,
        ends,
        cols["count"],
        cols["sum"],
        cols["sumsq"],
        cols["min"],
        cols["max"],
        out["count"],
        out["sum"],
        out["sumsq"],
        out["min"],
        out["max"],
    )
    state = {"label": label[starts], **out}
    return {c: _cuda.to_host(state[c]) for c in _COLUMNS}

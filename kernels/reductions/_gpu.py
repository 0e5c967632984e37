"""CuPy NaN-skipping moments (``ReductionKernel``s) and quantiles (a device sort).

Moments: five fused map-and-reduce kernels, each one pass over the block with no
temporaries: the non-NaN count, the sum, the minimum and the maximum, then the sum of
squared deviations from the mean (the two-pass scheme of ``_cpu``, in float64); a
state launches only those its arrays need (a mean's: the count and the sum). CuPy's
reduction kernels serve any set of reduced axes (leading, trailing, interleaved) from
one definition. They reduce each output in one thread block with a fixed tree and no
atomics, so results do not vary from run to run; the summation order differs from the
CPU's, so sums agree with it to rounding (the float64 tolerance of the tests), not bit
for bit. One block per output would idle the GPU when a block has few long lines (a
spatial mean per time step), so such lines are cut into pieces whose partials are then
combined per line (``_split_trailing``).

Why CuPy and not ``numba.cuda``: a reduction over a trailing axis needs a parallel tree
per output element, which CuPy's kernels already do well for every layout; a numba
kernel would need one variant per layout. The moments state is returned as NumPy arrays
(up to five arrays of the output block's shape): states are host data, combined and
finalized on the host by :func:`~minjiang.kernels.reductions.moments_combine` and
written to Zarr by the runtime.

Quantiles: the lines are sorted on the device (``cupy.sort`` puts NaN last, as NumPy
does), the NaN-free count of each line gives the rank of each quantile, and the two
neighbours are interpolated with NumPy's ``_lerp`` term for term, so results match
``numpy.nanquantile`` including its handling of inf. The code only uses functions that
NumPy and CuPy share, so it also runs on NumPy arrays (under numba's CUDA simulator
the tests check it that way).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from minjiang.kernels import _cuda

__all__ = ["moments_partial", "nanquantile"]

# Lines of a reduction are cut into pieces while there are fewer outputs than this ...
_SPLIT_OUTPUTS = 4096
# ... and the pieces keep at least this many values each.
_SPLIT_MIN_PIECE = 4096


def _build_moments() -> tuple[Any, ...]:
    import cupy

    count = cupy.ReductionKernel(
        "T x", "int64 n", "x == x ? 1 : 0", "a + b", "n = a", "0", "minjiang_nancount"
    )
    total = cupy.ReductionKernel(
        "T x", "float64 s", "x == x ? (double)x : 0.0", "a + b", "s = a", "0", "minjiang_nansum"
    )
    low = cupy.ReductionKernel(
        "T x",
        "float64 m",
        "x == x ? (double)x : CUDART_INF",
        "(a < b ? a : b)",
        "m = a",
        "CUDART_INF",
        "minjiang_nanmin",
    )
    high = cupy.ReductionKernel(
        "T x",
        "float64 m",
        "x == x ? (double)x : -CUDART_INF",
        "(a > b ? a : b)",
        "m = a",
        "-CUDART_INF",
        "minjiang_nanmax",
    )
    m2 = cupy.ReductionKernel(
        "T x, float64 mu",
        "float64 m2",
        "x == x ? ((double)x - mu) * ((double)x - mu) : 0.0",
        "a + b",
        "m2 = a",
        "0",
        "minjiang_nanm2",
    )
    return count, total, low, high, m2


def moments_partial(x: Any, axes: tuple[int, ...], keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The ``keys`` of the NaN-skipping moments of CuPy ``x`` over the sorted, unique
    ``axes`` (host state); only the kernels those keys need are launched."""
    import cupy

    kept = tuple(d for d in range(x.ndim) if d not in axes)
    out_shape = tuple(x.shape[d] for d in kept)
    if x.size == 0 or not axes:
        return _moments_without_reduction(x, axes, out_shape, keys)
    count_k, total_k, low_k, high_k, m2_k = _cuda.cached(("reductions.moments",), _build_moments)
    want_range = "min" in keys or "max" in keys
    low = high = m2 = None
    split = _split_trailing(x, axes)
    if split is None:
        count = count_k(x, axis=axes)
        mean = total_k(x, axis=axes) / count  # 0 / 0 -> NaN where nothing was counted
        if "m2" in keys:
            m2 = m2_k(x, cupy.expand_dims(mean, axes), axis=axes)
        if want_range:
            low = low_k(x, axis=axes)
            high = high_k(x, axis=axes)
    else:
        # Few long lines: reduce (K, S, L) pieces, then their S partials per line.
        head, tail = split
        count = count_k(head, axis=2).sum(axis=1)
        total = total_k(head, axis=2).sum(axis=1)
        if want_range:
            low = low_k(head, axis=2).min(axis=1)
            high = high_k(head, axis=2).max(axis=1)
        if tail.shape[1]:
            count += count_k(tail, axis=1)
            total += total_k(tail, axis=1)
            if want_range:
                low = cupy.minimum(low, low_k(tail, axis=1))
                high = cupy.maximum(high, high_k(tail, axis=1))
        mean = total / count
        if "m2" in keys:
            m2 = m2_k(head, mean[:, None, None], axis=2).sum(axis=1)
            if tail.shape[1]:
                m2 += m2_k(tail, mean[:, None], axis=1)
    empty = count == 0
    state = {"count": count, "mean": mean, "m2": m2, "min": low, "max": high}
    return {
        k: _cuda.to_host(state[k] if k == "count" else cupy.where(empty, np.nan, state[k])).reshape(
            out_shape
        )
        for k in keys
    }


def _split_trailing(x: Any, axes: tuple[int, ...]) -> tuple[Any, Any] | None:
    """Views ``(K, S, L)`` and ``(K, r)`` of a C-contiguous ``x`` reduced over trailing axes
    into few (``K``) long lines, or None when the reduction has outputs enough.

    CuPy reduces each output with one thread block, so a handful of outputs (a spatial
    mean per time step of a short block) would leave most of the GPU idle; cutting each
    line into ``S`` pieces gives ``K * S`` blocks of work, and the pieces' partials are
    then added (or min/max-ed) per line in a fixed order.
    """
    n_kept = x.ndim - len(axes)
    if axes != tuple(range(n_kept, x.ndim)) or not x.flags.c_contiguous:
        return None
    k = int(np.prod(x.shape[:n_kept], dtype=np.int64))
    m = int(np.prod(x.shape[n_kept:], dtype=np.int64))
    if k >= _SPLIT_OUTPUTS or m < 2 * _SPLIT_MIN_PIECE:
        return None
    pieces = min(-(-_SPLIT_OUTPUTS // k), m // _SPLIT_MIN_PIECE)
    length = m // pieces
    lines = x.reshape(k, m)
    head = lines[:, : pieces * length].reshape(k, pieces, length)
    return head, lines[:, pieces * length :]


def _moments_without_reduction(
    x: Any, axes: tuple[int, ...], out_shape: tuple[int, ...], keys: tuple[str, ...]
) -> dict:
    # No values (count 0 everywhere), or no axes (every cell is its own state).
    import cupy

    if x.size == 0:
        state = {"count": np.zeros(out_shape, dtype=np.int64)}
        return {k: state["count"] if k == "count" else np.full(out_shape, np.nan) for k in keys}
    v = x.astype(np.float64)
    valid = v == v
    state = {"count": valid.astype(np.int64), "mean": v, "min": v, "max": v}
    state["m2"] = cupy.where(valid, 0.0, np.nan)
    return {k: _cuda.to_host(state[k]).reshape(out_shape) for k in keys}


def nanquantile(x: Any, q: np.ndarray, axis: int) -> Any:
    """``numpy.nanquantile(x, q, axis, method="linear")`` for 1-D ``q``, in float64.

    Returns a device array of shape ``(q.size, *x.shape without axis)``.
    """
    xp = _cuda.array_module(x)
    shape = x.shape
    kept = shape[:axis] + shape[axis + 1 :]
    n_lines = int(np.prod(kept, dtype=np.int64))
    n = shape[axis]
    if n_lines == 0 or n == 0 or q.size == 0:
        return xp.full((q.size, *kept), np.nan)
    lines = xp.moveaxis(x, axis, -1).reshape(n_lines, n).astype(np.float64, copy=False)
    lines = xp.sort(lines, axis=-1)  # a sorted copy; NaN sorts last
    m = n - xp.isnan(lines).sum(axis=-1)  # values per line (int64)
    qs = xp.asarray(q, dtype=np.float64)[:, None]  # (Q, 1) against (1, lines)
    virtual = (m - 1)[None, :] * qs  # the rank of each quantile, as the CPU kernel
    last = (m - 1)[None, :]
    at_end = virtual >= last
    floor = xp.floor(virtual)
    prev = xp.where(at_end, last, floor.astype(np.int64))
    nxt = xp.where(at_end, last, prev + 1)
    # numpy's index -1 for "last": lerp(a, a, .) = a, and the branch on gamma is kept
    gamma = xp.where(at_end, virtual + 1.0, virtual - floor)
    base = (xp.arange(n_lines, dtype=np.int64) * n)[None, :]
    flat = lines.reshape(-1)
    a = xp.take(flat, base + xp.clip(prev, 0, n - 1))
    b = xp.take(flat, base + xp.clip(nxt, 0, n - 1))
    # numpy's _lerp, term for term (so that inf handling matches too)
    diff = b - a
    low_side = a + diff * gamma
    high_side = b - diff * (1.0 - gamma)
    out = xp.where(gamma >= 0.5, high_side, low_side)
    out = xp.where((m == 0)[None, :], np.nan, out)
    return out.reshape((q.size, *kept))

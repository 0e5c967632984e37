"""Global histograms by partial sums, and Otsu's threshold from a histogram.

A histogram over a chunked array is a reduction: each block contributes
:func:`histogram_partial` counts over bins fixed in advance, partials are added
(:func:`histogram_combine`, associative and exact in int64), and
:func:`otsu_threshold` reads the threshold off the total. Fixing the bins needs the
global value range, itself a reduction (:func:`finite_range`). NaN and infinite
values are ignored everywhere. Binning follows ``numpy.histogram(x, bins, range)``
computed in float64, so a histogram built from blocks is identical to the one of the
whole array.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from minjiang.kernels._dispatch import resolve_backend

__all__ = [
    "finite_range",
    "histogram_combine",
    "histogram_edges",
    "histogram_partial",
    "otsu_threshold",
]


def _outer_edges(lo: float, hi: float) -> tuple[float, float]:
    lo, hi = float(lo), float(hi)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"histogram range ({lo!r}, {hi!r}) must be finite")
    if lo > hi:
        raise ValueError(f"histogram range ({lo!r}, {hi!r}) has min > max; pass (min, max)")
    if lo == hi:  # numpy widens an empty range the same way
        lo, hi = lo - 0.5, hi + 0.5
    return lo, hi


def histogram_edges(bins: int, range: tuple[float, float]) -> np.ndarray:
    """Bin edges used by :func:`histogram_partial` (``bins + 1`` float64 values).

    Parameters
    ----------
    bins
        Number of equal-width bins (>= 1).
    range
        ``(min, max)`` of the binned values; values on ``max`` fall in the last bin.

    Returns
    -------
    numpy.ndarray
        ``numpy.linspace(min, max, bins + 1)``.
    """
    if int(bins) != bins or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    lo, hi = _outer_edges(*range)
    return np.linspace(lo, hi, int(bins) + 1, dtype=np.float64)


def finite_range(x: Any, *, backend: str | None = None) -> tuple[float, float, int]:
    """Minimum, maximum and count of the finite values of ``x``.

    Parameters
    ----------
    x
        Any real array (NaN and +-inf are skipped).
    backend
        ``"reference"`` or ``"cpu"``; ``None`` follows the array type.

    Returns
    -------
    tuple
        ``(min, max, count)``; ``(inf, -inf, 0)`` when no value is finite, so that
        partial results combine with ``min``/``max``/``+``.
    """
    chosen = resolve_backend(backend, x, kernel="finite_range", has_gpu=True)
    x = x if chosen == "gpu" else np.asarray(x)
    _check_real(x, "finite_range")
    if chosen == "reference":
        from minjiang.kernels.histogram import _reference

        return _reference.finite_range(x)
    if chosen == "gpu":
        from minjiang.kernels.histogram import _gpu

        return _gpu.finite_range(x)
    from minjiang.kernels.histogram import _cpu

    lo, hi, n = _cpu.finite_range(np.ravel(x))
    return float(lo), float(hi), int(n)


def histogram_partial(
    x: Any,
    bins: int,
    range: tuple[float, float],
    *,
    backend: str | None = None,
) -> np.ndarray:
    """Counts of the finite values of ``x`` in ``bins`` equal bins over ``range``.

    Identical to ``numpy.histogram(x[isfinite(x)].astype(float64), bins, range)[0]``:
    values outside ``range`` are not counted, the last bin is closed.

    Parameters
    ----------
    x
        Any real array, any shape (a block of a larger array).
    bins
        Number of bins.
    range
        ``(min, max)`` shared by every block of the array.
    backend
        ``"reference"`` or ``"cpu"``; ``None`` follows the array type.

    Returns
    -------
    numpy.ndarray
        int64 counts of length ``bins``.
    """
    chosen = resolve_backend(backend, x, kernel="histogram_partial", has_gpu=True)
    x = x if chosen == "gpu" else np.asarray(x)
    _check_real(x, "histogram_partial")
    edges = histogram_edges(bins, range)
    if chosen == "reference":
        from minjiang.kernels.histogram import _reference

        return _reference.histogram_partial(x, int(bins), float(edges[0]), float(edges[-1]))
    if chosen == "gpu":
        from minjiang.kernels.histogram import _gpu

        return _gpu.histogram_partial(x, edges)
    from minjiang.kernels.histogram import _cpu

    return _cpu.histogram_partial(np.ravel(x), edges)


def histogram_combine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Add two partial histograms over the same bins (associative, exact)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"cannot combine histograms with {a.shape[0]} and {b.shape[0]} bins")
    return a.astype(np.int64) + b.astype(np.int64)


def otsu_threshold(hist: Any, edges: Any) -> float:
    """Otsu's threshold from a histogram, as ``skimage.filters.threshold_otsu``.

    Bin centers are the midpoints of ``edges``; empty bins at both ends are trimmed
    and the between-class variance is evaluated with the same arithmetic as
    scikit-image (counts as float32), so ``threshold_otsu(hist=(hist, centers))``
    returns the same value.

    Parameters
    ----------
    hist
        Counts per bin (from :func:`histogram_partial`, combined).
    edges
        The ``len(hist) + 1`` bin edges (:func:`histogram_edges`).

    Returns
    -------
    float
        The threshold: values ``> threshold`` are the foreground class. A histogram
        with a single occupied bin returns that bin's center.
    """
    counts = np.asarray(hist)
    edges = np.asarray(edges, dtype=np.float64)
    if counts.ndim != 1 or edges.shape != (counts.size + 1,):
        raise ValueError(
            f"otsu_threshold needs 1-D counts and len(counts)+1 edges; got {counts.shape} "
            f"counts and {edges.shape} edges"
        )
    if counts.size == 0 or not np.any(counts > 0):
        raise ValueError("otsu_threshold: the histogram is empty (no finite value was counted)")
    centers = (edges[:-1] + edges[1:]) / 2
    if counts[0] == 0 or counts[-1] == 0:
        cond = counts > 0
        start = int(np.argmax(cond))
        end = cond.size - int(np.argmax(cond[::-1]))
        counts, centers = counts[start:end], centers[start:end]
    if counts.size == 1:
        return float(centers[0])
    counts = counts.astype(np.float32)
    weight1 = np.cumsum(counts)
    weight2 = np.cumsum(counts[::-1])[::-1]
    mean1 = np.cumsum(counts * centers) / weight1
    mean2 = (np.cumsum((counts * centers)[::-1]) / weight2[::-1])[::-1]
    variance12 = weight1[:-1] * weight2[1:] * (mean1[:-1] - mean2[1:]) ** 2
    return float(centers[int(np.argmax(variance12))])


def _check_real(x: Any, kernel: str) -> None:
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{kernel}: needs a real-valued array, got dtype {x.dtype.name!r}")

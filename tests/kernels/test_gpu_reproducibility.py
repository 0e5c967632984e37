"""What each backend guarantees on blocks large enough to spread over many GPU blocks.

The kernel test bodies use small arrays; these use arrays that make the GPU kernels
launch many thread blocks (and the moments kernel cut long lines into pieces), on every
backend, against NumPy or exactly rounded sums:

* integer results (counts, histogram bins) and order statistics (min, max) are exact
  and identical from run to run on every backend, atomics included;
* per-label sums and sums of squares on the GPU are added by atomics in an order that
  changes from run to run. Each stays within the bound of recursive summation in any
  order, ``|sum - exact| <= (n - 1) * 2**-53 * sum(|v|)`` for the ``n`` values of a
  label (checked here against ``math.fsum``; the CPU's ordered sums obey it too);
* moments (CuPy reduction trees, no atomics) and filters give the same bits when run
  twice on the same device.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from minjiang.kernels.gaussian import gaussian_filter
from minjiang.kernels.histogram import finite_range, histogram_partial
from minjiang.kernels.labelstats import label_stats_partial
from minjiang.kernels.reductions import moments_finalize, moments_partial

EPS = 2.0**-53


def _nan_stats(x: np.ndarray, axes: tuple[int, ...]) -> dict[str, np.ndarray]:
    x = x.astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return {
            "count": np.sum(~np.isnan(x), axis=axes),
            "mean": np.nanmean(x, axis=axes),
            "var": np.nanvar(x, axis=axes),
            "min": np.nanmin(x, axis=axes),
            "max": np.nanmax(x, axis=axes),
        }


@pytest.mark.parametrize(
    ("shape", "axes", "view"),
    [((3, 70_001), (1,), False), ((2, 300, 301), (1, 2), False), ((2, 300, 301), (0, 2), True)],
)
def test_moments_of_few_long_lines(call, close, rng, shape, axes, view):
    x = (rng.standard_normal(shape) * 3 + 10).astype(np.float32)
    x[rng.random(shape) < 0.1] = np.nan
    if view:
        x = x[:, ::-1]
    state = call(moments_partial, x, axes)
    expected = _nan_stats(x, axes)
    np.testing.assert_array_equal(state["count"], expected["count"])
    for stat in ("mean", "var", "min", "max"):
        close(moments_finalize(state, stat), expected[stat], np.float64)
    again = call(moments_partial, x, axes)
    for key, value in state.items():
        np.testing.assert_array_equal(again[key], value)  # same bits on a second run


def _exact_sums(values: np.ndarray, labels: np.ndarray, uniq: np.ndarray) -> tuple:
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], uniq, side="left")
    ends = np.searchsorted(labels[order], uniq, side="right")
    total, sumsq, abs_total, abs_sumsq, n = [], [], [], [], []
    for lo, hi in zip(bounds, ends, strict=True):
        v = values[order[lo:hi]]
        v = v[~np.isnan(v)]
        total.append(math.fsum(v))
        sumsq.append(math.fsum(v * v))
        abs_total.append(math.fsum(np.abs(v)))
        abs_sumsq.append(math.fsum(v * v))
        n.append(v.size)
    return tuple(np.asarray(a, dtype=np.float64) for a in (total, sumsq, abs_total, abs_sumsq, n))


@pytest.mark.parametrize("n_labels", [5, 3000])  # shared-memory and global atomics on the GPU
def test_label_sums_stay_within_the_summation_bound(call, rng, n_labels):
    size = 1 << 16
    values = rng.normal(100.0, 1.0, size)  # a large offset: cancellation shows
    values[rng.random(size) < 0.05] = np.nan
    labels = rng.integers(0, n_labels, size).astype(np.int32)
    state = call(label_stats_partial, values, labels, ignore=None)
    uniq = np.unique(labels)
    np.testing.assert_array_equal(state["label"], uniq)
    total, sumsq, abs_total, abs_sumsq, n = _exact_sums(values, labels, uniq)
    np.testing.assert_array_equal(state["count"], n.astype(np.int64))
    # sums of squares are rounded before they are added: one more eps per term
    sq_rounding = EPS * abs_sumsq
    assert np.all(np.abs(state["sum"] - total) <= np.maximum(n - 1, 0) * EPS * abs_total)
    assert np.all(np.abs(state["sumsq"] - sumsq) <= n * EPS * abs_sumsq + sq_rounding)
    again = call(label_stats_partial, values, labels, ignore=None)
    for column in ("label", "count", "min", "max"):  # exact whatever the order of atomics
        np.testing.assert_array_equal(again[column], state[column])
    grouped_min = np.array([np.nanmin(values[labels == u]) for u in uniq])
    np.testing.assert_array_equal(state["min"], grouped_min)


def test_histogram_and_range_are_exact_over_many_blocks(call, rng):
    x = rng.standard_normal(1 << 18).astype(np.float32) * 50
    x[rng.random(x.size) < 0.01] = np.nan
    x[:3] = [np.inf, -np.inf, np.nan]
    finite = x[np.isfinite(x)].astype(np.float64)
    lo, hi, n = call(finite_range, x)
    assert (lo, hi, n) == (float(finite.min()), float(finite.max()), finite.size)
    for bins in (64, 5000):  # shared-memory and global atomics on the GPU
        got = call(histogram_partial, x, bins, (lo, hi))
        np.testing.assert_array_equal(got, np.histogram(finite, bins, (lo, hi))[0])


def test_gaussian_gives_the_same_bits_twice(call, rng):
    x = rng.standard_normal((40, 50, 60)).astype(np.float32)
    first = call(gaussian_filter, x, (1.5, 0.0, 2.0), mode="nearest")
    np.testing.assert_array_equal(call(gaussian_filter, x, (1.5, 0.0, 2.0), mode="nearest"), first)

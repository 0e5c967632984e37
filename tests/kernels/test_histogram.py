from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from minjiang.kernels.histogram import (
    finite_range,
    histogram_combine,
    histogram_edges,
    histogram_partial,
    otsu_threshold,
)
from skimage.filters import threshold_otsu


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16, np.uint8])
def test_histogram_matches_numpy(call, rng, dtype):
    x = (rng.standard_normal((13, 17, 5)) * 40).astype(dtype)
    lo, hi, n = call(finite_range, x)
    assert (lo, hi, n) == (float(x.min()), float(x.max()), x.size)
    got = call(histogram_partial, x, 50, (lo, hi))
    np.testing.assert_array_equal(got, np.histogram(x.astype(np.float64), 50, (lo, hi))[0])


def test_values_on_edges_land_where_numpy_puts_them(call):
    edges = histogram_edges(7, (0.1, 0.8))
    x = np.concatenate([edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf)])
    np.testing.assert_array_equal(
        call(histogram_partial, x, 7, (0.1, 0.8)), np.histogram(x, 7, (0.1, 0.8))[0]
    )


def test_nan_and_inf_are_ignored(call):
    x = np.array([np.nan, 1.0, np.inf, -np.inf, 2.0, np.nan])
    assert call(finite_range, x) == (1.0, 2.0, 2)
    np.testing.assert_array_equal(call(histogram_partial, x, 2, (1.0, 2.0)), [1, 1])
    assert call(finite_range, np.full(3, np.nan)) == (np.inf, -np.inf, 0)


def test_blockwise_histogram_equals_the_whole(call, rng):
    x = rng.standard_normal((20, 21, 22))
    x[rng.random(x.shape) < 0.05] = np.nan
    lo, hi = float(np.nanmin(x)), float(np.nanmax(x))
    total = np.zeros(64, np.int64)
    for z in range(0, 20, 7):
        for y in range(0, 21, 8):
            total = histogram_combine(
                total, call(histogram_partial, x[z : z + 7, y : y + 8], 64, (lo, hi))
            )
    np.testing.assert_array_equal(total, np.histogram(x[np.isfinite(x)], 64, (lo, hi))[0])


@pytest.mark.parametrize("seed", range(5))
def test_otsu_matches_skimage_on_the_same_bins(seed):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(0, 1, 4000), rng.normal(4 + seed, 1.5, 2500)])
    edges = histogram_edges(256, (x.min(), x.max()))
    counts = histogram_partial(x, 256, (x.min(), x.max()))
    centers = (edges[:-1] + edges[1:]) / 2
    t = otsu_threshold(counts, edges)
    assert t == threshold_otsu(hist=(counts, centers))
    assert t == threshold_otsu(x, nbins=256)  # float64 image: skimage bins it the same way


def test_otsu_with_empty_end_bins_and_single_bin():
    edges = histogram_edges(6, (0, 6))
    counts = np.array([0, 5, 0, 0, 9, 0])
    centers = (edges[:-1] + edges[1:]) / 2
    assert otsu_threshold(counts, edges) == threshold_otsu(hist=(counts, centers))
    assert otsu_threshold(np.array([0, 0, 3, 0]), histogram_edges(4, (0, 4))) == 2.5
    with pytest.raises(ValueError, match="empty"):
        otsu_threshold(np.zeros(4), histogram_edges(4, (0, 4)))


def test_errors():
    with pytest.raises(ValueError, match="finite"):
        histogram_edges(4, (0, np.inf))
    with pytest.raises(ValueError, match="min > max"):
        histogram_edges(4, (2, 1))
    with pytest.raises(ValueError, match="positive integer"):
        histogram_edges(0, (0, 1))
    with pytest.raises(TypeError, match="real-valued"):
        histogram_partial(np.array(["a"]), 2, (0, 1))


@settings(max_examples=50, deadline=None)
@given(
    x=hnp.arrays(
        np.float32,
        hnp.array_shapes(max_dims=3, max_side=9),
        elements=st.floats(-1e3, 1e3, width=32) | st.just(np.nan),
    ),
    bins=st.integers(1, 40),
)
def test_cpu_matches_reference(x, bins):
    lo, hi, n = finite_range(x, backend="reference")
    assert finite_range(x, backend="cpu") == (lo, hi, n)
    if n:
        np.testing.assert_array_equal(
            histogram_partial(x, bins, (lo, hi), backend="cpu"),
            histogram_partial(x, bins, (lo, hi), backend="reference"),
        )

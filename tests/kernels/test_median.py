from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from minjiang.kernels.median import median_filter, median_halo, median_valid

MODES = ("reflect", "mirror", "nearest", "wrap", "constant")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("shape", "size"),
    [
        ((23,), 5),
        ((9, 11), (4, 3)),
        ((7, 8, 9), 3),
        ((6, 7, 8), (2, 5, 1)),
        ((5, 6, 7), (3, 1, 4)),
        # windows over the CPU kernel's rank-counting limit (64): Hoare's selection
        ((8, 9, 10), 5),
        ((6, 12, 12), (1, 9, 9)),
    ],
    ids=lambda v: str(v),
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16, np.uint8])
def test_median_filter_matches_scipy(call, rng, shape, size, mode, dtype):
    x = (rng.standard_normal(shape) * 20).astype(dtype)
    got = call(median_filter, x, size, mode, cval=3)
    assert got.dtype == x.dtype
    np.testing.assert_array_equal(got, ndi.median_filter(x, size=size, mode=mode, cval=3))


def test_median_valid_blocks_reassemble_the_whole(call, rng):
    x = rng.standard_normal((17, 13, 11)).astype(np.float32)
    size = (3, 5, 3)
    whole = ndi.median_filter(x, size=size, mode="nearest")
    (hz, _), (hy, _), (hx, _) = median_halo(size)
    padded = np.pad(x, median_halo(size), mode="edge")
    out = np.empty_like(x)
    for z0 in range(0, 17, 6):  # blocks that do not divide the array
        for y0 in range(0, 13, 5):
            for x0 in range(0, 11, 4):
                z1, y1, x1 = min(z0 + 6, 17), min(y0 + 5, 13), min(x0 + 4, 11)
                blk = padded[z0 : z1 + 2 * hz, y0 : y1 + 2 * hy, x0 : x1 + 2 * hx]
                out[z0:z1, y0:y1, x0:x1] = call(median_valid, blk, size)
    np.testing.assert_array_equal(out, whole)


def test_nan_cells_stay_nan_and_are_skipped_by_neighbours(call):
    x = np.arange(27, dtype=np.float64).reshape(3, 3, 3)
    x[1, 1, 0] = np.nan
    got = call(median_valid, np.pad(x, 1, mode="edge"), 3)
    assert np.isnan(got[1, 1, 0])
    assert np.isnan(got).sum() == 1
    window = np.pad(x, 1, mode="edge")[1:4, 1:4, 1:4].ravel()  # around (1, 1, 1)
    vals = np.sort(window[~np.isnan(window)])
    assert got[1, 1, 1] == vals[vals.size // 2]


def test_all_nan_window_gives_nan(call):
    x = np.full((3, 4), np.nan, dtype=np.float32)
    assert np.isnan(call(median_filter, x, 3)).all()


def test_non_contiguous_view(call, rng):
    x = rng.standard_normal((10, 12, 14))[::2, :, ::-1]
    np.testing.assert_array_equal(call(median_filter, x, 3), ndi.median_filter(x, 3))


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="window"):
        median_valid(np.zeros((2, 2)), 3)
    with pytest.raises(ValueError, match="1 to 3 dims"):
        median_valid(np.zeros((3, 3, 3, 3)), 1)
    with pytest.raises(TypeError, match="real-valued"):
        median_valid(np.zeros(3, dtype=complex), 1)
    with pytest.raises(ValueError, match="mode"):
        median_filter(np.zeros(3), 1, mode="bogus")


@settings(max_examples=40, deadline=None)
@given(
    x=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=7),
        elements=st.floats(-5, 5, allow_nan=False) | st.just(np.nan),
    ),
    size=st.integers(1, 4),
)
def test_cpu_matches_reference(x, size):
    ref = median_filter(x, size, "reflect", backend="reference")
    np.testing.assert_array_equal(median_filter(x, size, "reflect", backend="cpu"), ref)
    if not np.isnan(x).any():
        np.testing.assert_array_equal(ref, ndi.median_filter(x, size, mode="reflect"))

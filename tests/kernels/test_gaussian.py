from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import given, settings
from hypothesis import strategies as st
from minjiang.kernels.gaussian import (
    BOUNDARY_MODES,
    gaussian_filter,
    gaussian_radius,
    gaussian_valid,
    pad_boundary,
)

SHAPES = [(23,), (9, 11), (5, 6, 7)]
SIGMAS = {1: [1.3, (0.6,)], 2: [1.3, (2.2, 0.0)], 3: [0.9, (0.5, 0.0, 1.7)]}


def _scipy(x: np.ndarray, sigma, mode: str, cval: float = 0.0) -> np.ndarray:
    return ndi.gaussian_filter(x.astype(np.float64), sigma, mode=mode, cval=cval)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", BOUNDARY_MODES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{len(s)}d")
def test_gaussian_filter_matches_scipy(call, close, rng, shape, mode, dtype):
    x = rng.standard_normal(shape).astype(dtype)
    for sigma in SIGMAS[len(shape)]:
        got = call(gaussian_filter, x, sigma, mode=mode, cval=0.25)
        assert got.dtype == dtype
        close(got, _scipy(x, sigma, mode, cval=0.25), dtype)


@pytest.mark.parametrize("mode", BOUNDARY_MODES)
def test_radius_larger_than_the_array(call, close, mode):
    x = np.array([3.0, -1.0, 2.0])
    close(call(gaussian_filter, x, 2.5, mode=mode), _scipy(x, 2.5, mode), np.float64)


def test_truncate_and_integer_input(call, close, rng):
    x = rng.integers(-50, 50, size=(8, 9)).astype(np.int16)
    got = call(gaussian_filter, x, (1.0, 2.0), truncate=2.5, mode="constant", cval=0.5)
    assert got.dtype == np.float64
    expected = ndi.gaussian_filter(
        x.astype(np.float64), (1.0, 2.0), truncate=2.5, mode="constant", cval=0.5
    )
    close(got, expected, np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_and_inf_spread_as_in_scipy(call, close, dtype):
    x = np.zeros((7, 12), dtype=dtype)
    x[1, 2] = np.nan
    x[5, 9] = np.inf
    got = call(gaussian_filter, x, 1.0, mode="nearest")
    expected = _scipy(x, 1.0, "nearest")
    close(got, expected, dtype)
    assert np.isnan(got[0:4, 0:7]).all()  # radius 4 along each axis from (1, 2)
    assert np.isposinf(got[5, 9])


def test_non_contiguous_views(call, close, rng):
    base = rng.standard_normal((12, 14, 6))
    x = base[::2, ::-1, 1:5]
    close(
        call(gaussian_filter, x, (1.0, 0.7, 0.5), mode="mirror"),
        _scipy(x, (1.0, 0.7, 0.5), "mirror"),
        np.float64,
    )
    padded = pad_boundary(base, 3, "reflect")[:, ::-1, :]
    close(
        call(gaussian_valid, padded, 0.7),
        gaussian_valid(np.ascontiguousarray(padded), 0.7, backend="reference"),
        np.float64,
    )


@pytest.mark.parametrize("shape", [(0,), (0, 5), (4, 0, 3)])
def test_empty_arrays(call, shape):
    got = call(gaussian_filter, np.zeros(shape, np.float32), 1.0)
    assert got.shape == shape and got.dtype == np.float32


@pytest.mark.parametrize("shape", [(1,), (1, 1), (1, 5)])
def test_size_one_axes(call, close, shape):
    x = np.arange(np.prod(shape), dtype=np.float64).reshape(shape) + 1.0
    for mode in BOUNDARY_MODES:
        close(call(gaussian_filter, x, 1.5, mode=mode), _scipy(x, 1.5, mode), np.float64)


def test_zero_sigma_is_identity(call):
    x = np.arange(12.0).reshape(3, 4)
    got = call(gaussian_filter, x, 0.0)
    np.testing.assert_array_equal(got, x)
    assert not np.shares_memory(got, x)


def test_gaussian_valid_crops_the_halo(call, close, rng):
    interior = rng.standard_normal((6, 5))
    r = (gaussian_radius(1.2), gaussian_radius(0.5))
    padded = pad_boundary(interior, r, "reflect")
    got = call(gaussian_valid, padded, (1.2, 0.5))
    assert got.shape == interior.shape
    close(got, _scipy(interior, (1.2, 0.5), "reflect"), np.float64)


def test_gaussian_radius_is_scipys_rule():
    assert gaussian_radius(2.0) == 8
    assert gaussian_radius(1.5, truncate=3.0) == 5
    assert gaussian_radius(0.0) == 0
    for sigma in (0.3, 0.9, 1.7, 4.2):
        # scipy's kernel has 2 * radius + 1 taps: its impulse response has that support
        impulse = np.zeros(41)
        impulse[20] = 1.0
        support = np.count_nonzero(ndi.gaussian_filter1d(impulse, sigma, mode="constant"))
        assert support == 2 * gaussian_radius(sigma) + 1


@pytest.mark.parametrize("mode", BOUNDARY_MODES)
def test_pad_boundary_extends_as_scipy(mode):
    # correlate1d with a one-hot kernel reads scipy's extended line at a fixed offset
    x = np.array([4.0, -2.0, 7.0, 1.5])
    for width in (1, 3, 6, 9):
        padded = pad_boundary(x, width, mode, cval=-9.0)
        assert padded.shape == (x.size + 2 * width,)
        for offset in range(-width, width + 1):
            onehot = np.zeros(2 * width + 1)
            onehot[width + offset] = 1.0
            seen = ndi.correlate1d(x, onehot, mode=mode, cval=-9.0)
            np.testing.assert_array_equal(padded[width + offset : width + offset + x.size], seen)


def test_pad_boundary_widths():
    x = np.arange(6.0).reshape(2, 3)
    assert pad_boundary(x, [(1, 0), (0, 2)], "nearest").shape == (3, 5)
    assert pad_boundary(x, (2, 1), "constant").shape == (6, 5)
    with pytest.raises(ValueError, match="pad_width has 1 entries"):
        pad_boundary(x, [1], "reflect")
    with pytest.raises(ValueError, match="non-negative"):
        pad_boundary(x, -1, "reflect")
    with pytest.raises(ValueError, match="unknown mode 'symmetric'"):
        pad_boundary(x, 1, "symmetric")
    with pytest.raises(ValueError, match="axis 0 of length 0"):
        pad_boundary(np.zeros((0, 3)), 1, "reflect")
    assert pad_boundary(np.zeros((0, 3)), 1, "constant").shape == (2, 5)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sigma": -1.0}, ValueError, "sigma=-1.0 must be a finite number >= 0"),
        ({"sigma": float("nan")}, ValueError, "sigma=nan"),
        ({"sigma": (1.0, 2.0, 3.0)}, ValueError, "sigma has 3 values for an array with 2 axes"),
        ({"sigma": "2"}, TypeError, "sigma='2'"),
        ({"sigma": 1.0, "truncate": -2}, ValueError, "truncate=-2"),
        ({"sigma": 1.0, "mode": "edge"}, ValueError, "unknown mode 'edge'"),
        ({"sigma": 1.0, "backend": "fpga"}, ValueError, "unknown backend 'fpga'"),
    ],
)
def test_gaussian_filter_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        gaussian_filter(np.zeros((4, 4)), **kwargs)


def test_gaussian_valid_rejects_short_blocks_and_complex():
    with pytest.raises(ValueError, match="padded has 5 cells on axis 1, fewer than the 2 \\* 4"):
        gaussian_valid(np.zeros((20, 5)), 1.0)
    with pytest.raises(TypeError, match="complex128"):
        gaussian_valid(np.zeros((9, 9), dtype=complex), 1.0)


def _block_padded(x: np.ndarray, starts, stops, radii, mode: str) -> np.ndarray:
    """The padded block the runtime reads: real neighbours inside the array,
    ``pad_boundary`` beyond its edges (periodic neighbours for ``wrap``)."""
    if mode == "wrap":
        index = np.ix_(
            *(
                np.arange(s - r, e + r) % n
                for s, e, r, n in zip(starts, stops, radii, x.shape, strict=True)
            )
        )
        return x[index]
    lo = [max(0, s - r) for s, r in zip(starts, radii, strict=True)]
    hi = [min(n, e + r) for e, r, n in zip(stops, radii, x.shape, strict=True)]
    region = x[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
    widths = [
        (r - (s - a), r - (b - e))
        for s, e, r, a, b in zip(starts, stops, radii, lo, hi, strict=True)
    ]
    return pad_boundary(region, widths, mode, cval=0.5)


@st.composite
def _chunked_cases(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 11), min_size=ndim, max_size=ndim)))
    sigma = tuple(draw(st.sampled_from([0.0, 0.4, 0.8, 1.3, 2.1])) for _ in range(ndim))
    cuts = []
    for n in shape:
        inner = draw(st.sets(st.integers(1, n - 1), max_size=3)) if n > 1 else set()
        cuts.append([0, *sorted(inner), n])
    mode = draw(st.sampled_from(BOUNDARY_MODES))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    seed = draw(st.integers(0, 2**32 - 1))
    return shape, sigma, cuts, mode, dtype, seed


@settings(max_examples=40, deadline=None)
@given(case=_chunked_cases())
def test_blocks_reassemble_to_the_whole_array(call, case):
    shape, sigma, cuts, mode, dtype, seed = case
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    whole = call(gaussian_filter, x, sigma, mode=mode, cval=0.5)
    radii = [gaussian_radius(s) if s > 0 else 0 for s in sigma]
    out = np.full(shape, np.nan, dtype=whole.dtype)
    for index in np.ndindex(*(len(c) - 1 for c in cuts)):
        starts = [c[i] for c, i in zip(cuts, index, strict=True)]
        stops = [c[i + 1] for c, i in zip(cuts, index, strict=True)]
        padded = _block_padded(x, starts, stops, radii, mode)
        block = call(gaussian_valid, padded, sigma)
        out[tuple(slice(s, e) for s, e in zip(starts, stops, strict=True))] = block
    np.testing.assert_array_equal(out, whole)

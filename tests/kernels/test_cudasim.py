"""The ``numba.cuda`` kernels of the GPU backend, proven on machines without a GPU.

Two checks, neither needing a device:

* Under numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) the ``_gpu`` modules run
  their own kernels, launched by their own code, on NumPy arrays. numba reads the
  variable when it is first imported, so the checks run in one subprocess started with
  it set (this file, run as a script); each check compares with the NumPy reference
  and is reported here as its own test. Sizes are small: the simulator runs every GPU
  thread as a Python thread.
* Where CUDA's NVVM compiler is installed (it is part of the CUDA toolkit), every
  kernel is compiled to PTX for an H100/H200 (compute capability 9.0), which proves
  that it types and lowers for the real CUDA target and not just in the simulator.

Tolerances: the simulator evaluates in Python with NumPy scalars, so results equal the
reference up to its own summation order; label sums through atomics get the float64
tolerance of the kernel tests (see ``docs/gpu.md``), everything else is exact or
within that tolerance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from tests._cudasim import Checks, assert_passed, close, compile_for_hopper, simulate

CHECKS = Checks()
_check = CHECKS.check
_close = close
_TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-10}


# ------------------------------------------------------------------ the checks
# They run in the simulator subprocess; each raises AssertionError on a mismatch.


@_check
def gaussian_passes_match_reference() -> None:
    from minjiang.kernels.gaussian import _gpu, _reference, gaussian_radius

    rng = np.random.default_rng(1)
    for dtype, shape, sigmas in (
        (np.float32, (7, 8, 9), (0.9, 0.0, 0.6)),
        (np.float64, (11, 12), (1.2, 0.5)),
        (np.float64, (13,), (1.5,)),
    ):
        radii = [gaussian_radius(s) for s in sigmas]
        x = rng.standard_normal([n + 2 * r for n, r in zip(shape, radii, strict=True)])
        x = x.astype(dtype)
        x.reshape(-1)[3] = np.nan
        x.reshape(-1)[-2] = np.inf
        weights = [
            _reference.gaussian_weights(s, r) if s > 0 else None
            for s, r in zip(sigmas, radii, strict=True)
        ]
        got = _gpu.gaussian_valid(x, weights, np.dtype(dtype))
        expected = _reference.gaussian_valid(x, weights, np.dtype(dtype))
        assert got.dtype == dtype
        _close(got, expected, _TOL[np.dtype(dtype)])
    # no axis filtered: a new array, same values
    x = rng.standard_normal((3, 4))
    got = _gpu.gaussian_valid(x, [None, None], np.dtype(np.float64))
    assert not np.shares_memory(got, x)
    np.testing.assert_array_equal(got, x)


@_check
def gaussian_blocks_reassemble_exactly() -> None:
    from minjiang.kernels.gaussian import _gpu, _reference, gaussian_radius, pad_boundary

    x = np.random.default_rng(2).standard_normal((9, 10))
    r = gaussian_radius(1.1)
    w = _reference.gaussian_weights(1.1, r)
    padded = pad_boundary(x, r, "reflect")
    whole = _gpu.gaussian_valid(padded, [w, w], np.dtype(np.float64))
    parts = np.empty_like(whole)
    for lo, hi in ((0, 4), (4, 9)):
        parts[lo:hi] = _gpu.gaussian_valid(padded[lo : hi + 2 * r], [w, w], np.dtype(np.float64))
    np.testing.assert_array_equal(parts, whole)


@_check
def groupby_matches_reference() -> None:
    from minjiang.kernels.groupby import _gpu, _reference

    rng = np.random.default_rng(3)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((10, 3, 4)).astype(dtype)
        x[rng.random(x.shape) < 0.3] = np.nan
        x[:, 0, 0] = np.nan  # an all-NaN column
        groups = rng.integers(0, 4, 10)  # group 4 stays empty
        got = _gpu.group_mean(x, groups, 5)
        expected = _reference.group_mean(x, groups, 5)
        assert got.dtype == np.float64 and got.shape == (5, 3, 4)
        _close(got, expected, 1e-12)
        table = expected.copy()
        table[np.isnan(table)] = 0.5
        got = _gpu.subtract_group(x, groups, table)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, _reference.subtract_group(x, groups, table))


@_check
def median_matches_reference() -> None:
    from minjiang.kernels.median import _gpu, _reference

    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 7, 8))
    x[1, 2, 3] = np.nan
    x[3, :, :2] = np.nan
    for size in ((3, 2, 3), (1, 1, 4)):
        np.testing.assert_array_equal(_gpu.median_valid(x, size), _reference.median_valid(x, size))
    ints = rng.integers(0, 50, (9, 11)).astype(np.uint8)
    np.testing.assert_array_equal(
        _gpu.median_valid(ints, (4, 3)), _reference.median_valid(ints, (4, 3))
    )
    line = rng.standard_normal(17).astype(np.float32)
    np.testing.assert_array_equal(
        _gpu.median_valid(line, (5,)), _reference.median_valid(line, (5,))
    )


@_check
def histogram_matches_numpy() -> None:
    from minjiang.kernels.histogram import _gpu, _reference, histogram_edges

    rng = np.random.default_rng(5)
    x = rng.standard_normal((13, 11)) * 40
    x[0, :3] = [np.nan, np.inf, -np.inf]
    assert _gpu.finite_range(x) == _reference.finite_range(x)
    assert _gpu.finite_range(np.full(4, np.nan)) == (np.inf, -np.inf, 0)
    ints = rng.integers(-300, 300, 200).astype(np.int16)
    assert _gpu.finite_range(ints) == _reference.finite_range(ints)
    lo, hi, _ = _reference.finite_range(x)
    for bins in (7, _gpu.SHARED_BINS + 3):  # shared-memory and global-atomics paths
        edges = histogram_edges(bins, (lo, hi))
        got = _gpu.histogram_partial(x, edges)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, _reference.histogram_partial(x, bins, lo, hi))
    edges = histogram_edges(7, (0.1, 0.8))  # values on and next to every edge
    on_edges = np.concatenate([edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf)])
    np.testing.assert_array_equal(
        _gpu.histogram_partial(on_edges, edges), np.histogram(on_edges, 7, (0.1, 0.8))[0]
    )


def _assert_state(got: dict, expected: dict) -> None:
    assert list(got) == list(expected), (list(got), list(expected))
    for column in ("label", "count"):
        assert got[column].dtype == np.int64
        np.testing.assert_array_equal(got[column], expected[column])
    for column in ("min", "max"):
        np.testing.assert_array_equal(got[column], expected[column])
    for column in ("sum", "sumsq"):
        _close(got[column], expected[column], 1e-10)


@_check
def label_stats_partial_matches_reference() -> None:
    from minjiang.kernels.labelstats import _gpu, _reference

    rng = np.random.default_rng(6)
    values = rng.standard_normal(300) * 10 + 5
    values[rng.random(300) < 0.2] = np.nan
    few = rng.integers(0, 6, 300)  # dense, shared-memory accumulators
    few[few == 3] = 4
    values_nan = values.copy()
    values_nan[few == 5] = np.nan  # a label with no valid value keeps its row
    wide = rng.integers(-5, _gpu.SHARED_BINS * 3, 300)  # dense, global atomics
    sparse = rng.choice(np.array([-(2**40), 7, 2**41, 2**62 + 3, 0]), 300)  # sorted ids
    cases = [
        (values_nan, few, 0),
        (values_nan, few.astype(np.uint16), None),
        (values.astype(np.float32), wide.astype(np.int32), -5),
        (values, sparse, 0),
        (values, sparse, None),
        (values, few.astype(np.uint64), 2),
    ]
    for v, lab, ignore in cases:
        expected = _reference.label_stats_partial(v, lab, ignore)
        _assert_state(_gpu.label_stats_partial(v, lab, ignore), expected)
    empty = _gpu.label_stats_partial(values, np.zeros(300, np.int64), 0)
    assert all(c.size == 0 for c in empty.values())


@_check
def label_stats_combine_matches_reference() -> None:
    from minjiang.kernels.labelstats import _gpu, _reference

    rng = np.random.default_rng(7)
    states = []
    for _ in range(4):
        v = rng.standard_normal(40)
        v[rng.random(40) < 0.3] = np.nan
        states.append(_reference.label_stats_partial(v, rng.integers(0, 9, 40), 0))
    states.append(_reference.label_stats_partial(np.full(3, np.nan), np.array([9, 9, 2]), 0))
    got = _gpu.label_stats_combine(states)
    expected = _reference.label_stats_combine(states)
    for column in expected:  # rows are added in state order, as the reference does
        np.testing.assert_array_equal(got[column], expected[column])
    try:
        _gpu.label_stats_combine([{k: v[::-1] for k, v in states[0].items()}])
    except ValueError as err:
        assert "not sorted and unique" in str(err)
    else:
        raise AssertionError("unsorted labels were accepted")


@_check
def voi_window_matches_reference() -> None:
    from minjiang.plugins.medicine.window import FUNCTIONS, _gpu, _reference

    rng = np.random.default_rng(9)
    x = (rng.standard_normal((5, 6, 7)) * 400).astype(np.int16).astype(np.float32)
    x.reshape(-1)[4] = np.nan
    for name, code in FUNCTIONS.items():
        for dtype in (np.float32, np.float64):
            args = (1.5, -1024.0, 40.0, 400.0, code, 0.0, 255.0, np.dtype(dtype))
            got = _gpu.voi_window(x, *args)
            expected = _reference.voi_window(x, *args)
            assert got.dtype == dtype, name
            _close(got, expected, _TOL[np.dtype(dtype)])


@_check
def nanquantile_logic_matches_numpy() -> None:
    # Not a numba kernel: the GPU path is array code shared by NumPy and CuPy, checked
    # here on NumPy arrays.
    import warnings

    from minjiang.kernels.reductions import _gpu

    rng = np.random.default_rng(8)
    x = rng.standard_normal((6, 9, 5))
    x[rng.random(x.shape) < 0.3] = np.nan
    x[:, 2, 3] = np.nan
    q = np.array([0.7, 0.0, 0.1, 0.5, 1.0, 0.7])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for axis in (0, 1, 2):
            _close(_gpu.nanquantile(x, q, axis), np.nanquantile(x, q, axis=axis), 1e-12)
        ties = np.array(
            [[1.0, 1.0, 1.0, 2.0, 2.0, np.nan], [np.inf, 1.0, np.inf, 2.0, np.nan, 0.0]]
        )
        q = np.array([0.0, 0.2, 0.5, 0.75, 1.0])
        np.testing.assert_array_equal(_gpu.nanquantile(ties, q, 1), np.nanquantile(ties, q, axis=1))


# ------------------------------------------------------------------ the tests


@pytest.fixture(scope="module")
def simulated() -> dict[str, str | None]:
    """Results of every check, from one subprocess under the CUDA simulator."""
    return simulate(__file__)


@pytest.mark.parametrize("name", list(CHECKS.checks))
def test_under_cuda_simulator(simulated, name):
    assert_passed(simulated, name)


def _ptx_cases() -> dict[str, tuple[Callable[[], Any], tuple[Any, ...]]]:
    from minjiang.kernels.gaussian import _gpu as gaussian
    from minjiang.kernels.groupby import _gpu as groupby
    from minjiang.kernels.histogram import _gpu as histogram
    from minjiang.kernels.labelstats import _gpu as labelstats
    from minjiang.kernels.median import _gpu as median
    from minjiang.plugins.medicine.window import _gpu as window
    from numba import types as t

    def a(dtype: Any, ndim: int = 1) -> Any:
        return t.Array(dtype, ndim, "A")

    f64, i64 = t.float64, t.int64
    acc = (
        a(f64),
        a(t.int32),
        i64,
        t.boolean,
        i64,
        a(t.int32),
        a(i64),
        a(f64),
        a(f64),
        a(f64),
        a(f64),
    )
    return {
        "gaussian": (gaussian._build, (a(t.float32, 3), a(f64), a(f64, 3))),
        "group_mean": (groupby._build_mean, (a(t.float32, 2), a(i64), a(i64), a(f64, 2))),
        "subtract_group": (groupby._build_subtract, (a(f64, 2), a(i64), a(f64, 2), a(f64, 2))),
        "median_f32": (
            lambda: median._build(27, np.dtype(np.float32)),
            (a(t.float32, 3), i64, i64, i64, a(t.float32, 3)),
        ),
        "median_u8": (
            lambda: median._build(12, np.dtype(np.uint8)),
            (a(t.uint8, 3), i64, i64, i64, a(t.uint8, 3)),
        ),
        "finite_range": (histogram._build_range, (a(t.int16), a(f64), a(f64), a(i64))),
        "histogram_shared": (
            lambda: histogram._build_histogram(True),
            (a(t.float32), a(f64), a(i64)),
        ),
        "histogram_global": (lambda: histogram._build_histogram(False), (a(f64), a(f64), a(i64))),
        "label_range": (labelstats._build_range, (a(t.uint16), i64, t.boolean, a(i64))),
        "label_accumulate_shared": (lambda: labelstats._build_accumulate(True), acc),
        "label_accumulate_global": (lambda: labelstats._build_accumulate(False), acc),
        "label_merge": (
            labelstats._build_merge,
            (a(i64), a(i64), a(i64), *(a(f64),) * 4, a(i64), *(a(f64),) * 4),
        ),
        "voi_window": (window._build, (a(t.int16), a(t.float32), *(f64,) * 4, i64, f64, f64)),
    }


@pytest.mark.parametrize("name", list(_ptx_cases()))
def test_kernel_compiles_for_hopper(monkeypatch, name):
    compile_for_hopper(monkeypatch, *_ptx_cases()[name])


if __name__ == "__main__":
    CHECKS.main()

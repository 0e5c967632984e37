from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from minjiang.kernels.reductions import (
    MOMENT_KEYS,
    MOMENT_STATS,
    moment_keys,
    moments_combine,
    moments_finalize,
    moments_partial,
    nanquantile,
)


def _numpy_stats(x: np.ndarray, axes: tuple[int, ...]) -> dict[str, np.ndarray]:
    """NumPy's own NaN-skipping statistics of the float64 data (all-NaN -> NaN)."""
    x = x.astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        all_nan = np.isnan(x).all(axis=axes)
        return {
            "count": np.sum(~np.isnan(x), axis=axes),
            "mean": np.nanmean(x, axis=axes),
            "var": np.nanvar(x, axis=axes),
            "std": np.nanstd(x, axis=axes),
            "std1": np.nanstd(x, axis=axes, ddof=1),
            "min": np.nanmin(x, axis=axes) if x.size else np.full(all_nan.shape, np.nan),
            "max": np.nanmax(x, axis=axes) if x.size else np.full(all_nan.shape, np.nan),
            "sum": np.where(all_nan, np.nan, np.nansum(x, axis=axes)),
        }


def _check_finalized(state, x, axes, close, stats=MOMENT_STATS) -> None:
    expected = _numpy_stats(x, axes)
    if "count" in stats:
        np.testing.assert_array_equal(moments_finalize(state, "count"), expected["count"])
    for stat in ("mean", "var", "std", "min", "max", "sum"):
        if stat in stats:
            got = moments_finalize(state, stat)
            assert got.dtype == np.float64
            close(got, expected[stat], np.float64)
    if "std" in stats:
        close(moments_finalize(state, "std", ddof=1), expected["std1"], np.float64)


def _with_nans(rng, shape, dtype, fraction=0.25) -> np.ndarray:
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    x[rng.random(shape) < fraction] = np.nan
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axes", [(0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2), ()])
def test_moments_match_numpy(call, close, rng, axes, dtype):
    x = _with_nans(rng, (5, 4, 6), dtype)
    x[:, 1, 2] = np.nan  # an all-NaN line for every reduction over axis 0
    x[3] = np.nan
    state = call(moments_partial, x, axes)
    assert set(state) == set(MOMENT_KEYS)
    assert state["count"].dtype == np.int64
    assert all(state[k].dtype == np.float64 for k in ("mean", "m2", "min", "max"))
    assert state["mean"].shape == tuple(n for d, n in enumerate(x.shape) if d not in axes)
    _check_finalized(state, x, axes, close)


def test_all_nan_gives_nan_and_count_zero(call):
    state = call(moments_partial, np.full((3, 2), np.nan, np.float32), (0,))
    np.testing.assert_array_equal(state["count"], [0, 0])
    for stat in ("mean", "std", "var", "min", "max", "sum"):
        assert np.isnan(moments_finalize(state, stat)).all()


def test_infinities_are_data(call):
    x = np.array([[1.0, np.inf, 2.0], [-np.inf, 0.0, np.nan]])
    state = call(moments_partial, x, 1)
    np.testing.assert_array_equal(moments_finalize(state, "count"), [3, 2])
    np.testing.assert_array_equal(moments_finalize(state, "max"), [np.inf, 0.0])
    np.testing.assert_array_equal(moments_finalize(state, "min"), [1.0, -np.inf])
    np.testing.assert_array_equal(moments_finalize(state, "mean"), [np.inf, -np.inf])


@pytest.mark.parametrize(
    ("shape", "axes", "out_shape"),
    [
        ((0, 3), (0,), (3,)),
        ((3, 0), (0,), (0,)),
        ((1,), (0,), ()),
        ((), (), ()),
        ((1, 1), (1,), (1,)),
    ],
)
def test_empty_and_size_one(call, shape, axes, out_shape):
    x = np.full(shape, 2.5)
    state = call(moments_partial, x, axes)
    assert all(v.shape == out_shape for v in state.values())
    if x.size:
        np.testing.assert_array_equal(moments_finalize(state, "mean"), np.full(out_shape, 2.5))
        np.testing.assert_array_equal(moments_finalize(state, "var"), np.zeros(out_shape))
        assert np.isnan(moments_finalize(state, "var", ddof=1)).all()
    else:
        np.testing.assert_array_equal(state["count"], np.zeros(out_shape, np.int64))
        assert np.isnan(state["mean"]).all()


def test_non_contiguous_and_integer_input(call, close, rng):
    base = _with_nans(rng, (8, 6, 10), np.float64)
    view = base[::2, :, ::-3]
    for axes in [(0,), (2,), (0, 2)]:
        _check_finalized(call(moments_partial, view, axes), view, axes, close)
    ints = rng.integers(-5, 5, (4, 7)).astype(np.int16)
    _check_finalized(call(moments_partial, ints, -1), ints, (1,), close)


def test_combine_is_exact_with_empty_sides():
    a = moments_partial(np.array([[1.0, np.nan], [3.0, np.nan]]), (0,))
    empty = moments_partial(np.full((2, 2), np.nan), (0,))
    for merged in (moments_combine(a, empty), moments_combine(empty, a)):
        for key in MOMENT_KEYS:
            np.testing.assert_array_equal(merged[key], a[key])


@st.composite
def _split_cases(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 6), min_size=ndim, max_size=ndim)))
    axes = tuple(sorted(draw(st.sets(st.integers(0, ndim - 1), min_size=1))))
    split_axis = draw(st.sampled_from(axes))
    n = shape[split_axis]
    cuts = sorted(draw(st.sets(st.integers(0, n), max_size=4)) | {0, n})
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    nan_fraction = draw(st.sampled_from([0.0, 0.3, 0.8, 1.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    stats = draw(st.sampled_from([MOMENT_STATS, ("mean",), ("min",), ("max", "count"), ("std",)]))
    # the merge tree: repeatedly combine the states at two drawn positions
    picks = draw(
        st.lists(
            st.tuples(st.integers(0, 99), st.integers(0, 99)),
            min_size=len(cuts),
            max_size=len(cuts),
        )
    )
    return shape, axes, split_axis, cuts, dtype, nan_fraction, seed, picks, stats


@settings(max_examples=50, deadline=None)
@given(case=_split_cases())
def test_partials_over_any_split_combine_to_the_whole(call, close, case):
    shape, axes, split_axis, cuts, dtype, nan_fraction, seed, picks, stats = case
    rng = np.random.default_rng(seed)
    x = _with_nans(rng, shape, dtype, nan_fraction)
    pieces = [np.take(x, range(lo, hi), axis=split_axis) for lo, hi in itertools.pairwise(cuts)]
    # includes empty pieces
    states = [call(moments_partial, p, axes, stats=stats) for p in pieces]
    for i, j in picks:
        if len(states) == 1:
            break
        a = states.pop(i % len(states))
        b = states.pop(j % len(states))
        states.append(moments_combine(a, b))
    while len(states) > 1:
        states.append(moments_combine(states.pop(0), states.pop(0)))
    assert tuple(states[0]) == moment_keys(stats)
    _check_finalized(states[0], x, axes, close, stats)


@pytest.mark.parametrize("axes", [(0,), (2,), (0, 1), (1, 2)])
@pytest.mark.parametrize("stat", MOMENT_STATS)
def test_a_statistics_state_is_the_full_states_arrays_bit_for_bit(call, rng, axes, stat):
    x = _with_nans(rng, (7, 5, 9), np.float32)
    x[:, 2] = np.nan
    full = call(moments_partial, x, axes)
    small = call(moments_partial, x, axes, stats=[stat])
    assert tuple(small) == moment_keys(stat)
    assert set(small) < set(MOMENT_KEYS)
    for key, value in small.items():
        assert value.dtype == full[key].dtype
        np.testing.assert_array_equal(value, full[key])
    np.testing.assert_array_equal(moments_finalize(small, stat), moments_finalize(full, stat))
    merged = moments_combine(small, call(moments_partial, x[::-1], axes, stats=stat))
    both = moments_combine(full, call(moments_partial, x[::-1], axes))
    for key, value in merged.items():
        np.testing.assert_array_equal(value, both[key])


@pytest.mark.parametrize("stats", [None, "mean", "var", "count", ("min", "max")])
@pytest.mark.parametrize("shape", [(6, 5, 4), (6, 0), (3,)])
def test_the_fused_combine_is_the_reference_bit_for_bit(rng, stats, shape):
    """The numba merge and NumPy's array-by-array one agree exactly, empty sides too."""
    x = _with_nans(rng, shape, np.float64, 0.4)
    y = _with_nans(rng, shape, np.float64, 0.4) * 1e3
    x[0] = np.nan  # some cells empty on one side only, some on both
    y[(0, ..., slice(0, 1)) if y.ndim > 1 else 1] = np.nan
    a = moments_partial(x, (0,), stats=stats)
    b = moments_partial(y, (0,), stats=stats)
    for left, right in ((a, b), (b, a), (a, a)):
        fused = moments_combine(left, right)
        reference = moments_combine(left, right, backend="reference")
        assert tuple(fused) == tuple(reference) == moment_keys(stats)
        for key, value in fused.items():
            assert value.dtype == reference[key].dtype and value.shape == reference[key].shape
            np.testing.assert_array_equal(value, reference[key])
    with pytest.raises(ValueError, match="backend='gpu'"):
        moments_combine(a, b, backend="gpu")


def test_moment_keys_are_the_union_of_what_each_statistic_needs():
    assert moment_keys(None) == MOMENT_KEYS
    assert moment_keys("mean") == ("count", "mean")
    assert moment_keys(["min", "count"]) == ("count", "min")
    assert moment_keys(("max", "std")) == ("count", "mean", "m2", "max")
    assert moment_keys(MOMENT_STATS) == MOMENT_KEYS
    for bad in ([], ["median"], "p90"):
        with pytest.raises(ValueError, match="must name at least one of"):
            moment_keys(bad)


def test_finalize_and_combine_reject_bad_input():
    state = moments_partial(np.ones((2, 3)), (0,))
    with pytest.raises(ValueError, match="unknown stat 'median'"):
        moments_finalize(state, "median")
    with pytest.raises(ValueError, match="ddof=-1"):
        moments_finalize(state, "var", ddof=-1)
    without_m2 = {k: v for k, v in state.items() if k != "m2"}
    moments_finalize(without_m2, "mean")  # a mean needs no m2 ...
    with pytest.raises(ValueError, match="lacks \\['m2'\\], which 'var' needs"):
        moments_finalize(without_m2, "var")  # ... a variance does
    with pytest.raises(ValueError, match="'count'\\] missing"):
        moments_finalize({k: v for k, v in state.items() if k != "count"}, "max")
    with pytest.raises(ValueError, match="not a moments state"):
        moments_combine({"total": state["mean"]}, {"total": state["mean"]})
    with pytest.raises(ValueError, match="hold different arrays"):
        moments_combine(state, without_m2)
    with pytest.raises(ValueError, match="unknown: \\['median'\\]"):
        moments_partial(np.ones((2, 3)), (0,), stats=["mean", "median"])
    with pytest.raises(ValueError, match="states have shapes \\(3,\\) and \\(2,\\)"):
        moments_combine(state, moments_partial(np.ones((2, 2)), (0,)))
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        moments_partial(np.ones((2, 3)), (0, 2))
    with pytest.raises(ValueError, match="same axis twice"):
        moments_partial(np.ones((2, 3)), (0, -2))
    with pytest.raises(TypeError, match="complex128"):
        moments_partial(np.ones(3, complex), 0)


# ---------------------------------------------------------------- quantiles


def _numpy_quantile(x, q, axis):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanquantile(x.astype(np.float64), q, axis=axis, method="linear")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "q", [0.5, [0.0, 0.1, 0.5, 0.9, 1.0], list(np.linspace(0, 1, 11)), [0.7, 0.2, 0.7]]
)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_nanquantile_matches_numpy(call, close, rng, q, axis, dtype):
    x = _with_nans(rng, (6, 9, 5), dtype, 0.3)
    x[:, 2, 3] = np.nan  # all-NaN line along axis 0
    x[4, :, 1] = np.nan  # ... along axis 1
    x[1, 1, :] = np.nan  # ... along axis 2
    got = call(nanquantile, x, q, axis)
    assert got.dtype == dtype
    close(got, _numpy_quantile(x, q, axis), dtype)


def test_nanquantile_ties_and_infinities(call):
    x = np.array([[1.0, 1.0, 1.0, 2.0, 2.0, np.nan], [np.inf, 1.0, np.inf, 2.0, np.nan, 0.0]])
    q = [0.0, 0.2, 0.5, 0.75, 1.0]
    # interpolation touching inf follows NumPy's formula term for term
    np.testing.assert_array_equal(call(nanquantile, x, q, 1), _numpy_quantile(x, q, 1))


@pytest.mark.parametrize(
    ("shape", "axis"), [((0,), 0), ((0, 3), 0), ((3, 0), 0), ((1,), 0), ((1, 4), 1)]
)
def test_nanquantile_empty_and_size_one(call, shape, axis):
    x = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    got = call(nanquantile, x, [0.25, 0.5], axis)
    if x.size:
        expected = _numpy_quantile(x, [0.25, 0.5], axis)
    else:  # numpy drops the quantile axis for empty input; the kernel keeps its shape
        expected = np.full((2, *np.delete(shape, axis)), np.nan)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def test_nanquantile_scalar_q_has_no_leading_axis(call):
    x = np.arange(10.0).reshape(2, 5)
    got = call(nanquantile, x, 0.5, 1)
    assert got.shape == (2,)
    assert call(nanquantile, x[0], 0.5, 0).shape == ()


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(1, 40),
    lines=st.integers(1, 4),
    q=st.lists(st.floats(0, 1), min_size=1, max_size=12),
    distinct=st.integers(1, 6),
    nan_fraction=st.sampled_from([0.0, 0.3, 1.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_nanquantile_selection_matches_numpy(call, n, lines, q, distinct, nan_fraction, seed):
    # few distinct values: many ties, the hard case for partition-based selection
    rng = np.random.default_rng(seed)
    x = rng.integers(0, distinct, (lines, n)).astype(np.float64)
    x[rng.random(x.shape) < nan_fraction] = np.nan
    np.testing.assert_allclose(
        call(nanquantile, x, q, 1), _numpy_quantile(x, q, 1), rtol=1e-14, equal_nan=True
    )


@pytest.mark.parametrize(
    ("q", "axis", "error", "match"),
    [
        (90, 0, ValueError, "q=90 must be .* in \\[0, 1\\]"),
        ([0.5, -0.1], 0, ValueError, "in \\[0, 1\\]"),
        (float("nan"), 0, ValueError, "q=nan"),
        ("median", 0, TypeError, "q='median'"),
        ([[0.5]], 0, ValueError, "1-D sequence"),
        (0.5, 2, ValueError, "axis 2 is out of range"),
        (0.5, (0,), TypeError, "axis=\\(0,\\) must be one int"),
    ],
)
def test_nanquantile_rejects_bad_arguments(q, axis, error, match):
    with pytest.raises(error, match=match):
        nanquantile(np.ones((3, 2)), q, axis)


def test_many_columns_and_lines_span_several_work_items(call, close, rng):
    # more columns than one strip of the (M, K) moments layout, more quantile lines
    # than one sorting thread takes: exercises the boundaries between parallel work items
    from minjiang.kernels.reductions import _cpu

    x = _with_nans(rng, (3, 2 * _cpu._COL_STRIP + 5), np.float64)
    _check_finalized(call(moments_partial, x, 0), x, (0,), close)
    # more lines than one sorting thread takes: the rows are split over threads
    lines = _with_nans(rng, (4, 2 * _cpu._MIN_ROWS_PER_THREAD + 3), np.float32)
    close(
        call(nanquantile, lines, [0.3, 0.5], 0), _numpy_quantile(lines, [0.3, 0.5], 0), np.float32
    )
    # lines along a middle axis, gathered into rows
    cube = _with_nans(rng, (3, 9, 2 * _cpu._MIN_ROWS_PER_THREAD + 7), np.float64)
    close(call(nanquantile, cube, [0.9], 1), _numpy_quantile(cube, [0.9], 1), np.float64)

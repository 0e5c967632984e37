"""group_reduce: the numba kernel against the NumPy reference and against xarray's
groupby reductions."""

from __future__ import annotations

import numpy as np
import pytest
from minjiang.kernels.groupby import GROUP_REDUCTIONS, group_reduce


@pytest.mark.parametrize("how", GROUP_REDUCTIONS)
@pytest.mark.parametrize("min_valid", [1, 3])
def test_cpu_matches_reference(how, min_valid):
    rng = np.random.default_rng(11)
    x = rng.normal(size=(40, 7, 33)).astype(np.float32)
    x[rng.random(x.shape) < 0.3] = np.nan
    x[:, 0, 0] = np.nan  # a cell with no value at all
    groups = np.sort(rng.integers(0, 6, size=40))
    groups[groups == 4] = 3  # an empty group
    a = group_reduce(x, groups, 6, how, min_valid=min_valid, backend="reference")
    b = group_reduce(x, groups, 6, how, min_valid=min_valid, backend="cpu")
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a, b, rtol=1e-12, equal_nan=True)
    assert np.isnan(a[4]).all() or how == "count"


@pytest.mark.parametrize("how", ["mean", "sum", "min", "max", "count"])
def test_matches_xarray_groupby(how):
    import xarray as xr

    rng = np.random.default_rng(2)
    x = rng.normal(size=(30, 4))
    x[rng.random(x.shape) < 0.2] = np.nan
    groups = np.repeat(np.arange(5), 6)
    da = xr.DataArray(x, dims=("time", "c"), coords={"g": ("time", groups)})
    want = getattr(da.groupby("g"), how)(skipna=True) if how != "count" else da.groupby("g").count()
    got = group_reduce(x, groups, 5, how)
    if how in ("sum",):  # xarray's skipna sum of an all-NaN group is 0; ours is NaN
        empty = np.isnan(x).reshape(5, 6, 4).all(axis=1)
        np.testing.assert_array_equal(np.isnan(got), empty)
        np.testing.assert_allclose(got[~empty], want.values[~empty])
    else:
        np.testing.assert_allclose(got, want.values, equal_nan=True)


def test_bad_arguments_are_refused():
    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match="how 'median'"):
        group_reduce(x, np.zeros(4, int), 1, "median")
    with pytest.raises(ValueError, match="group ids must lie"):
        group_reduce(x, np.array([0, 1, 2, 3]), 2, "mean")


@pytest.mark.parametrize("how", GROUP_REDUCTIONS)
def test_integer_values_are_reduced_without_a_copy_to_float(how):
    rng = np.random.default_rng(8)
    x = rng.integers(-300, 300, size=(20, 5, 7)).astype(np.int16)
    groups = np.repeat(np.arange(4), 5)
    a = group_reduce(x, groups, 4, how, backend="reference")
    b = group_reduce(x, groups, 4, how, backend="cpu")
    np.testing.assert_allclose(a, b, rtol=1e-12)

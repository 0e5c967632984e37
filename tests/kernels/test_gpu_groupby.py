"""The group kernels on every backend (reference, cpu, gpu) against NumPy.

Group ids are host metadata (days of year from the time coordinate), so only the data
arrays move to the device on the ``gpu`` backend; ``groups`` stays a NumPy array, as
the ``array.doy_*`` operators pass it.

Tolerances: ``group_mean`` sums each group in time order on the CPU and the GPU alike
(no atomics), so both equal NumPy's ``nanmean`` within the float64 tolerance of the
kernel tests; ``subtract_group`` is one subtraction per cell and matches exactly.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from minjiang.kernels.groupby import group_mean, subtract_group


def _device(x: np.ndarray, backend: str):
    if backend != "gpu":
        return x
    import cupy

    return cupy.asarray(x)


def _host(x):
    return x.get() if type(x).__module__.split(".", 1)[0] == "cupy" else x


def _numpy_group_mean(x: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    out = np.full((n_groups, *x.shape[1:]), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for g in range(n_groups):
            if np.any(groups == g):
                out[g] = np.nanmean(x[groups == g].astype(np.float64), axis=0)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(12,), (12, 5), (12, 3, 4)])
def test_group_mean_and_anomaly(backend, close, rng, shape, dtype):
    x = rng.standard_normal(shape).astype(dtype)
    x[rng.random(shape) < 0.25] = np.nan
    x[:3] = np.nan  # a group whose steps are all NaN
    groups = np.array([0, 0, 0, 1, 2, 1, 2, 1, 4, 4, 2, 1])  # group 3 is empty
    expected = _numpy_group_mean(x, groups, 5)
    got = _host(group_mean(_device(x, backend), groups, 5, backend=backend))
    assert got.dtype == np.float64 and got.shape == (5, *shape[1:])
    close(got, expected, np.float64)
    table = np.where(np.isnan(expected), 0.25, expected)
    anomaly = _host(
        subtract_group(_device(x, backend), groups, _device(table, backend), backend=backend)
    )
    assert anomaly.dtype == dtype
    np.testing.assert_array_equal(anomaly, (x - table[groups]).astype(dtype))


def test_non_contiguous_and_integer_input(backend, close, rng):
    base = rng.integers(-20, 20, (16, 6, 7)).astype(np.int16)
    x = base[::2, ::-1, 1::2]
    groups = np.arange(8) % 3
    got = _host(group_mean(_device(x, backend), groups, 3, backend=backend))
    close(got, _numpy_group_mean(x, groups, 3), np.float64)
    table = rng.standard_normal((3, *x.shape[1:]))
    anomaly = _host(
        subtract_group(_device(x, backend), groups, _device(table, backend), backend=backend)
    )
    assert anomaly.dtype == np.float32  # int16 data: float32 anomalies
    np.testing.assert_array_equal(anomaly, (x - table[groups]).astype(np.float32))


def test_bad_group_ids_are_refused(backend):
    x = _device(np.zeros((4, 2)), backend)
    with pytest.raises(ValueError, match=r"group ids must lie in \[0, 3\)"):
        group_mean(x, np.array([0, 1, 3, 0]), 3, backend=backend)
    with pytest.raises(ValueError, match="one id per step"):
        group_mean(x, np.array([0, 1]), 3, backend=backend)

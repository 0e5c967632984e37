"""Data-quality summaries: block summaries fold to the summary of the whole."""

from __future__ import annotations

import numpy as np
import pytest
from minjiang.storage import block_summary, finish_summary, merge_summaries, values_summary


def test_block_summaries_fold_to_the_summary_of_the_whole():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 30))
    x[rng.random(x.shape) < 0.1] = np.nan
    blocks = [x[i : i + 7, j : j + 11] for i in range(0, 40, 7) for j in range(0, 30, 11)]
    got = finish_summary(merge_summaries(block_summary(b) for b in blocks))
    whole = values_summary(x)
    assert {k: v for k, v in got.items() if k != "mean"} == {
        k: v for k, v in whole.items() if k != "mean"
    }
    nan = int(np.isnan(x).sum())
    assert got["cells"] == x.size and got["nan"] == nan and got["valid"] == x.size - nan
    assert got["min"] == np.nanmin(x) and got["max"] == np.nanmax(x)
    assert got["mean"] == pytest.approx(np.nanmean(x), rel=1e-12)


def test_all_missing_integer_infinite_and_time_values():
    assert values_summary(np.full(4, np.nan)) == {
        "cells": 4,
        "valid": 0,
        "nan": 4,
        "valid_fraction": 0.0,
    }
    ints = values_summary(np.array([3, -2, 7], dtype=np.int16))
    assert (ints["min"], ints["max"], ints["nan"]) == (-2.0, 7.0, 0)
    assert values_summary(np.array([1.0, np.inf]))["max"] == "inf"  # JSON has no inf
    t = np.array(["2020-01-02", "NaT", "2019-12-31T06:00"], dtype="datetime64[ns]")
    ts = values_summary(t)
    assert (ts["min"], ts["max"], ts["nan"]) == ("2019-12-31T06:00", "2020-01-02", 1)


@pytest.mark.parametrize("path", ["kernel", "numpy"])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("order", ["C", "F", "strided"])
def test_one_pass_float_summary_matches_numpy(dtype, order, path, monkeypatch):
    """Both ways a float slab is summarised (the numba pass; NumPy for small slabs)."""
    import minjiang.storage._summary as summary

    monkeypatch.setattr(summary, "_SLAB", 64)  # several slabs, one of them all NaN
    monkeypatch.setattr(summary, "_SMALL", 0 if path == "kernel" else 64)
    rng = np.random.default_rng(5)
    x = (rng.normal(size=(12, 9, 7)) * 50).astype(dtype)
    x[rng.random(x.shape) < 0.2] = np.nan
    x[3] = np.nan
    x[5, 2, 1] = -np.inf
    if order == "F":
        x = np.asfortranarray(x)
    elif order == "strided":
        x = x[:, ::2, 1:]
    got = block_summary(x)
    wide = x.astype(np.float64)
    assert got["nan"] == int(np.isnan(x).sum())
    assert got["min"] == -np.inf and got["max"] == float(np.nanmax(x))
    finite = wide[np.isfinite(wide)]
    assert got["sum"] == -np.inf
    got = block_summary(np.where(np.isinf(x), 0, x).astype(dtype))
    assert got["sum"] == pytest.approx(float(finite.sum()), rel=1e-12, abs=1e-9)
    assert got["min"] == float(np.nanmin(np.where(np.isinf(x), 0, x)))


@pytest.mark.parametrize("path", ["kernel", "numpy"])
@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "int32", "uint32", "int64", "bool"])
@pytest.mark.parametrize("order", ["C", "strided"])
def test_integer_summary_matches_numpy_exactly(dtype, order, path, monkeypatch):
    """Integers of up to 32 bits take the numba pass (an exact int64 sum), wider ones
    and booleans NumPy's reductions: NumPy's min and max, and its sum (exactly below
    2**53; 64-bit values over their whole range sum slab by slab in float64)."""
    import minjiang.storage._summary as summary

    monkeypatch.setattr(summary, "_SLAB", 64)
    monkeypatch.setattr(summary, "_SMALL", 0 if path == "kernel" else 1 << 30)
    rng = np.random.default_rng(7)
    info = np.iinfo(dtype) if dtype != "bool" else None
    lo, hi = (info.min, info.max) if info is not None else (0, 1)
    x = rng.integers(lo, hi, size=(12, 9, 7), endpoint=True, dtype=np.int64).astype(dtype)
    x[0, 0, 0], x[-1, -1, -1] = lo, hi  # the extremes of the dtype
    if order == "strided":
        x = x[:, ::2, 1:]
    got = block_summary(x)
    assert got["nan"] == 0
    assert (got["min"], got["max"]) == (float(x.min()), float(x.max()))
    want = float(x.astype(np.float64).sum())
    assert got["sum"] == (pytest.approx(want, rel=1e-12) if dtype == "int64" else want)

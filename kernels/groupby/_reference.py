"""NumPy specification of the group kernels (the slow, obvious version)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np


def group_mean(x: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """NaN-skipping mean of ``x`` over axis 0 per group id in ``groups`` (0-based)."""
    out = np.full((n_groups, *x.shape[1:]), np.nan, dtype=np.float64)
    for g in range(n_groups):
        sel = x[groups == g]
        if sel.shape[0]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices give NaN
                out[g] = np.nanmean(sel.astype(np.float64), axis=0)
    return out


def subtract_group(x: np.ndarray, groups: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``x[t] - table[groups[t]]`` along axis 0."""
    return (x.astype(np.float64) - table[groups]).astype(np.result_type(x.dtype, np.float32))


def group_reduce(
    x: np.ndarray, groups: np.ndarray, n_groups: int, how: str, min_valid: int
) -> np.ndarray:
    """NaN-skipping ``how`` (mean, sum, min, max, count) over axis 0 per group; NaN
    where a group has fewer than ``min_valid`` values (count: the count)."""
    x = x.astype(np.float64)
    out = np.full((n_groups, *x.shape[1:]), np.nan, dtype=np.float64)
    for g in range(n_groups):
        sel = x[groups == g]
        valid = (~np.isnan(sel)).sum(axis=0)
        if how == "count":
            out[g] = valid
            continue
        if not sel.shape[0]:
            continue
        funcs: dict[str, Callable[..., Any]] = {
            "mean": np.nanmean,
            "sum": np.nansum,
            "min": np.nanmin,
            "max": np.nanmax,
        }
        reduce = funcs[how]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices give NaN
            value = reduce(sel, axis=0)
        out[g] = np.where(valid >= max(min_valid, 1), value, np.nan)
    return out

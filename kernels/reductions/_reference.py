"""NumPy specification of the NaN-skipping moments and quantiles."""

from __future__ import annotations

import warnings

import numpy as np


def moments_partial(
    x: np.ndarray, axes: tuple[int, ...], keys: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """The ``keys`` of count, mean, m2 (sum of squared deviations), min, max over
    ``axes``, NaNs skipped."""
    x = x.astype(np.float64)
    valid = ~np.isnan(x)
    count = valid.sum(axis=axes, dtype=np.int64)
    empty = count == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(valid, x, 0.0).sum(axis=axes) / count
        deviation = np.where(valid, x - np.expand_dims(mean, axes), 0.0)
        m2 = (deviation * deviation).sum(axis=axes)
    state = {
        "count": count,
        "mean": np.where(empty, np.nan, mean),
        "m2": np.where(empty, np.nan, m2),
        "min": np.where(empty, np.nan, np.where(valid, x, np.inf).min(axis=axes, initial=np.inf)),
        "max": np.where(empty, np.nan, np.where(valid, x, -np.inf).max(axis=axes, initial=-np.inf)),
    }
    return {k: state[k] for k in keys}


def nanquantile(x: np.ndarray, q: np.ndarray, axis: int) -> np.ndarray:
    """``numpy.nanquantile(..., method="linear")`` in float64, quantiles on a leading axis."""
    if x.size == 0:  # numpy returns nanmean's shape here, without the quantile axis
        return np.full((q.size, *x.shape[:axis], *x.shape[axis + 1 :]), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN lines give NaN
        return np.nanquantile(x.astype(np.float64), q, axis=axis, method="linear")

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


def moments_combine(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Two checked states of the same arrays merged array by array (Chan et al.)."""
    out: dict[str, np.ndarray] = {}
    if "count" in a:
        na, nb = a["count"], b["count"]
        out["count"] = na + nb
    if "mean" in a:
        fa = na.astype(np.float64)
        fb = nb.astype(np.float64)
        a_empty = na == 0
        b_empty = nb == 0
        with np.errstate(invalid="ignore", divide="ignore"):
            delta = b["mean"] - a["mean"]
            mean = a["mean"] + delta * (fb / (fa + fb))
            if "m2" in a:
                m2 = a["m2"] + b["m2"] + delta * delta * (fa * fb / (fa + fb))
                out["m2"] = np.where(a_empty, b["m2"], np.where(b_empty, a["m2"], m2))
        out["mean"] = np.where(a_empty, b["mean"], np.where(b_empty, a["mean"], mean))
    if "min" in a:
        out["min"] = np.fmin(a["min"], b["min"])
    if "max" in a:
        out["max"] = np.fmax(a["max"], b["max"])
    return {k: out[k] for k in a}


def nanquantile(x: np.ndarray, q: np.ndarray, axis: int) -> np.ndarray:
    """``numpy.nanquantile(..., method="linear")`` in float64, quantiles on a leading axis."""
    if x.size == 0:  # numpy returns nanmean's shape here, without the quantile axis
        return np.full((q.size, *x.shape[:axis], *x.shape[axis + 1 :]), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN lines give NaN
        return np.nanquantile(x.astype(np.float64), q, axis=axis, method="linear")

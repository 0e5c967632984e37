"""NumPy specification of per-label statistics (partial states and their merge)."""

from __future__ import annotations

import numpy as np


def _group(
    label: np.ndarray,
    count: np.ndarray,
    total: np.ndarray,
    sumsq: np.ndarray,
    mn: np.ndarray,
    mx: np.ndarray,
) -> dict[str, np.ndarray]:
    # Rows sharing a label are merged: counts and sums add, min/max skip NaN.
    uniq, inv = np.unique(label, return_inverse=True)
    inv = inv.reshape(-1)
    n = uniq.size
    out_min = np.full(n, np.nan)
    out_max = np.full(n, np.nan)
    np.fmin.at(out_min, inv, mn)
    np.fmax.at(out_max, inv, mx)
    return {
        "label": uniq.astype(np.int64),
        "count": np.bincount(inv, weights=count, minlength=n).astype(np.int64),
        "sum": np.bincount(inv, weights=total, minlength=n),
        "sumsq": np.bincount(inv, weights=sumsq, minlength=n),
        "min": out_min,
        "max": out_max,
    }


def label_stats_partial(
    values: np.ndarray, labels: np.ndarray, ignore: int | None
) -> dict[str, np.ndarray]:
    """One row per voxel, then :func:`_group`; NaN values add nothing but keep the label."""
    v = values.reshape(-1).astype(np.float64)
    lab = labels.reshape(-1).astype(np.int64)
    if ignore is not None:
        keep = lab != ignore
        v, lab = v[keep], lab[keep]
    ok = ~np.isnan(v)
    zero = np.where(ok, v, 0.0)
    return _group(lab, ok.astype(np.int64), zero, zero * zero, v, v)


def label_stats_combine(states: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate the states' rows and merge rows of equal label."""
    cols = {k: np.concatenate([s[k] for s in states]) for k in states[0]}
    return _group(
        cols["label"], cols["count"], cols["sum"], cols["sumsq"], cols["min"], cols["max"]
    )

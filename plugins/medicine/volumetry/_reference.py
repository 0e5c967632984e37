"""NumPy specification of the per-label partial statistics of one block."""

from __future__ import annotations

import numpy as np


def label_stats(
    labels: np.ndarray, values: np.ndarray | None, origin: tuple[int, int, int]
) -> dict[str, np.ndarray]:
    """Per label present in ``labels`` (> 0): counts, index sums, bounding box, intensity."""
    fg = labels > 0
    lab = labels[fg].astype(np.int64)
    uniq, inv = np.unique(lab, return_inverse=True)
    n = uniq.size
    idx = np.nonzero(fg)
    out: dict[str, np.ndarray] = {
        "label": uniq,
        "count": np.bincount(inv, minlength=n).astype(np.int64),
    }
    for axis, name in enumerate("zyx"):
        g = idx[axis].astype(np.int64) + origin[axis]
        total = np.zeros(n, dtype=np.int64)
        np.add.at(total, inv, g)
        out[f"sum_{name}"] = total
        lo = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
        hi = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
        np.minimum.at(lo, inv, g)
        np.maximum.at(hi, inv, g + 1)
        out[f"{name}0"], out[f"{name}1"] = lo, hi
    if values is None:
        v = np.full(lab.size, np.nan)
    else:
        v = values[fg].astype(np.float64)
    ok = ~np.isnan(v)
    out["valid"] = np.bincount(inv[ok], minlength=n).astype(np.int64)
    out["isum"] = np.bincount(inv[ok], weights=v[ok], minlength=n)
    imin = np.full(n, np.inf)
    imax = np.full(n, -np.inf)
    np.minimum.at(imin, inv[ok], v[ok])
    np.maximum.at(imax, inv[ok], v[ok])
    out["imin"], out["imax"] = imin, imax
    return out

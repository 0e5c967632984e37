"""NumPy/SciPy reference of the tree-top search (the specification, vectorised).

The cells are grouped by their window's footprint (the offsets within the box of
``floor(r / d + 1e-9)`` cells and within the disk ``(du*dy)^2 + (dv*dx)^2 <= r^2 +
1e-12``); for each footprint, two ``scipy.ndimage.maximum_filter`` passes over the
padded block (NaN and the outside as -inf) give the highest neighbour and the highest
neighbour earlier in raster order. A cell is a top when the first is not above it and
the second is below it.
"""

from __future__ import annotations

import numpy as np


def tops(
    chm: np.ndarray,
    dx: float,
    dy: float,
    a: float,
    b: float,
    wmin: float,
    wmax: float,
    hmin: float,
    hy: int,
    hx: int,
    out: np.ndarray,
) -> None:
    from scipy.ndimage import maximum_filter  # type: ignore[import-untyped]

    H, W = out.shape
    inner = chm[hy : hy + H, hx : hx + W]
    with np.errstate(invalid="ignore"):
        cand = ~np.isnan(inner) & (inner >= hmin)
    if not cand.any():
        return
    rad = np.where(cand, np.clip(a + b * np.where(cand, inner, 0.0), wmin, wmax) / 2.0, 0.0)
    ry = np.floor(rad / dy + 1e-9).astype(np.int64)
    rx = np.floor(rad / dx + 1e-9).astype(np.int64)
    R, C = int(ry[cand].max()), int(rx[cand].max())
    du, dv = np.mgrid[-R : R + 1, -C : C + 1]
    d2 = (du * dy) ** 2 + (dv * dx) ** 2
    levels = np.unique(d2)
    # footprint key per cell: its box and how many distance levels its disk holds
    level = np.searchsorted(levels, rad**2 + 1e-12, side="right")
    filled = np.where(np.isnan(chm), -np.inf, chm)
    centre = (du == 0) & (dv == 0)
    earlier = (du < 0) | ((du == 0) & (dv < 0))
    keys = np.stack([ry[cand], rx[cand], level[cand]], axis=1)
    for kry, krx, klev in np.unique(keys, axis=0).tolist():
        fp = (np.abs(du) <= kry) & (np.abs(dv) <= krx) & (d2 <= levels[klev - 1]) & ~centre
        if not fp.any():
            higher = np.full(filled.shape, -np.inf)
            first = higher
        else:
            higher = maximum_filter(filled, footprint=fp, mode="constant", cval=-np.inf)
            fe = fp & earlier
            first = (
                maximum_filter(filled, footprint=fe, mode="constant", cval=-np.inf)
                if fe.any()
                else np.full(filled.shape, -np.inf)
            )
        sel = cand & (ry == kry) & (rx == krx) & (level == klev)
        hi = higher[hy : hy + H, hx : hx + W]
        fi = first[hy : hy + H, hx : hx + W]
        out[sel] = (hi[sel] <= inner[sel]) & (fi[sel] < inner[sel])

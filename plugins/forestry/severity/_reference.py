"""NumPy reference of the burn-severity kernel (the specification)."""

from __future__ import annotations

import numpy as np


def burn_severity(pre: np.ndarray, post: np.ndarray) -> dict[str, np.ndarray]:
    from minjiang.plugins.forestry.severity import EDGES

    with np.errstate(all="ignore"):
        d = pre - post  # in the inputs' type; the ratios in float64, stored in it
        d64, pre64 = d.astype(np.float64), pre.astype(np.float64)
        root = np.sqrt(np.abs(pre64))
        rd = np.where(root == 0, np.nan, d64 / root).astype(pre.dtype)
        den = pre64 + 1.001
        rbr = np.where(den == 0, np.nan, d64 / den).astype(pre.dtype)
    # classes 1..7 by lower-inclusive edges, computed in float64 as the kernel does
    cls = (np.searchsorted(np.asarray(EDGES), d.astype(np.float64), side="right") + 1).astype(
        np.uint8
    )
    cls[np.isnan(d)] = 0
    return {"dnbr": d, "rdnbr": rd, "rbr": rbr, "severity": cls}

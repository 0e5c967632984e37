"""NumPy reference of the local thickness: every eligible centre paints its sphere (the spec).

``lt[x] = max{R_c : c a centre, |x - c|^2 < R_c^2}`` with ``R_c = floor(dt[c])``
(0 where no sphere covers ``x``), ``dt`` the Euclidean distance transform of the
pore phase; a voxel is a centre where ``centres`` is true and ``R_c >= 1``.
"""

from __future__ import annotations

import numpy as np


def paint(dt: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """float64 local thickness (in voxels) of a 3-D distance transform."""
    lt = np.zeros(dt.shape)
    grid = np.indices(dt.shape)
    for c in zip(*np.nonzero(centres & (np.floor(dt) >= 1)), strict=True):
        r = np.floor(dt[c])
        d2 = sum((g - ci) ** 2 for g, ci in zip(grid, c, strict=True))
        inside = d2 < r * r
        lt[inside] = np.maximum(lt[inside], r)
    return lt

"""Tree tops: variable-window local maxima of a canopy height model (Popescu & Wynne 2004).

A cell of height ``h`` (not NaN, ``h >= min_height``) is a tree top when no other
cell within the circular window of diameter ``w(h) = clip(a + b*h, min_window,
max_window)`` (in CRS units; a cell belongs to the window when its centre lies within
``w/2`` of the top's centre) is higher, nor equally high with a smaller raster index
``(row, col)`` (ties go to the first cell in raster order, so that a plateau gives one
top whatever the chunking). NaN cells are neither tops nor neighbours.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["max_radius_cells", "tree_tops"]


def max_radius_cells(max_window: float, dx: float, dy: float) -> tuple[int, int]:
    """Halo (rows, cols) that holds the largest window."""
    r = max_window / 2.0
    return math.floor(r / abs(dy) + 1e-9), math.floor(r / abs(dx) + 1e-9)


def tree_tops(
    chm: Any,
    *,
    dx: float,
    dy: float,
    a: float,
    b: float,
    min_window: float,
    max_window: float,
    min_height: float,
    halo: tuple[int, int] = (0, 0),
    backend: str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Row and column (in the unpadded block) of every top in the block's interior.

    Parameters
    ----------
    chm : ndarray (H + 2*halo[0], W + 2*halo[1])
        Heights with ``halo`` cells of padding on each side (NaN: no data).
    dx, dy : float
        Cell width and height (CRS units).
    a, b, min_window, max_window : float
        Window diameter ``clip(a + b*h, min_window, max_window)``.
    min_height : float
        Lowest top.
    halo : (int, int)
        Padding rows and columns; must hold ``max_window / 2``.
    backend : {"reference", "cpu"}
    """
    chm = np.ascontiguousarray(chm, dtype=np.float64)
    need = max_radius_cells(max_window, dx, dy)
    if halo[0] < need[0] or halo[1] < need[1]:
        raise ValueError(f"tree_tops: halo {halo} is smaller than the largest window {need}")
    args = (chm, abs(dx), abs(dy), a, b, min_window, max_window, min_height, halo[0], halo[1])
    if backend == "reference":
        from minjiang.plugins.forestry.treetops._reference import tops
    elif backend == "cpu":
        from minjiang.plugins.forestry.treetops._cpu import tops
    else:
        raise ValueError(f"tree_tops: backend {backend!r} is not 'reference' or 'cpu'")
    mask = np.zeros((chm.shape[0] - 2 * halo[0], chm.shape[1] - 2 * halo[1]), np.bool_)
    tops(*args, mask)
    rows, cols = np.nonzero(mask)
    return rows, cols

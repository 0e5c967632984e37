"""NumPy/SciPy reference of the canopy kernels (the specification; vectorised).

``grid_max`` bins with ``np.floor`` and ``np.fmax.at``; the TIN is interpolated by
:class:`scipy.interpolate.LinearNDInterpolator` (Qhull's point location and
barycentric weights), independent of the numba rasteriser.
"""

from __future__ import annotations

import numpy as np
from minjiang.plugins.forestry.canopy import serial_blas


def _cells(
    x: np.ndarray, y: np.ndarray, left: float, top: float, cell: float, r0: int, c0: int
) -> tuple[np.ndarray, np.ndarray]:
    row = np.floor((top - y) / cell).astype(np.int64) - r0
    col = np.floor((x - left) / cell).astype(np.int64) - c0
    return row, col


def grid_max(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    left: float,
    top: float,
    cell: float,
    ny: int,
    nx: int,
    r0: int,
    c0: int,
) -> np.ndarray:
    row, col = _cells(x, y, left, top, cell, r0, c0)
    inside = (row >= 0) & (row < ny) & (col >= 0) & (col < nx)
    out = np.full(ny * nx, np.nan)
    np.fmax.at(out, row[inside] * nx + col[inside], z[inside])
    return out.reshape(ny, nx)


def _dedup(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, ...]:
    xy, inverse = np.unique(np.column_stack((x, y)), axis=0, return_inverse=True)
    low = np.full(len(xy), np.inf)
    np.minimum.at(low, inverse.ravel(), z)
    return xy[:, 0], xy[:, 1], low


def _centres(
    left: float, top: float, cell: float, ny: int, nx: int, r0: int, c0: int
) -> tuple[np.ndarray, np.ndarray]:
    yc = top - (np.arange(r0, r0 + ny) + 0.5) * cell
    xc = left + (np.arange(c0, c0 + nx) + 0.5) * cell
    return np.meshgrid(xc, yc)


def tin_grid(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    left: float,
    top: float,
    cell: float,
    ny: int,
    nx: int,
    r0: int,
    c0: int,
    max_edge: float | None,
) -> np.ndarray:
    from scipy.interpolate import LinearNDInterpolator  # type: ignore[import-untyped]
    from scipy.spatial import Delaunay, QhullError  # type: ignore[import-untyped]

    out = np.full((ny, nx), np.nan)
    xs, ys, zs = _dedup(x, y, z)
    if xs.size < 3 or ny == 0 or nx == 0:
        return out
    ox, oy = left + c0 * cell, top - r0 * cell
    try:
        tri = Delaunay(np.column_stack((xs - ox, ys - oy)))
    except QhullError:
        return out
    X, Y = _centres(left, top, cell, ny, nx, r0, c0)
    q = np.column_stack(((X - ox).ravel(), (Y - oy).ravel()))
    with serial_blas():
        values = LinearNDInterpolator(tri, zs)(q)
        _drop_long(tri, q, values, max_edge)
    return values.reshape(ny, nx)


def tin_at_points(
    gx: np.ndarray,
    gy: np.ndarray,
    gz: np.ndarray,
    px: np.ndarray,
    py: np.ndarray,
    ox: float,
    oy: float,
    max_edge: float | None,
) -> np.ndarray:
    from scipy.interpolate import LinearNDInterpolator
    from scipy.spatial import Delaunay, QhullError

    xs, ys, zs = _dedup(gx, gy, gz)
    if xs.size < 3 or px.size == 0:
        return np.full(px.size, np.nan)
    try:
        tri = Delaunay(np.column_stack((xs - ox, ys - oy)))
    except QhullError:
        return np.full(px.size, np.nan)
    q = np.column_stack((px - ox, py - oy))
    with serial_blas():
        values = np.asarray(LinearNDInterpolator(tri, zs)(q), dtype=np.float64)
        _drop_long(tri, q, values, max_edge)
    ground = {(a, b): c for a, b, c in zip(xs.tolist(), ys.tolist(), zs.tolist(), strict=True)}
    at = [ground.get(key) for key in zip(px.tolist(), py.tolist(), strict=True)]
    hit = np.array([v is not None for v in at], dtype=bool)
    values[hit] = [v for v in at if v is not None]
    return values


def _drop_long(tri: object, q: np.ndarray, values: np.ndarray, max_edge: float | None) -> None:
    """NaN where the query falls in a triangle with an edge longer than ``max_edge``."""
    if max_edge is None:
        return
    v = tri.points[tri.simplices]  # type: ignore[attr-defined]  # (ntri, 3, 2)
    edges = np.linalg.norm(v - np.roll(v, 1, axis=1), axis=2)
    long = (edges > max_edge).any(axis=1)
    s = tri.find_simplex(q)  # type: ignore[attr-defined]
    values[(s >= 0) & long[np.maximum(s, 0)]] = np.nan

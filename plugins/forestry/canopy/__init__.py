"""Canopy height from classified LiDAR points: DSM, TIN DTM, CHM and a pit-free CHM.

Grid and binning (the reader's convention, :mod:`minjiang.plugins.forestry._lidar`): a
north-up grid of square cells of side ``cell`` whose top-left corner is
``(left, top)``; a point ``(x, y)`` falls in row ``floor((top - y) / cell)`` and
column ``floor((x - left) / cell)`` (rasterio's ``rowcol(op=floor)``: a point on a
vertical cell edge belongs to the cell east of it, on a horizontal edge to the cell
south of it). Cell centres are ``left + (col + 0.5) * cell`` and
``top - (row + 0.5) * cell``, computed from the global row and column, so a window
of the grid gives bit-identical centres to the whole grid.

* ``dsm``: the highest ``z`` of the points in each cell; NaN where no point.
* ``dtm``: the linear interpolation, at each cell centre, of the Delaunay
  triangulation (TIN) of the ground points (ASPRS class 2); NaN outside their convex
  hull. Ground points sharing one ``(x, y)`` count once, with their lowest ``z``.
* ``chm = max(dsm - dtm, 0)``; NaN where either is NaN.
* ``chm_pitfree`` (optional): the pit-free CHM of Khosravipour et al. (2014), as
  lidR's ``pitfree()``: the first returns (``return_number == 1``) are normalised to
  heights ``h = max(z - TIN_ground(x, y), 0)`` (a first return on a ground point's
  position takes that point's ``z``, one on a TIN edge the interpolation along that
  edge; points outside the ground hull, or in a ground
  triangle longer than ``tin_max_edge``, are dropped);
  for each threshold ``t`` of ``thresholds`` the first returns with ``h >= t`` are
  triangulated and interpolated at the cell centres, the layer of threshold 0 with
  all its triangles and the others without the triangles having an edge longer than
  ``max_edge``; the CHM is the cell-wise maximum of the layers (NaN layers left out),
  clamped at 0.

Triangulation: :class:`scipy.spatial.Delaunay` (Qhull) of coordinates taken relative
to the window's corner: with raw projected coordinates (~10^6) Qhull's lifted
paraboloid loses the precision to decide near-cocircular quadruples, and returns
triangles that are not Delaunay. The numba kernel rasterises each triangle over the
cell centres it covers, with barycentric weights from edge functions evaluated on the
global coordinates, each edge in one canonical direction; a centre exactly on an
interior edge belongs to the triangle on the edge's positive side (hull edges belong
to their triangle), so every centre is interpolated from exactly one triangle, and the
value depends only on that triangle's vertices, not on the order Qhull listed them.
The NumPy reference interpolates with :class:`scipy.interpolate.LinearNDInterpolator`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["canopy_height", "grid_max", "serial_blas", "tin_grid"]

_BACKENDS = ("reference", "cpu")


def _check_backend(where: str, backend: str) -> None:
    if backend not in _BACKENDS:
        raise ValueError(f"{where}: backend {backend!r} is not one of {_BACKENDS!r}")


def _points(where: str, **cols: Any) -> dict[str, np.ndarray]:
    out = {k: np.ascontiguousarray(v, dtype=np.float64).ravel() for k, v in cols.items()}
    n = {k: v.size for k, v in out.items()}
    if len(set(n.values())) > 1:
        raise ValueError(f"{where}: point columns differ in length: {n!r}")
    for k, v in out.items():
        if not np.isfinite(v).all():
            raise ValueError(f"{where}: point column {k!r} holds NaN or infinite values")
    return out


def _window(
    where: str, left: float, top: float, cell: float, shape: Sequence[int], origin: Sequence[int]
) -> tuple[float, float, float, int, int, int, int]:
    if not (np.isfinite(cell) and cell > 0):
        raise ValueError(f"{where}: cell size must be positive and finite, got {cell!r}")
    if not (np.isfinite(left) and np.isfinite(top)):
        raise ValueError(f"{where}: the grid corner ({left!r}, {top!r}) must be finite")
    ny, nx = (int(v) for v in shape)
    r0, c0 = (int(v) for v in origin)
    if ny < 0 or nx < 0:
        raise ValueError(f"{where}: window shape {tuple(shape)!r} must not be negative")
    return float(left), float(top), float(cell), ny, nx, r0, c0


def grid_max(
    x: Any,
    y: Any,
    z: Any,
    *,
    left: float,
    top: float,
    cell: float,
    shape: Sequence[int],
    origin: Sequence[int] = (0, 0),
    backend: str = "cpu",
) -> np.ndarray:
    """Highest ``z`` per cell of a window of the grid (NaN where no point).

    Parameters
    ----------
    x, y, z : array_like (n,)
        Point coordinates (CRS units) and elevations.
    left, top, cell : float
        The grid: top-left corner and cell side.
    shape : (int, int)
        Rows and columns of the window.
    origin : (int, int)
        Global row and column of the window's first cell; points outside the window
        are left out.
    backend : {"reference", "cpu"}

    Returns
    -------
    ndarray (rows, cols), float64
    """
    where = "grid_max"
    _check_backend(where, backend)
    p = _points(where, x=x, y=y, z=z)
    args = _window(where, left, top, cell, shape, origin)
    if backend == "reference":
        from minjiang.plugins.forestry.canopy._reference import grid_max as ref

        return ref(p["x"], p["y"], p["z"], *args)
    from minjiang.plugins.forestry.canopy._cpu import grid_max as cpu

    le, to, ce, ny, nx, r0, c0 = args
    out = np.full((ny, nx), np.nan)
    cpu(p["x"], p["y"], p["z"], le, to, ce, r0, c0, out)
    return out


def serial_blas() -> Any:
    """A context in which BLAS/LAPACK run on one thread.

    Qhull's point location (``find_simplex``, ``LinearNDInterpolator``) first computes
    one barycentric transform per triangle, each a tiny LAPACK call: with a threaded
    BLAS on a busy machine that took 8 s instead of 0.09 s for 40,000 triangles.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _unique_lowest(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, ...]:
    """Points with distinct ``(x, y)``, each with the lowest ``z`` at that position."""
    order = np.lexsort((z, y, x))
    xs, ys, zs = x[order], y[order], z[order]
    first = np.ones(xs.size, bool)
    first[1:] = (xs[1:] != xs[:-1]) | (ys[1:] != ys[:-1])
    return xs[first], ys[first], zs[first]


def _delaunay(x: np.ndarray, y: np.ndarray, ox: float, oy: float) -> Any:
    """Qhull's triangulation of coordinates relative to ``(ox, oy)``; None when degenerate."""
    from scipy.spatial import Delaunay, QhullError  # type: ignore[import-untyped]

    if x.size < 3:
        return None
    try:
        return Delaunay(np.column_stack((x - ox, y - oy)))
    except QhullError:  # all points on a line: no triangle
        return None


def tin_grid(
    x: Any,
    y: Any,
    z: Any,
    *,
    left: float,
    top: float,
    cell: float,
    shape: Sequence[int],
    origin: Sequence[int] = (0, 0),
    max_edge: float | None = None,
    backend: str = "cpu",
) -> np.ndarray:
    """TIN-linear interpolation of points at the cell centres of a window of the grid.

    Points sharing one ``(x, y)`` count once, with their lowest ``z``. NaN outside the
    points' convex hull (and inside triangles with an edge longer than ``max_edge``,
    when given). Parameters as :func:`grid_max`; every point given is triangulated
    (give the window's points plus a buffer, so that the TIN is right at its edges).

    Returns
    -------
    ndarray (rows, cols), float64
    """
    where = "tin_grid"
    _check_backend(where, backend)
    p = _points(where, x=x, y=y, z=z)
    args = _window(where, left, top, cell, shape, origin)
    if max_edge is not None and not (np.isfinite(max_edge) and max_edge > 0):
        raise ValueError(f"{where}: max_edge must be positive, got {max_edge!r}")
    if backend == "reference":
        from minjiang.plugins.forestry.canopy._reference import tin_grid as ref

        return ref(p["x"], p["y"], p["z"], *args, max_edge)
    le, to, ce, ny, nx, r0, c0 = args
    out = np.full((ny, nx), np.nan)
    xs, ys, zs = _unique_lowest(p["x"], p["y"], p["z"])
    tri = _delaunay(xs, ys, le + c0 * ce, to - r0 * ce)
    if tri is None or ny == 0 or nx == 0:
        return out
    from minjiang.plugins.forestry.canopy._cpu import raster_tin

    simplices = np.ascontiguousarray(tri.simplices, dtype=np.int64)
    neighbors = np.ascontiguousarray(tri.neighbors, dtype=np.int64)
    edge2 = -1.0 if max_edge is None else float(max_edge) ** 2
    raster_tin(xs, ys, zs, simplices, neighbors, le, to, ce, r0, c0, edge2, out)
    return out


def _tin_at_points(
    gx: np.ndarray,
    gy: np.ndarray,
    gz: np.ndarray,
    px: np.ndarray,
    py: np.ndarray,
    ox: float,
    oy: float,
    max_edge: float | None,
    backend: str,
) -> np.ndarray:
    """The ground TIN evaluated at points (NaN outside the hull and in long triangles)."""
    if backend == "reference":
        from minjiang.plugins.forestry.canopy._reference import tin_at_points

        return tin_at_points(gx, gy, gz, px, py, ox, oy, max_edge)
    xs, ys, zs = _unique_lowest(gx, gy, gz)
    tri = _delaunay(xs, ys, ox, oy)
    out = np.full(px.size, np.nan)
    if tri is None or px.size == 0:
        return out
    # a point on a ground point takes its z, whichever (maybe long) triangle holds it;
    # complex numbers sort by (real, imag): the (x, y)-sorted ground points are sorted keys
    keys = xs + 1j * ys
    query = px + 1j * py
    i = np.minimum(np.searchsorted(keys, query), keys.size - 1)
    on_vertex = keys[i] == query
    from minjiang.plugins.forestry.canopy._cpu import tin_points

    with serial_blas():
        simplex = tri.find_simplex(np.column_stack((px - ox, py - oy)))
    tin_points(
        xs,
        ys,
        zs,
        np.ascontiguousarray(tri.simplices, dtype=np.int64),
        np.ascontiguousarray(simplex, dtype=np.int64),
        px,
        py,
        -1.0 if max_edge is None else float(max_edge) ** 2,
        out,
    )
    out[on_vertex] = zs[i[on_vertex]]
    return out


def canopy_height(
    x: Any,
    y: Any,
    z: Any,
    classification: Any,
    return_number: Any,
    *,
    left: float,
    top: float,
    cell: float,
    shape: Sequence[int],
    origin: Sequence[int] = (0, 0),
    exclude_classes: Sequence[int] = (7, 18),
    pit_free: bool = False,
    thresholds: Sequence[float] = (0.0, 2.0, 5.0, 10.0, 15.0),
    max_edge: float | None = None,
    tin_max_edge: float | None = None,
    backend: str = "cpu",
) -> dict[str, np.ndarray]:
    """DSM, DTM, CHM (and the pit-free CHM) of a window of the grid.

    Parameters
    ----------
    x, y, z, classification, return_number : array_like (n,)
        The points of the window and of a buffer around it.
    left, top, cell, shape, origin
        The grid and the window, as :func:`grid_max`.
    exclude_classes : sequence of int
        Classes left out of the DSM and of the pit-free layers (default: ASPRS low and
        high noise, 7 and 18).
    pit_free : bool
        Also compute ``chm_pitfree`` (Khosravipour et al. 2014).
    thresholds : sequence of float
        Height thresholds of the pit-free layers (units of ``z``; must include 0).
    max_edge : float, optional
        Longest triangle edge of the pit-free layers above 0 (CRS units; default 3
        cells; at most ``tin_max_edge``).
    tin_max_edge : float, optional
        Longest triangle edge of every TIN: the DTM, the first returns' ground heights
        and pit-free layer 0 (default: no limit). Tiled runs give the whole raster's
        result when the buffer around each window is at least twice this.
    backend : {"reference", "cpu"}

    Returns
    -------
    dict with ``dsm``, ``dtm``, ``chm`` (and ``chm_pitfree``), float64 (rows, cols)
    """
    where = "canopy_height"
    _check_backend(where, backend)
    p = _points(where, x=x, y=y, z=z, c=classification, r=return_number)
    le, to, ce, ny, nx, r0, c0 = _window(where, left, top, cell, shape, origin)
    keep = ~np.isin(p["c"], np.asarray(list(exclude_classes), dtype=np.float64))
    kw: dict[str, Any] = {
        "left": le,
        "top": to,
        "cell": ce,
        "shape": (ny, nx),
        "origin": (r0, c0),
        "backend": backend,
    }
    dsm = grid_max(p["x"][keep], p["y"][keep], p["z"][keep], **kw)
    ground = p["c"] == 2
    gx, gy, gz = p["x"][ground], p["y"][ground], p["z"][ground]
    if tin_max_edge is not None and not (np.isfinite(tin_max_edge) and tin_max_edge > 0):
        raise ValueError(f"{where}: tin_max_edge must be positive, got {tin_max_edge!r}")
    dtm = tin_grid(gx, gy, gz, max_edge=tin_max_edge, **kw)
    with np.errstate(invalid="ignore"):
        chm = np.maximum(dsm - dtm, 0.0)
    chm[np.isnan(dsm) | np.isnan(dtm)] = np.nan
    out = {"dsm": dsm, "dtm": dtm, "chm": chm}
    if pit_free:
        ts = sorted(float(t) for t in thresholds)
        if not ts or ts[0] != 0.0:
            raise ValueError(f"{where}: pit-free thresholds {list(thresholds)!r} must include 0")
        edge = 3.0 * ce if max_edge is None else float(max_edge)
        if tin_max_edge is not None:
            edge = min(edge, float(tin_max_edge))
        first = keep & (p["r"] == 1)
        fx, fy = p["x"][first], p["y"][first]
        ox, oy = le + c0 * ce, to - r0 * ce
        h = _tin_at_points(gx, gy, gz, fx, fy, ox, oy, tin_max_edge, backend)
        # heights below the ground TIN count as 0: ground points among the first
        # returns sit on it up to rounding, and a -1e-12 must not drop them from layer 0
        h = np.maximum(p["z"][first] - h, 0.0)
        ok = ~np.isnan(h)
        fx, fy, h = fx[ok], fy[ok], h[ok]
        layers = []
        for t in ts:
            sel = h >= t
            layers.append(
                tin_grid(
                    fx[sel], fy[sel], h[sel], max_edge=tin_max_edge if t == 0.0 else edge, **kw
                )
            )
        stack = np.stack(layers)
        pf = np.full((ny, nx), np.nan)
        has = ~np.isnan(stack).all(axis=0)
        pf[has] = np.nanmax(stack[:, has], axis=0)
        out["chm_pitfree"] = np.maximum(pf, 0.0, where=~np.isnan(pf), out=pf)
    return out

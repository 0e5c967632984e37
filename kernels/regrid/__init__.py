"""Regridding kernels: sparse remapping weights between horizontal grids, and their
application to stacks of planes.

Weights are a sparse table ``(dst, src, weight)`` of flat cell indices (C order over
each grid's two dims). :func:`apply_weights` maps planes through it, leaving NaN
sources out and renormalising each target cell by the valid weight that reaches it.

The weight builders (:func:`nearest_weights`, :func:`bilinear_weights`,
:func:`conservative_weights`) take grids as :class:`CellGrid` (cell centres and
corners as unit vectors, plus what each kind of grid knows of itself: the lat/lon
axes of a regular grid, the index-space map of a projected raster). Conservative
weights between two regular lat/lon grids are exact and separable (the lon overlap
times the sin(lat) overlap); for any other pair the cells are polygons with
great-circle edges through their corners and the overlap areas are exact for those
polygons (:func:`overlap_areas`, numba, with a NumPy reference).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from minjiang.kernels._dispatch import resolve_backend
from minjiang.kernels.regrid._geometry import (
    METHODS,
    CellGrid,
    bilinear_weights,
    cell_areas,
    conservative_weights,
    curvilinear_grid,
    latlon_grid,
    lonlat_to_xyz,
    nearest_weights,
    projected_grid,
    regrid_weights,
)

__all__ = [
    "METHODS",
    "CellGrid",
    "apply_weights",
    "bilinear_weights",
    "cell_areas",
    "conservative_weights",
    "curvilinear_grid",
    "latlon_grid",
    "lonlat_to_xyz",
    "nearest_weights",
    "overlap_areas",
    "polygon_areas",
    "projected_grid",
    "regrid_weights",
]


def apply_weights(
    x: Any,
    dst: Any,
    src: Any,
    weight: Any,
    n_dst: int,
    *,
    min_valid_fraction: float = 0.5,
    backend: str | None = None,
) -> np.ndarray:
    """Map planes through sparse weights, leaving NaN sources out.

    Parameters
    ----------
    x
        ``(k, n_src)`` planes, flattened (any real dtype).
    dst, src, weight
        The weight table: target cell, source cell, weight (equal lengths).
    n_dst
        Number of target cells.
    min_valid_fraction
        A target cell gets ``sum(w * x) / sum(w)`` over its valid (non-NaN) sources
        when that valid weight is at least this (and above 0), else NaN.
    backend
        ``"cpu"`` (numba, default for NumPy input) or ``"reference"`` (SciPy).

    Returns
    -------
    numpy.ndarray
        float64, ``(k, n_dst)``.

    Raises
    ------
    ValueError
        For a table of unequal lengths, or indices outside the grids.
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"apply_weights: x must be (k, n_src), got shape {x.shape!r}")
    if x.dtype.kind not in "fiu":
        raise TypeError(f"apply_weights: x must be real numbers, got {x.dtype}")
    dst, src = np.asarray(dst, dtype=np.int64), np.asarray(src, dtype=np.int64)
    weight = np.asarray(weight, dtype=np.float64)
    if not dst.shape == src.shape == weight.shape or dst.ndim != 1:
        raise ValueError(
            f"apply_weights: dst, src and weight must be 1-D of one length, got "
            f"{dst.shape!r}, {src.shape!r}, {weight.shape!r}"
        )
    n_src = x.shape[1]
    if dst.size and (dst.min() < 0 or dst.max() >= n_dst or src.min() < 0 or src.max() >= n_src):
        raise ValueError(
            f"apply_weights: indices outside the grids (dst in [0, {n_dst}), src in "
            f"[0, {n_src})); the weights belong to other grids"
        )
    if not 0.0 <= float(min_valid_fraction) <= 1.0:
        raise ValueError(f"apply_weights: min_valid_fraction {min_valid_fraction!r} not in [0, 1]")
    chosen = resolve_backend(backend, x, kernel="apply_weights")
    if chosen == "reference":
        from minjiang.kernels.regrid import _reference

        return _reference.apply_weights(x, dst, src, weight, int(n_dst), float(min_valid_fraction))
    from minjiang.kernels.regrid import _cpu

    order = np.argsort(dst, kind="stable")
    indptr = np.zeros(int(n_dst) + 1, dtype=np.int64)
    np.cumsum(np.bincount(dst, minlength=int(n_dst)), out=indptr[1:])
    out = np.empty((x.shape[0], int(n_dst)), dtype=np.float64)
    xf = np.ascontiguousarray(x, dtype=np.float64)
    _cpu._apply(xf, indptr, src[order], weight[order], float(min_valid_fraction), out)
    return out


def _cells(cells: Any, name: str) -> np.ndarray:
    a = np.ascontiguousarray(cells, dtype=np.float64)
    if a.ndim != 3 or a.shape[2] != 3 or not 3 <= a.shape[1] <= 8:
        raise ValueError(
            f"{name}: cells must be (n, corners, 3) unit vectors with 3 to 8 corners, got {a.shape!r}"
        )
    return a


def polygon_areas(cells: Any, *, backend: str | None = None) -> np.ndarray:
    """Areas on the unit sphere (steradians) of cells with great-circle edges.

    ``cells`` is ``(n, corners, 3)``: each cell's corners as unit vectors, in order.
    """
    a = _cells(cells, "polygon_areas")
    if resolve_backend(backend, a, kernel="polygon_areas") == "reference":
        from minjiang.kernels.regrid import _reference

        return _reference.polygon_areas(a)
    from minjiang.kernels.regrid import _cpu

    return _cpu._areas(a)


def overlap_areas(
    dst_cells: Any,
    src_cells: Any,
    pair_dst: Any,
    pair_src: Any,
    *,
    backend: str | None = None,
) -> np.ndarray:
    """Area on the unit sphere of the intersection of cell pairs.

    Parameters
    ----------
    dst_cells, src_cells
        ``(n, corners, 3)`` corners as unit vectors, in order (either orientation).
        Target cells must be convex; edges are great-circle arcs.
    pair_dst, pair_src
        The pairs to intersect (indices into the two cell arrays).
    backend
        ``"cpu"`` (numba Sutherland–Hodgman) or ``"reference"`` (NumPy).

    Returns
    -------
    numpy.ndarray
        ``(n_pairs,)`` steradians (0 for disjoint cells).
    """
    a, b = _cells(dst_cells, "overlap_areas"), _cells(src_cells, "overlap_areas")
    pd, ps = np.asarray(pair_dst, dtype=np.int64), np.asarray(pair_src, dtype=np.int64)
    if pd.shape != ps.shape or pd.ndim != 1:
        raise ValueError("overlap_areas: pair_dst and pair_src must be 1-D of one length")
    if pd.size and (pd.min() < 0 or pd.max() >= len(a) or ps.min() < 0 or ps.max() >= len(b)):
        raise ValueError("overlap_areas: a pair index lies outside its cell array")
    if resolve_backend(backend, a, kernel="overlap_areas") == "reference":
        from minjiang.kernels.regrid import _reference

        return _reference.overlap_areas(a, b, pd, ps)
    from minjiang.kernels.regrid import _cpu

    return _cpu._overlaps(a, b, pd, ps)

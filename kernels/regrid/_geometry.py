"""Grid geometry and the remapping weights between two horizontal grids.

Three kinds of grid, each reduced to a :class:`CellGrid`: its cell centres and corners
as unit vectors on the sphere (C order over its two dims), plus what the kind knows
of itself:

* ``latlon``: 1-D ``lat``/``lon`` centres (degrees); cell edges halfway between
  centres (the outer ones half a spacing out, latitudes clipped to ±90); a grid whose
  longitudes span 360° wraps around;
* ``projected``: a raster's CRS and affine transform (rasterio's order), corners and
  centres taken to longitude/latitude with pyproj;
* ``curvilinear``: 2-D ``lat``/``lon`` centres; corners are the normalised means of
  the four surrounding centres in 3-D (edge rows and columns extrapolated linearly),
  so neighbouring cells share corners.

Weights are ``(dst, src, weight)`` arrays sorted by ``dst`` then ``src``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np
from scipy.spatial import cKDTree  # type: ignore[import-untyped]

__all__ = [
    "METHODS",
    "CellGrid",
    "bilinear_weights",
    "cell_areas",
    "conservative_weights",
    "curvilinear_grid",
    "latlon_grid",
    "lonlat_to_xyz",
    "nearest_weights",
    "projected_grid",
    "regrid_weights",
]

METHODS = ("nearest", "bilinear", "conservative")
Kind = Literal["latlon", "projected", "curvilinear"]
#: tolerance (degrees, or cells in index space) for points on a grid's outer edge
_TOL = 1e-9


def lonlat_to_xyz(lon: Any, lat: Any) -> np.ndarray:
    """Unit vectors (..., 3) of longitudes and latitudes in degrees."""
    lam, phi = (
        np.radians(np.asarray(lon, dtype=np.float64)),
        np.radians(np.asarray(lat, dtype=np.float64)),
    )
    c = np.cos(phi)
    return np.stack([c * np.cos(lam), c * np.sin(lam), np.sin(phi)], axis=-1)


def _xyz_to_lonlat(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lon = np.degrees(np.arctan2(v[..., 1], v[..., 0]))
    lat = np.degrees(np.arcsin(np.clip(v[..., 2], -1.0, 1.0)))
    return lon, lat


@dataclasses.dataclass(frozen=True, eq=False)
class CellGrid:
    """A horizontal grid as the weight builders see it (built by :func:`latlon_grid`,
    :func:`projected_grid` or :func:`curvilinear_grid`)."""

    kind: Kind
    shape: tuple[int, int]
    lon: np.ndarray  # centres, flat (n,)
    lat: np.ndarray
    centres: np.ndarray  # (n, 3)
    corners: np.ndarray  # (n, 4, 3), in order round the cell
    lat_axis: np.ndarray | None = None  # latlon: 1-D centres and bounds
    lon_axis: np.ndarray | None = None
    lat_bounds: np.ndarray | None = None
    lon_bounds: np.ndarray | None = None
    periodic: bool = False
    crs: str = ""
    transform: tuple[float, ...] = ()

    @property
    def size(self) -> int:
        return int(self.shape[0] * self.shape[1])


def _bounds(c: np.ndarray) -> np.ndarray:
    mid = (c[:-1] + c[1:]) / 2
    return np.concatenate([[c[0] - (c[1] - c[0]) / 2], mid, [c[-1] + (c[-1] - c[-2]) / 2]])


def _quad_corners(clat: np.ndarray, clon: np.ndarray) -> np.ndarray:
    """Corners (ny*nx, 4, 3) of cells whose (ny+1, nx+1) corner lat/lon are given."""
    v = lonlat_to_xyz(clon, clat)
    quad = np.stack([v[:-1, :-1], v[:-1, 1:], v[1:, 1:], v[1:, :-1]], axis=2)
    return quad.reshape(-1, 4, 3)


def latlon_grid(lat: Any, lon: Any) -> CellGrid:
    """A regular (or irregular, monotonic) lat/lon grid from its 1-D centres in degrees.

    Raises
    ------
    ValueError
        For fewer than 2 centres on an axis, non-monotonic centres, latitudes outside
        [-90, 90] or longitudes spanning more than 360°.
    """
    lat = np.asarray(lat, dtype=np.float64).ravel()
    lon = np.asarray(lon, dtype=np.float64).ravel()
    for name, c in (("lat", lat), ("lon", lon)):
        if c.size < 2:
            raise ValueError(f"{name} has {c.size} centre(s); a grid axis needs at least 2")
        d = np.diff(c)
        if not (np.all(d > 0) or np.all(d < 0)) or not np.all(np.isfinite(c)):
            raise ValueError(f"{name} centres must be finite and strictly monotonic")
    if np.abs(lat).max() > 90 + _TOL:
        raise ValueError("lat centres must lie in [-90, 90]")
    latb = np.clip(_bounds(lat), -90.0, 90.0)
    lonb = _bounds(lon)
    span = abs(lonb[-1] - lonb[0])
    if span > 360 + 1e-6:
        raise ValueError(f"lon centres span {span:g} degrees of cells, over 360")
    periodic = span > 360 - 1e-6
    if periodic:  # the wrap closes exactly
        lonb[-1] = lonb[0] + np.copysign(360.0, lonb[-1] - lonb[0])
    glat, glon = np.meshgrid(lat, lon, indexing="ij")
    blat, blon = np.meshgrid(latb, lonb, indexing="ij")
    return CellGrid(
        "latlon",
        (lat.size, lon.size),
        glon.ravel(),
        glat.ravel(),
        lonlat_to_xyz(glon.ravel(), glat.ravel()),
        _quad_corners(blat, blon),
        lat_axis=lat,
        lon_axis=lon,
        lat_bounds=latb,
        lon_bounds=lonb,
        periodic=bool(periodic),
    )


def _to_lonlat(crs: str) -> Any:
    from pyproj import CRS, Transformer

    return Transformer.from_crs(CRS.from_user_input(crs), CRS.from_epsg(4326), always_xy=True)


def projected_grid(crs: str, transform: Any, shape: tuple[int, int]) -> CellGrid:
    """A raster's grid from its CRS (WKT, ``EPSG:n``…) and affine transform
    ``[a, b, c, d, e, f]`` (``x = a*col + b*row + c``, ``y = d*col + e*row + f``)."""
    a, b, c, d, e, f = (float(v) for v in transform)
    ny, nx = int(shape[0]), int(shape[1])
    to_ll = _to_lonlat(crs)
    col, row = np.meshgrid(np.arange(nx + 1.0), np.arange(ny + 1.0))
    clon, clat = to_ll.transform(a * col + b * row + c, d * col + e * row + f)
    col, row = np.meshgrid(np.arange(nx) + 0.5, np.arange(ny) + 0.5)
    lon, lat = to_ll.transform(a * col + b * row + c, d * col + e * row + f)
    lon, lat = np.asarray(lon).ravel(), np.asarray(lat).ravel()
    if not (np.all(np.isfinite(clon)) and np.all(np.isfinite(clat))):
        raise ValueError("the raster's cell corners do not all map to longitude/latitude")
    return CellGrid(
        "projected",
        (ny, nx),
        lon,
        lat,
        lonlat_to_xyz(lon, lat),
        _quad_corners(np.asarray(clat), np.asarray(clon)),
        crs=str(crs),
        transform=(a, b, c, d, e, f),
    )


def curvilinear_grid(lat: Any, lon: Any) -> CellGrid:
    """A curvilinear grid from 2-D centre latitudes and longitudes (degrees)."""
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    if lat.ndim != 2 or lat.shape != lon.shape or min(lat.shape) < 2:
        raise ValueError(
            f"curvilinear lat/lon must be 2-D of one shape, at least 2 x 2; got {lat.shape!r} and {lon.shape!r}"
        )
    if not (np.all(np.isfinite(lat)) and np.all(np.isfinite(lon))):
        raise ValueError("curvilinear lat/lon hold NaN or infinite values")
    v = lonlat_to_xyz(lon, lat)
    ny, nx = lat.shape
    p = np.empty((ny + 2, nx + 2, 3))
    p[1:-1, 1:-1] = v
    p[0, 1:-1] = 2 * v[0] - v[1]
    p[-1, 1:-1] = 2 * v[-1] - v[-2]
    p[:, 0] = 2 * p[:, 1] - p[:, 2]
    p[:, -1] = 2 * p[:, -2] - p[:, -3]
    corner = (p[:-1, :-1] + p[:-1, 1:] + p[1:, :-1] + p[1:, 1:]) / 4
    corner /= np.linalg.norm(corner, axis=-1, keepdims=True)
    quad = np.stack([corner[:-1, :-1], corner[:-1, 1:], corner[1:, 1:], corner[1:, :-1]], axis=2)
    return CellGrid(
        "curvilinear",
        (ny, nx),
        lon.ravel(),
        lat.ravel(),
        v.reshape(-1, 3),
        quad.reshape(-1, 4, 3),
    )


def cell_areas(
    grid: CellGrid, *, edges: Literal["native", "great_circle"] = "native"
) -> np.ndarray:
    """Cell areas on the unit sphere (steradians), flat in C order.

    ``native``: a lat/lon cell's exact area (its edges follow meridians and parallels);
    ``great_circle`` (and any other kind of grid): the cell as a polygon with
    great-circle edges through its corners, the cells conservative regridding uses
    for any pair but lat/lon to lat/lon.
    """
    if grid.kind == "latlon" and edges == "native":
        assert grid.lat_bounds is not None and grid.lon_bounds is not None
        s = np.abs(np.diff(np.sin(np.radians(grid.lat_bounds))))
        dl = np.abs(np.radians(np.diff(grid.lon_bounds)))
        return np.outer(s, dl).ravel()
    from minjiang.kernels.regrid import polygon_areas

    return polygon_areas(grid.corners)


def _rows(grid: CellGrid, rows: slice | None) -> np.ndarray:
    return np.arange(grid.size)[rows if rows is not None else slice(None)]


def _radius(grid: CellGrid) -> np.ndarray:
    """Each cell's circumradius as a chord: centre to farthest corner."""
    return np.max(np.linalg.norm(grid.corners - grid.centres[:, None, :], axis=-1), axis=1)


def _lon_offset(lon: np.ndarray, start: float) -> np.ndarray:
    return np.mod(lon - start + _TOL, 360.0) - _TOL


def _contains(
    src: CellGrid, lon: np.ndarray, lat: np.ndarray, nearest: np.ndarray, dist: np.ndarray
) -> np.ndarray:
    """Which points lie on the source grid (its cells' union)."""
    if src.kind == "latlon":
        assert src.lat_bounds is not None and src.lon_bounds is not None
        lo, hi = np.min(src.lat_bounds), np.max(src.lat_bounds)
        ok = (lat >= lo - _TOL) & (lat <= hi + _TOL)
        if not src.periodic:
            w = abs(src.lon_bounds[-1] - src.lon_bounds[0])
            ok &= _lon_offset(lon, float(np.min(src.lon_bounds[[0, -1]]))) <= w + _TOL
        return ok
    if src.kind == "projected":
        u, v = _raster_index(src, lon, lat)
        ny, nx = src.shape
        return (u >= -_TOL) & (u <= nx + _TOL) & (v >= -_TOL) & (v <= ny + _TOL)
    return dist <= _radius(src)[nearest] * (1 + 1e-9)


def _raster_index(src: CellGrid, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fractional (col, row) of points in a raster (cell corners at integers)."""
    from pyproj import CRS, Transformer

    tr = Transformer.from_crs(CRS.from_epsg(4326), CRS.from_user_input(src.crs), always_xy=True)
    with np.errstate(all="ignore"):
        x, y = tr.transform(lon, lat, errcheck=False)
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    a, b, c, d, e, f = src.transform
    det = a * e - b * d
    u = (e * (x - c) - b * (y - f)) / det
    v = (-d * (x - c) + a * (y - f)) / det
    bad = ~(np.isfinite(u) & np.isfinite(v))
    return np.where(bad, -1e30, u), np.where(bad, -1e30, v)


def _table(
    d: np.ndarray, s: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    keep = w > 0
    d, s, w = d[keep].astype(np.int64), s[keep].astype(np.int64), w[keep].astype(np.float64)
    order = np.lexsort((s, d))
    return d[order], s[order], w[order]


def nearest_weights(
    src: CellGrid, dst: CellGrid, rows: slice | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each target centre takes the source cell whose centre is nearest on the sphere
    (great-circle distance), where the centre lies on the source grid."""
    r = _rows(dst, rows)
    dist, k = cKDTree(src.centres).query(dst.centres[r])
    ok = _contains(src, dst.lon[r], dst.lat[r], k, dist)
    return _table(r[ok], k[ok], np.ones(int(ok.sum())))


def _axis_pos(c: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower index, fraction, valid) of points ``x`` between increasing centres ``c``."""
    i = np.clip(np.searchsorted(c, x, side="right") - 1, 0, c.size - 2)
    t = (x - c[i]) / (c[i + 1] - c[i])
    ok = (x >= c[0] - _TOL) & (x <= c[-1] + _TOL)
    return i, np.clip(t, 0.0, 1.0), ok


def _bilinear_latlon(src: CellGrid, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, ...]:
    assert src.lat_axis is not None and src.lon_axis is not None
    ny, nx = src.shape
    la, lo = src.lat_axis, src.lon_axis
    lat_flip, lon_flip = la[0] > la[-1], lo[0] > lo[-1]
    la, lo = (la[::-1] if lat_flip else la), (lo[::-1] if lon_flip else lo)
    i, t, ok_i = _axis_pos(la, lat)
    off = _lon_offset(lon, float(lo[0]))
    rel = lo - lo[0]
    if src.periodic:  # one more interval, from the last centre round to the first
        rel = np.append(rel, 360.0)
    j, s, ok_j = _axis_pos(rel, off)
    j1 = j + 1
    if src.periodic:
        j1 = np.where(j1 == nx, 0, j1)
    i0, i1 = i, i + 1
    if lat_flip:
        i0, i1 = ny - 1 - i0, ny - 1 - i1
    if lon_flip:
        j, j1 = nx - 1 - j, nx - 1 - j1
    idx = np.stack([i0 * nx + j, i0 * nx + j1, i1 * nx + j1, i1 * nx + j], axis=1)
    w = np.stack([(1 - t) * (1 - s), (1 - t) * s, t * s, t * (1 - s)], axis=1)
    return idx, w, ok_i & ok_j


def _bilinear_raster(src: CellGrid, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, ...]:
    ny, nx = src.shape
    u, v = _raster_index(src, lon, lat)
    u, v = u - 0.5, v - 0.5  # centres at integers
    ok = (u >= -_TOL) & (u <= nx - 1 + _TOL) & (v >= -_TOL) & (v <= ny - 1 + _TOL)
    j = np.clip(np.floor(u), 0, nx - 2).astype(np.int64)
    i = np.clip(np.floor(v), 0, ny - 2).astype(np.int64)
    s, t = np.clip(u - j, 0, 1), np.clip(v - i, 0, 1)
    idx = np.stack([i * nx + j, i * nx + j + 1, (i + 1) * nx + j + 1, (i + 1) * nx + j], axis=1)
    w = np.stack([(1 - t) * (1 - s), (1 - t) * s, t * s, t * (1 - s)], axis=1)
    return idx, w, ok


def _inverse_bilinear(q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u, v, found) with the origin = bilinear(q; u, v) for quads q (..., 4, 2) in the
    order a (0,0), b (1,0), c (1,1), d (0,1)."""
    a, b, c, d = q[..., 0, :], q[..., 1, :], q[..., 2, :], q[..., 3, :]
    e, f, g, h = b - a, d - a, a - b + c - d, -a

    def cross(p: np.ndarray, r: np.ndarray) -> np.ndarray:
        return p[..., 0] * r[..., 1] - p[..., 1] * r[..., 0]

    k2, k1, k0 = cross(g, f), cross(e, f) + cross(h, g), cross(h, e)
    scale = np.maximum(np.abs(cross(e, f)), 1e-300)
    linear = np.abs(k2) <= 1e-12 * scale
    with np.errstate(all="ignore"):
        disc = np.sqrt(np.maximum(k1 * k1 - 4 * k0 * k2, 0.0))
        v_lin = -k0 / k1
        cands = [
            np.where(linear, v_lin, (-k1 - disc) / (2 * k2)),
            np.where(linear, v_lin, (-k1 + disc) / (2 * k2)),
        ]
        best_u = np.full(k0.shape, np.nan)
        best_v = np.full(k0.shape, np.nan)
        for v in cands:
            dx, dy = e[..., 0] + g[..., 0] * v, e[..., 1] + g[..., 1] * v
            use_x = np.abs(dx) >= np.abs(dy)
            u = np.where(use_x, (h[..., 0] - f[..., 0] * v) / dx, (h[..., 1] - f[..., 1] * v) / dy)
            inside = (u >= -1e-9) & (u <= 1 + 1e-9) & (v >= -1e-9) & (v <= 1 + 1e-9)
            take = inside & np.isnan(best_u)
            best_u = np.where(take, u, best_u)
            best_v = np.where(take, v, best_v)
    found = ~np.isnan(best_u)
    return np.clip(np.nan_to_num(best_u), 0, 1), np.clip(np.nan_to_num(best_v), 0, 1), found


def _bilinear_curvilinear(src: CellGrid, dst_xyz: np.ndarray) -> tuple[np.ndarray, ...]:
    ny, nx = src.shape
    n = dst_xyz.shape[0]
    _, near = cKDTree(src.centres).query(dst_xyz, k=min(4, src.size))
    near = near.reshape(n, -1)
    # candidate quads of centres: those with a corner at one of the 4 nearest centres
    cj, ci = near // nx, near % nx
    oj, oi = np.meshgrid([-1, 0], [-1, 0], indexing="ij")
    qj = np.clip(cj[:, :, None] + oj.ravel()[None, None, :], 0, ny - 2).reshape(n, -1)
    qi = np.clip(ci[:, :, None] + oi.ravel()[None, None, :], 0, nx - 2).reshape(n, -1)
    idx = np.stack(
        [qj * nx + qi, qj * nx + qi + 1, (qj + 1) * nx + qi + 1, (qj + 1) * nx + qi], axis=-1
    )
    # gnomonic plane at each target point, the point at its origin
    c = dst_xyz
    z = np.array([0.0, 0.0, 1.0])
    east = np.cross(z, c)
    ne = np.linalg.norm(east, axis=-1, keepdims=True)
    east = np.where(ne > 1e-12, east / np.where(ne > 0, ne, 1.0), np.array([1.0, 0.0, 0.0]))
    north = np.cross(c, east)
    p = src.centres[idx]  # (n, m, 4, 3)
    dot = np.einsum("nmvk,nk->nmv", p, c)
    with np.errstate(all="ignore"):
        t = p / dot[..., None]
    plane = np.stack(
        [np.einsum("nmvk,nk->nmv", t, east), np.einsum("nmvk,nk->nmv", t, north)], axis=-1
    )
    u, v, found = _inverse_bilinear(plane)
    found &= np.all(dot > 1e-6, axis=-1)
    first = np.argmax(found, axis=1)
    ok = found[np.arange(n), first]
    u, v = u[np.arange(n), first], v[np.arange(n), first]
    w = np.stack([(1 - u) * (1 - v), u * (1 - v), u * v, (1 - u) * v], axis=1)
    return idx[np.arange(n), first], w, ok


def bilinear_weights(
    src: CellGrid, dst: CellGrid, rows: slice | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each target centre from the four source centres around it: bilinear in the
    source's index space (lat/lon degrees, or a raster's CRS coordinates), and for a
    curvilinear source in the quadrilateral of centres that holds it, solved in the
    gnomonic plane at the target centre. Target centres outside the source centres'
    hull get no weights."""
    r = _rows(dst, rows)
    if src.kind == "latlon":
        idx, w, ok = _bilinear_latlon(src, dst.lon[r], dst.lat[r])
    elif src.kind == "projected":
        idx, w, ok = _bilinear_raster(src, dst.lon[r], dst.lat[r])
    else:
        idx, w, ok = _bilinear_curvilinear(src, dst.centres[r])
    d = np.repeat(r[ok], 4)
    s, w = idx[ok].ravel(), w[ok].ravel()
    # a point on a centre gives one source several zero weights, or one twice: merge
    key = d * src.size + s
    uniq, inv = np.unique(key, return_inverse=True)
    return _table(uniq // src.size, uniq % src.size, np.bincount(inv, weights=w))


def _overlap_1d(da: np.ndarray, sa: np.ndarray, *, periodic: bool) -> np.ndarray:
    """Overlap lengths (n_dst, n_src) of intervals given by bounds (sorted per cell)."""
    d0, d1 = np.minimum(da[:-1], da[1:]), np.maximum(da[:-1], da[1:])
    s0, s1 = np.minimum(sa[:-1], sa[1:]), np.maximum(sa[:-1], sa[1:])
    shifts = (-720.0, -360.0, 0.0, 360.0, 720.0) if periodic else (0.0,)
    out = np.zeros((d0.size, s0.size))
    for k in shifts:
        out += np.maximum(
            0.0, np.minimum(d1[:, None], s1[None, :] + k) - np.maximum(d0[:, None], s0[None, :] + k)
        )
    return out


def _conservative_latlon(src: CellGrid, dst: CellGrid, r: np.ndarray) -> tuple[np.ndarray, ...]:
    assert src.lat_bounds is not None and dst.lat_bounds is not None
    assert src.lon_bounds is not None and dst.lon_bounds is not None
    lat = _overlap_1d(
        np.sin(np.radians(dst.lat_bounds)), np.sin(np.radians(src.lat_bounds)), periodic=False
    )
    lat /= np.abs(np.diff(np.sin(np.radians(dst.lat_bounds))))[:, None]
    lon = _overlap_1d(dst.lon_bounds, src.lon_bounds, periodic=True)
    lon /= np.abs(np.diff(dst.lon_bounds))[:, None]
    nxd, nxs = dst.shape[1], src.shape[1]
    rows = np.unique(r // nxd)
    ia, sa = np.nonzero(lat[rows])
    ia = rows[ia]
    jb, sb = np.nonzero(lon)
    d = (ia[:, None] * nxd + jb[None, :]).ravel()
    s = (sa[:, None] * nxs + sb[None, :]).ravel()
    w = (lat[ia, sa][:, None] * lon[jb, sb][None, :]).ravel()
    keep = np.isin(d, r)
    return d[keep], s[keep], w[keep]


def conservative_weights(
    src: CellGrid, dst: CellGrid, rows: slice | None = None, *, backend: str | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Area-weighted: ``weight = area(dst ∩ src) / area(dst)`` on the sphere.

    Lat/lon to lat/lon: exact and separable. Any other pair: cells as great-circle
    polygons through their corners, intersected exactly (:func:`overlap_areas`).
    """
    r = _rows(dst, rows)
    if src.kind == "latlon" and dst.kind == "latlon":
        return _table(*_conservative_latlon(src, dst, r))
    from minjiang.kernels.regrid import overlap_areas, polygon_areas

    rad_s, rad_d = _radius(src), _radius(dst)[r]
    # candidate pairs: centres closer than the two circumradii together. The tree holds
    # the grid whose largest cell is smaller, so that a few large cells (a tripolar
    # grid's fold, say) widen only their own searches
    if r.size == 0:
        pair_d = pair_s = np.zeros(0, np.int64)
    elif rad_d.max() <= rad_s.max():
        hits = cKDTree(dst.centres[r]).query_ball_point(src.centres, rad_s + rad_d.max() + 1e-12)
        counts = np.fromiter((len(h) for h in hits), dtype=np.int64, count=len(hits))
        pair_s = np.repeat(np.arange(src.size), counts)
        pair_d = r[
            np.fromiter((i for h in hits for i in h), dtype=np.int64, count=int(counts.sum()))
        ]
    else:
        hits = cKDTree(src.centres).query_ball_point(dst.centres[r], rad_d + rad_s.max() + 1e-12)
        counts = np.fromiter((len(h) for h in hits), dtype=np.int64, count=len(hits))
        pair_d = np.repeat(r, counts)
        pair_s = np.fromiter((i for h in hits for i in h), dtype=np.int64, count=int(counts.sum()))
    full_rad = np.zeros(dst.size)
    full_rad[r] = rad_d
    gap = np.linalg.norm(dst.centres[pair_d] - src.centres[pair_s], axis=-1)
    near = gap <= full_rad[pair_d] + rad_s[pair_s] + 1e-12
    pair_d, pair_s = pair_d[near], pair_s[near]
    area = overlap_areas(dst.corners, src.corners, pair_d, pair_s, backend=backend)
    dst_area = polygon_areas(dst.corners[r], backend=backend)
    full = np.zeros(dst.size)
    full[r] = dst_area
    w = area / np.where(full[pair_d] > 0, full[pair_d], 1.0)
    return _table(pair_d, pair_s, np.where(w > 1e-14, w, 0.0))


def regrid_weights(
    src: CellGrid,
    dst: CellGrid,
    method: str,
    rows: slice | None = None,
    *,
    backend: str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The weight table ``(dst, src, weight)`` of ``method`` for the target cells
    ``rows`` (all by default)."""
    if method == "nearest":
        return nearest_weights(src, dst, rows)
    if method == "bilinear":
        return bilinear_weights(src, dst, rows)
    if method == "conservative":
        return conservative_weights(src, dst, rows, backend=backend)
    raise ValueError(f"unknown regrid method {method!r}; expected one of {METHODS!r}")

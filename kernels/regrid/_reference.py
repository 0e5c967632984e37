"""NumPy/SciPy specification of the regrid kernels, written apart from the numba loops.

* :func:`apply_weights`: two sparse products (SciPy CSR), one of the values with NaN
  set to 0 and one of the validity mask, and their ratio.
* :func:`overlap_areas`: the intersection of two convex cells, vectorised over all
  pairs at once and built differently from the numba kernel's Sutherland–Hodgman
  clipping: its vertices are the corners of each cell inside the other and the
  crossings of every edge pair, found in the gnomonic plane of the pair, ordered by
  angle about their mean and summed as a fan of spherical triangles (solid angles of
  the gnomonic vectors ``(u, v, 1)``). It holds for
  convex cells only (the numba kernel also takes one non-convex cell of a pair).
"""

from __future__ import annotations

import numpy as np


def apply_weights(
    x: np.ndarray,
    dst: np.ndarray,
    src: np.ndarray,
    weight: np.ndarray,
    n_dst: int,
    min_valid_fraction: float,
) -> np.ndarray:
    from scipy import sparse  # type: ignore[import-untyped]

    k, n_src = x.shape
    w = sparse.csr_matrix((weight, (dst, src)), shape=(n_dst, n_src))
    valid = ~np.isnan(x)
    num = (w @ np.where(valid, x, 0.0).astype(np.float64).T).T
    wv = (w @ valid.astype(np.float64).T).T
    ok = (wv > 0) & (wv >= min_valid_fraction - 1e-9)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, num / np.where(ok, wv, 1.0), np.nan).reshape(k, n_dst)


def _basis(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """East and north unit vectors of the tangent plane at each unit vector ``c``."""
    z = np.array([0.0, 0.0, 1.0])
    e = np.cross(z, c)
    n = np.linalg.norm(e, axis=-1, keepdims=True)
    polar = n[..., 0] < 1e-12
    e = np.where(polar[..., None], np.array([1.0, 0.0, 0.0]), e / np.where(n > 0, n, 1.0))
    return e, np.cross(c, e)


def _to_plane(p: np.ndarray, c: np.ndarray, e: np.ndarray, n: np.ndarray) -> np.ndarray:
    d = np.einsum("...k,...k->...", p, c[:, None, :])
    t = p / d[..., None]
    return np.stack(
        [
            np.einsum("...k,...k->...", t, e[:, None, :]),
            np.einsum("...k,...k->...", t, n[:, None, :]),
        ],
        axis=-1,
    )


def _signed2(poly: np.ndarray) -> np.ndarray:
    x, y = poly[..., 0], poly[..., 1]
    return np.sum(x * np.roll(y, -1, axis=-1) - np.roll(x, -1, axis=-1) * y, axis=-1)


def _inside(points: np.ndarray, poly: np.ndarray, tol: np.ndarray) -> np.ndarray:
    """Points (P, m, 2) inside or on the convex counter-clockwise polygons (P, v, 2)."""
    a = poly[:, None, :, :]
    b = np.roll(poly, -1, axis=1)[:, None, :, :]
    p = points[:, :, None, :]
    cross = (b[..., 0] - a[..., 0]) * (p[..., 1] - a[..., 1]) - (b[..., 1] - a[..., 1]) * (
        p[..., 0] - a[..., 0]
    )
    return np.all(cross >= -tol[:, None, None], axis=-1)


def _crossings(pa: np.ndarray, pb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Intersections of every edge of ``pa`` with every edge of ``pb`` (P, va*vb, 2)."""
    a0 = pa[:, :, None, :]
    a1 = np.roll(pa, -1, axis=1)[:, :, None, :]
    b0 = pb[:, None, :, :]
    b1 = np.roll(pb, -1, axis=1)[:, None, :, :]
    r, s = a1 - a0, b1 - b0
    den = r[..., 0] * s[..., 1] - r[..., 1] * s[..., 0]
    q = b0 - a0
    safe = np.where(den != 0, den, 1.0)
    t = (q[..., 0] * s[..., 1] - q[..., 1] * s[..., 0]) / safe
    u = (q[..., 0] * r[..., 1] - q[..., 1] * r[..., 0]) / safe
    tol = 1e-9
    ok = (den != 0) & (t >= -tol) & (t <= 1 + tol) & (u >= -tol) & (u <= 1 + tol)
    pts = a0 + t[..., None] * r
    p = pa.shape[0]
    return pts.reshape(p, -1, 2), ok.reshape(p, -1)


def _plane_fan(uv: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Areas on the sphere of polygons given by gnomonic coordinates (P, m, 2), the
    first ``count`` in order: a fan of Van Oosterom–Strackee solid angles of the
    vectors (u, v, 1), whose triple product is the planar cross product."""
    m = uv.shape[1]
    idx = np.arange(m)[None, :]
    nxt = np.where(idx + 1 < count[:, None], idx + 1, 0)
    a = np.broadcast_to(uv[:, :1, :], uv.shape)
    b = uv
    c = np.take_along_axis(uv, nxt[..., None], axis=1)
    det = (b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) - (c[..., 0] - a[..., 0]) * (
        b[..., 1] - a[..., 1]
    )

    def norm(p: np.ndarray) -> np.ndarray:
        return np.sqrt(1 + p[..., 0] ** 2 + p[..., 1] ** 2)

    def dot(p: np.ndarray, q: np.ndarray) -> np.ndarray:
        return p[..., 0] * q[..., 0] + p[..., 1] * q[..., 1] + 1

    ra, rb, rc = norm(a), norm(b), norm(c)
    den = ra * rb * rc + dot(a, b) * rc + dot(a, c) * rb + dot(b, c) * ra
    tri = 2 * np.arctan2(det, den)
    use = (idx >= 1) & (idx < count[:, None] - 1)
    return np.abs(np.sum(np.where(use, tri, 0.0), axis=1))


def polygon_areas(cells: np.ndarray) -> np.ndarray:
    """Areas on the unit sphere of cells (N, v, 3) with great-circle edges."""
    cells = np.asarray(cells, dtype=np.float64)
    n, v, _ = cells.shape
    c = cells.sum(axis=1)
    c /= np.linalg.norm(c, axis=-1, keepdims=True)
    e, north = _basis(c)
    return _plane_fan(_to_plane(cells, c, e, north), np.full(n, v))


def overlap_areas(
    dst_cells: np.ndarray, src_cells: np.ndarray, pair_dst: np.ndarray, pair_src: np.ndarray
) -> np.ndarray:
    a3 = np.asarray(dst_cells, dtype=np.float64)[pair_dst]
    b3 = np.asarray(src_cells, dtype=np.float64)[pair_src]
    p = a3.shape[0]
    if p == 0:
        return np.zeros(0)
    c = a3.sum(axis=1)
    c /= np.linalg.norm(c, axis=-1, keepdims=True)
    e, n = _basis(c)
    far = np.einsum("pvk,pk->pv", b3, c).min(axis=1) <= 1e-6
    b3 = np.where(far[:, None, None], a3, b3)  # kept finite; their area is set to 0 below
    pa, pb = _to_plane(a3, c, e, n), _to_plane(b3, c, e, n)
    # both counter-clockwise for the inside tests
    pa = np.where((_signed2(pa) < 0)[:, None, None], pa[:, ::-1], pa)
    pb = np.where((_signed2(pb) < 0)[:, None, None], pb[:, ::-1], pb)
    # "on the edge" within rounding of the pair's size
    size = np.max(np.abs(pa), axis=(1, 2)) + np.max(np.abs(pb), axis=(1, 2))
    tol = 1e-12 * size * size
    cross, cross_ok = _crossings(pa, pb)
    pts = np.concatenate([pa, pb, cross], axis=1)
    ok = np.concatenate([_inside(pa, pb, tol), _inside(pb, pa, tol), cross_ok], axis=1)
    count = ok.sum(axis=1)
    centre = np.sum(np.where(ok[..., None], pts, 0.0), axis=1) / np.maximum(count, 1)[:, None]
    ang = np.arctan2(pts[..., 1] - centre[:, None, 1], pts[..., 0] - centre[:, None, 0])
    order = np.argsort(np.where(ok, ang, np.inf), axis=1, kind="stable")
    pts = np.take_along_axis(pts, order[..., None], axis=1)
    area = _plane_fan(pts, count)
    return np.where((count >= 3) & ~far, area, 0.0)

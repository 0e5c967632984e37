"""NumPy/SciPy specification of the regrid kernels, written apart from the numba loops.

* :func:`apply_weights`: two sparse products (SciPy CSR), one of the values with NaN
  set to 0 and one of the validity mask, and their ratio.
* :func:`overlap_areas`: the intersection of two convex cells, vectorised over all
  pairs at once and built differently from the numba kernel's Sutherland–Hodgman
  clipping: its vertices are the corners of each cell inside the other and the
  crossings of every edge pair, found in the gnomonic plane of the pair, ordered by
  angle about their mean and summed as a fan of spherical triangles. It holds for
  convex cells only (the numba kernel also takes one non-convex cell of a pair).
"""

from __future__ import annotations

import numpy as np

#: tolerance (gnomonic plane units, about radians) for "on the edge" tests
_EPS = 1e-12


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


def _inside(points: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Points (P, m, 2) inside or on the convex counter-clockwise polygons (P, v, 2)."""
    a = poly[:, None, :, :]
    b = np.roll(poly, -1, axis=1)[:, None, :, :]
    p = points[:, :, None, :]
    cross = (b[..., 0] - a[..., 0]) * (p[..., 1] - a[..., 1]) - (b[..., 1] - a[..., 1]) * (
        p[..., 0] - a[..., 0]
    )
    return np.all(cross >= -_EPS, axis=-1)


def _crossings(pa: np.ndarray, pb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Intersections of every edge of ``pa`` with every edge of ``pb`` (P, va*vb, 2)."""
    a0 = pa[:, :, None, :]
    a1 = np.roll(pa, -1, axis=1)[:, :, None, :]
    b0 = pb[:, None, :, :]
    b1 = np.roll(pb, -1, axis=1)[:, None, :, :]
    r, s = a1 - a0, b1 - b0
    den = r[..., 0] * s[..., 1] - r[..., 1] * s[..., 0]
    q = b0 - a0
    safe = np.where(np.abs(den) > 1e-300, den, 1.0)
    t = (q[..., 0] * s[..., 1] - q[..., 1] * s[..., 0]) / safe
    u = (q[..., 0] * r[..., 1] - q[..., 1] * r[..., 0]) / safe
    ok = (np.abs(den) > 1e-300) & (t >= -_EPS) & (t <= 1 + _EPS) & (u >= -_EPS) & (u <= 1 + _EPS)
    pts = a0 + t[..., None] * r
    p = pa.shape[0]
    return pts.reshape(p, -1, 2), ok.reshape(p, -1)


def _fan_area(v: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Area of spherical polygons (P, m, 3) whose first ``count`` vertices are in order."""
    m = v.shape[1]
    idx = np.arange(m)[None, :]
    nxt = np.where(idx + 1 < count[:, None], idx + 1, 0)
    a = v[:, :1, :]
    b = v
    c = np.take_along_axis(v, nxt[..., None], axis=1)
    num = np.einsum("pmk,pmk->pm", np.broadcast_to(a, b.shape), np.cross(b, c))
    den = 1 + np.einsum("pmk,pmk->pm", np.broadcast_to(a, b.shape), b)
    den = (
        den
        + np.einsum("pmk,pmk->pm", b, c)
        + np.einsum("pmk,pmk->pm", c, np.broadcast_to(a, b.shape))
    )
    tri = 2 * np.arctan2(num, den)
    use = (idx >= 1) & (idx < count[:, None] - 1)
    return np.abs(np.sum(np.where(use, tri, 0.0), axis=1))


def polygon_areas(cells: np.ndarray) -> np.ndarray:
    """Areas on the unit sphere of cells (N, v, 3) with great-circle edges."""
    cells = np.asarray(cells, dtype=np.float64)
    n, v, _ = cells.shape
    return _fan_area(cells, np.full(n, v))


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
    cross, cross_ok = _crossings(pa, pb)
    pts = np.concatenate([pa, pb, cross], axis=1)
    ok = np.concatenate([_inside(pa, pb), _inside(pb, pa), cross_ok], axis=1)
    count = ok.sum(axis=1)
    centre = np.sum(np.where(ok[..., None], pts, 0.0), axis=1) / np.maximum(count, 1)[:, None]
    ang = np.arctan2(pts[..., 1] - centre[:, None, 1], pts[..., 0] - centre[:, None, 0])
    order = np.argsort(np.where(ok, ang, np.inf), axis=1, kind="stable")
    pts = np.take_along_axis(pts, order[..., None], axis=1)
    # back onto the sphere: gnomonic (u, v) -> c + u e + v n, normalised
    v3 = c[:, None, :] + pts[..., :1] * e[:, None, :] + pts[..., 1:] * n[:, None, :]
    v3 /= np.linalg.norm(v3, axis=-1, keepdims=True)
    area = _fan_area(v3, count)
    return np.where((count >= 3) & ~far, area, 0.0)

"""numba kernels for regridding: applying sparse weights, and the exact overlap of
cells with great-circle edges (the hot loop of conservative weights).

``_apply`` walks the target cells (CSR rows, in parallel) and, per row, the planes of
the block: NaN sources are left out and the row renormalised by the valid weight.

``_overlaps`` clips, pair by pair, the source cell by the target cell with
Sutherland–Hodgman in the target cell's gnomonic plane, where great-circle edges are
straight lines, and sums the clipped polygon as a fan of spherical triangles
(Van Oosterom–Strackee's solid angle of the gnomonic vectors ``(u, v, 1)``, whose
triple product is the planar cross product: exact for cells of metres as of degrees). The clipping cell must be
convex (the clipped one need not be): a non-convex target cell is clipped by a convex
source cell instead. Two non-convex cells are clipped as if the target were convex.
"""

from __future__ import annotations

import math

import numba
import numpy as np

#: most vertices a clipped polygon can have (a cell of v corners clipped by one of w)
_MAX_V = 32


@numba.njit(cache=True, nogil=True, parallel=True)
def _apply(
    x: np.ndarray,
    indptr: np.ndarray,
    src: np.ndarray,
    weight: np.ndarray,
    min_valid: float,
    out: np.ndarray,
) -> None:
    k, n_dst = out.shape
    for i in numba.prange(n_dst):
        lo, hi = indptr[i], indptr[i + 1]
        for p in range(k):
            num = 0.0
            wv = 0.0
            for e in range(lo, hi):
                v = x[p, src[e]]
                if v == v:
                    num += weight[e] * v
                    wv += weight[e]
            if wv > 0 and wv >= min_valid - 1e-9:
                out[p, i] = num / wv
            else:
                out[p, i] = np.nan


@numba.njit(cache=True, nogil=True, inline="always")
def _tri(u0: float, v0: float, u1: float, v1: float, u2: float, v2: float) -> float:
    # signed solid angle of the spherical triangle whose gnomonic coordinates are given:
    # Van Oosterom-Strackee on the vectors (u, v, 1); the triple product is the planar
    # cross product, exact for small triangles where one of unit vectors cancels
    det = (u1 - u0) * (v2 - v0) - (u2 - u0) * (v1 - v0)
    r0 = math.sqrt(1.0 + u0 * u0 + v0 * v0)
    r1 = math.sqrt(1.0 + u1 * u1 + v1 * v1)
    r2 = math.sqrt(1.0 + u2 * u2 + v2 * v2)
    d01 = u0 * u1 + v0 * v1 + 1.0
    d02 = u0 * u2 + v0 * v2 + 1.0
    d12 = u1 * u2 + v1 * v2 + 1.0
    return 2.0 * math.atan2(det, r0 * r1 * r2 + d01 * r2 + d02 * r1 + d12 * r0)


@numba.njit(cache=True, nogil=True, inline="always")
def _frame(c: np.ndarray, e: np.ndarray, n: np.ndarray) -> None:
    # east = z x c (x axis at the poles), north = c x east
    e[0], e[1], e[2] = -c[1], c[0], 0.0
    ne = math.sqrt(e[0] ** 2 + e[1] ** 2)
    if ne < 1e-12:
        e[0], e[1], e[2] = 1.0, 0.0, 0.0
    else:
        e[0] /= ne
        e[1] /= ne
    n[0] = c[1] * e[2] - c[2] * e[1]
    n[1] = c[2] * e[0] - c[0] * e[2]
    n[2] = c[0] * e[1] - c[1] * e[0]


@numba.njit(cache=True, nogil=True)
def _areas(cells: np.ndarray) -> np.ndarray:
    n_cells, v, _ = cells.shape
    out = np.empty(n_cells)
    c = np.empty(3)
    e = np.empty(3)
    n = np.empty(3)
    uv = np.empty((v, 2))
    for i in range(n_cells):
        for t in range(3):
            c[t] = 0.0
            for j in range(v):
                c[t] += cells[i, j, t]
        nc = math.sqrt(c[0] ** 2 + c[1] ** 2 + c[2] ** 2)
        for t in range(3):
            c[t] /= nc
        _frame(c, e, n)
        for j in range(v):
            p = cells[i, j]
            d = p[0] * c[0] + p[1] * c[1] + p[2] * c[2]
            uv[j, 0] = (p[0] * e[0] + p[1] * e[1] + p[2] * e[2]) / d
            uv[j, 1] = (p[0] * n[0] + p[1] * n[1] + p[2] * n[2]) / d
        s = 0.0
        for j in range(1, v - 1):
            s += _tri(uv[0, 0], uv[0, 1], uv[j, 0], uv[j, 1], uv[j + 1, 0], uv[j + 1, 1])
        out[i] = abs(s)
    return out


@numba.njit(cache=True, nogil=True)
def _convex(p: np.ndarray, m: int) -> bool:
    pos = 0.0
    neg = 0.0
    for j in range(m):
        k, q = (j + 1) % m, (j + 2) % m
        cr = (p[k, 0] - p[j, 0]) * (p[q, 1] - p[k, 1]) - (p[k, 1] - p[j, 1]) * (p[q, 0] - p[k, 0])
        pos = max(pos, cr)
        neg = max(neg, -cr)
    # a turn the other way within rounding of the largest is still convex
    return min(pos, neg) <= 1e-9 * max(pos, neg)


@numba.njit(cache=True, nogil=True)
def _clip_area(
    a3: np.ndarray, b3: np.ndarray, c: np.ndarray, e: np.ndarray, n: np.ndarray
) -> float:
    va, vb = a3.shape[0], b3.shape[0]
    clip = np.empty((va, 2))
    poly = np.empty((_MAX_V, 2))
    nxt = np.empty((_MAX_V, 2))
    for j in range(vb):
        d = b3[j, 0] * c[0] + b3[j, 1] * c[1] + b3[j, 2] * c[2]
        if d <= 1e-6:  # over the horizon of the target cell: no overlap
            return 0.0
        poly[j, 0] = (b3[j, 0] * e[0] + b3[j, 1] * e[1] + b3[j, 2] * e[2]) / d
        poly[j, 1] = (b3[j, 0] * n[0] + b3[j, 1] * n[1] + b3[j, 2] * n[2]) / d
    m = vb
    s2 = 0.0
    for j in range(va):
        d = a3[j, 0] * c[0] + a3[j, 1] * c[1] + a3[j, 2] * c[2]
        clip[j, 0] = (a3[j, 0] * e[0] + a3[j, 1] * e[1] + a3[j, 2] * e[2]) / d
        clip[j, 1] = (a3[j, 0] * n[0] + a3[j, 1] * n[1] + a3[j, 2] * n[2]) / d
    if va == vb and not _convex(clip, va) and _convex(poly, vb):
        # the clipping cell must be convex; the overlap is the same either way round
        for j in range(va):
            for t in range(2):
                clip[j, t], poly[j, t] = poly[j, t], clip[j, t]
    for j in range(va):
        k = (j + 1) % va
        s2 += clip[j, 0] * clip[k, 1] - clip[k, 0] * clip[j, 1]
    ccw = s2 >= 0
    for jj in range(va):
        j = jj if ccw else va - 1 - jj
        k = (j + 1) % va if ccw else (j - 1) % va
        ax, ay = clip[j, 0], clip[j, 1]
        dx, dy = clip[k, 0] - ax, clip[k, 1] - ay
        if dx == 0.0 and dy == 0.0:
            continue  # a degenerate edge (two corners at a pole) clips nothing
        out = 0
        for q in range(m):
            r = (q + 1) % m
            px, py = poly[q, 0], poly[q, 1]
            qx, qy = poly[r, 0], poly[r, 1]
            sp = dx * (py - ay) - dy * (px - ax)
            sq = dx * (qy - ay) - dy * (qx - ax)
            pin = sp >= 0.0
            qin = sq >= 0.0
            if pin:
                nxt[out, 0], nxt[out, 1] = px, py
                out += 1
            if pin != qin:
                t = sp / (sp - sq)
                nxt[out, 0] = px + t * (qx - px)
                nxt[out, 1] = py + t * (qy - py)
                out += 1
        m = out
        if m < 3:
            return 0.0
        for q in range(m):
            poly[q, 0], poly[q, 1] = nxt[q, 0], nxt[q, 1]
    s = 0.0
    for q in range(1, m - 1):
        s += _tri(poly[0, 0], poly[0, 1], poly[q, 0], poly[q, 1], poly[q + 1, 0], poly[q + 1, 1])
    return abs(s)


@numba.njit(cache=True, nogil=True, parallel=True)
def _overlaps(
    dst_cells: np.ndarray, src_cells: np.ndarray, pair_dst: np.ndarray, pair_src: np.ndarray
) -> np.ndarray:
    p = pair_dst.shape[0]
    out = np.empty(p)
    for i in numba.prange(p):
        a3 = dst_cells[pair_dst[i]]
        b3 = src_cells[pair_src[i]]
        c = np.zeros(3)
        for j in range(a3.shape[0]):
            for t in range(3):
                c[t] += a3[j, t]
        nc = math.sqrt(c[0] ** 2 + c[1] ** 2 + c[2] ** 2)
        for t in range(3):
            c[t] /= nc
        e = np.empty(3)
        n = np.empty(3)
        _frame(c, e, n)
        out[i] = _clip_area(a3, b3, c, e, n)
    return out

"""numba kernels of the canopy height model (no validation inside).

``raster_tin`` walks each triangle's bounding box of cell centres and interpolates
with edge functions; see the package docstring for the ownership rule that makes every
centre belong to exactly one triangle.
"""

from __future__ import annotations

import math

import numba


@numba.njit(cache=True, nogil=True)
def grid_max(x, y, z, left, top, cell, r0, c0, out):  # pragma: no cover - jitted
    ny, nx = out.shape
    for k in range(x.size):
        r = math.floor((top - y[k]) / cell) - r0
        c = math.floor((x[k] - left) / cell) - c0
        if 0 <= r < ny and 0 <= c < nx:
            v = out[r, c]
            if math.isnan(v) or z[k] > v:
                out[r, c] = z[k]


@numba.njit(cache=True, inline="always")
def _before(x, y, i, j):  # pragma: no cover - jitted
    return x[i] < x[j] or (x[i] == x[j] and y[i] < y[j])


@numba.njit(cache=True, inline="always")
def _edge(x, y, u, v, px, py):  # pragma: no cover - jitted
    # the edge function of (u, v) taken in its canonical direction (u before v)
    if _before(x, y, v, u):
        u, v = v, u
    return (x[v] - x[u]) * (py - y[u]) - (y[v] - y[u]) * (px - x[u])


@numba.njit(cache=True, inline="always")
def _long(x, y, a, b, c, edge2):  # pragma: no cover - jitted
    return (
        (x[a] - x[b]) ** 2 + (y[a] - y[b]) ** 2 > edge2
        or (x[b] - x[c]) ** 2 + (y[b] - y[c]) ** 2 > edge2
        or (x[a] - x[c]) ** 2 + (y[a] - y[c]) ** 2 > edge2
    )


@numba.njit(cache=True, nogil=True)
def raster_tin(
    x, y, z, simplices, neighbors, left, top, cell, r0, c0, edge2, out
):  # pragma: no cover
    ny, nx = out.shape
    for t in range(simplices.shape[0]):
        # vertices in canonical order, so that the arithmetic depends on the set only
        a, b, c = simplices[t, 0], simplices[t, 1], simplices[t, 2]
        if _before(x, y, b, a):
            a, b = b, a
        if _before(x, y, c, b):
            b, c = c, b
        if _before(x, y, b, a):
            a, b = b, a
        if edge2 >= 0.0 and _long(x, y, a, b, c, edge2):
            continue
        # side of each edge the triangle lies on (sign of the edge function at the
        # opposite vertex), and whether the edge is on the hull (owned whole)
        sa = _edge(x, y, b, c, x[a], y[a])
        sb = _edge(x, y, c, a, x[b], y[b])
        sc = _edge(x, y, a, b, x[c], y[c])
        if sa == 0.0 or sb == 0.0 or sc == 0.0:
            continue  # degenerate (zero area)
        ha = hb = hc = False
        for k in range(3):
            o = simplices[t, k]
            if neighbors[t, k] < 0:  # the edge opposite vertex o has no neighbour
                if o == a:
                    ha = True
                elif o == b:
                    hb = True
                else:
                    hc = True
        xmin = min(x[a], x[b], x[c])
        xmax = max(x[a], x[b], x[c])
        ymin = min(y[a], y[b], y[c])
        ymax = max(y[a], y[b], y[c])
        j0 = max(math.floor((xmin - left) / cell - 0.5), c0)
        j1 = min(math.ceil((xmax - left) / cell - 0.5), c0 + nx - 1)
        i0 = max(math.floor((top - ymax) / cell - 0.5), r0)
        i1 = min(math.ceil((top - ymin) / cell - 0.5), r0 + ny - 1)
        for i in range(i0, i1 + 1):
            py = top - (i + 0.5) * cell
            for j in range(j0, j1 + 1):
                px = left + (j + 0.5) * cell
                ea = _edge(x, y, b, c, px, py)
                eb = _edge(x, y, c, a, px, py)
                ec = _edge(x, y, a, b, px, py)
                # inside: on the triangle's side of every edge; on an edge: owned by
                # the triangle on its positive side, or by its only triangle (hull)
                if ea == 0.0:
                    if not (sa > 0.0 or ha):
                        continue
                elif (ea > 0.0) != (sa > 0.0):
                    continue
                if eb == 0.0:
                    if not (sb > 0.0 or hb):
                        continue
                elif (eb > 0.0) != (sb > 0.0):
                    continue
                if ec == 0.0:
                    if not (sc > 0.0 or hc):
                        continue
                elif (ec > 0.0) != (sc > 0.0):
                    continue
                wa = ea if sa > 0.0 else -ea
                wb = eb if sb > 0.0 else -eb
                wc = ec if sc > 0.0 else -ec
                s = wa + wb + wc
                out[i - r0, j - c0] = (wa / s) * z[a] + (wb / s) * z[b] + (wc / s) * z[c]


@numba.njit(cache=True, nogil=True)
def tin_points(x, y, z, simplices, simplex, px, py, edge2, out):  # pragma: no cover - jitted
    for k in range(px.size):
        t = simplex[k]
        if t < 0:
            continue
        a, b, c = simplices[t, 0], simplices[t, 1], simplices[t, 2]
        if _before(x, y, b, a):
            a, b = b, a
        if _before(x, y, c, b):
            b, c = c, b
        if _before(x, y, b, a):
            a, b = b, a
        ea = _edge(x, y, b, c, px[k], py[k])
        eb = _edge(x, y, c, a, px[k], py[k])
        ec = _edge(x, y, a, b, px[k], py[k])
        # on an edge: the edge's own interpolation, whichever triangle Qhull returned
        if ea == 0.0:
            _on_edge(x, y, z, b, c, px[k], py[k], edge2, out, k)
            continue
        if eb == 0.0:
            _on_edge(x, y, z, c, a, px[k], py[k], edge2, out, k)
            continue
        if ec == 0.0:
            _on_edge(x, y, z, a, b, px[k], py[k], edge2, out, k)
            continue
        if edge2 >= 0.0 and _long(x, y, a, b, c, edge2):
            continue
        sa = _edge(x, y, b, c, x[a], y[a])
        sb = _edge(x, y, c, a, x[b], y[b])
        sc = _edge(x, y, a, b, x[c], y[c])
        if sa == 0.0 or sb == 0.0 or sc == 0.0:
            continue
        wa = ea / sa
        wb = eb / sb
        wc = ec / sc
        s = wa + wb + wc
        out[k] = (wa / s) * z[a] + (wb / s) * z[b] + (wc / s) * z[c]


@numba.njit(cache=True, inline="always")
def _on_edge(x, y, z, u, v, px, py, edge2, out, k):  # pragma: no cover - jitted
    if _before(x, y, v, u):
        u, v = v, u
    dx, dy = x[v] - x[u], y[v] - y[u]
    d2 = dx * dx + dy * dy
    if d2 == 0.0 or (edge2 >= 0.0 and d2 > edge2):
        return
    t = ((px - x[u]) * dx + (py - y[u]) * dy) / d2
    out[k] = z[u] + t * (z[v] - z[u])

"""numba CPU connected-component labelling (two-pass, union-find by smallest index)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, inline="always")
def _find(parent, i):  # pragma: no cover - compiled
    r = i
    while parent[r] != r:
        r = parent[r]
    while parent[i] != r:  # path compression
        nxt = parent[i]
        parent[i] = r
        i = nxt
    return r


@numba.njit(cache=True, nogil=True, inline="always")
def _union(parent, a, b):  # pragma: no cover - compiled
    ra = _find(parent, a)
    rb = _find(parent, b)
    if ra < rb:
        parent[rb] = ra
    elif rb < ra:
        parent[ra] = rb


@numba.njit(cache=True, nogil=True)
def label_local(fg, order):  # pragma: no cover - compiled
    # fg: 3-D bool/uint8. Raster scan unions each cell with its already visited
    # neighbours (offsets before it in C order); roots are then each component's first
    # cell, so the second scan numbers components by first appearance.
    nz, ny, nx = fg.shape
    n = nz * ny * nx
    parent = np.arange(n, dtype=np.int64)
    offs = np.empty((13, 3), dtype=np.int64)
    k = 0
    for dz in range(-1, 1):
        for dy in range(-1, 2):
            for dx in range(-1, 2):
                if dz == 0 and (dy > 0 or (dy == 0 and dx >= 0)):
                    continue
                c = abs(dz) + abs(dy) + abs(dx)
                if c <= order:
                    offs[k, 0] = dz
                    offs[k, 1] = dy
                    offs[k, 2] = dx
                    k += 1
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                if not fg[z, y, x]:
                    continue
                i = (z * ny + y) * nx + x
                for j in range(k):
                    zz = z + offs[j, 0]
                    yy = y + offs[j, 1]
                    xx = x + offs[j, 2]
                    if zz < 0 or yy < 0 or yy >= ny or xx < 0 or xx >= nx:
                        continue
                    if fg[zz, yy, xx]:
                        _union(parent, i, (zz * ny + yy) * nx + xx)
    labels = np.zeros((nz, ny, nx), dtype=np.int64)
    root_label = np.zeros(n, dtype=np.int64)
    count = 0
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                if not fg[z, y, x]:
                    continue
                r = _find(parent, (z * ny + y) * nx + x)
                if root_label[r] == 0:
                    count += 1
                    root_label[r] = count
                labels[z, y, x] = root_label[r]
    return labels, count


@numba.njit(cache=True, nogil=True)
def union_find_roots(p, q, n):  # pragma: no cover - compiled
    parent = np.arange(n, dtype=np.int64)
    for i in range(p.size):
        _union(parent, p[i], q[i])
    for i in range(n):
        parent[i] = _find(parent, i)
    return parent


@numba.njit(cache=True, nogil=True)
def _scan_pairs(padded, lo, hi, offs, out, emit):  # pragma: no cover - compiled
    nz, ny, nx = padded.shape
    k = 0
    last_a = -1
    last_b = -1
    for j in range(offs.shape[0]):
        dz, dy, dx = offs[j, 0], offs[j, 1], offs[j, 2]
        for z in range(max(lo[0], -dz), min(hi[0], nz - dz)):
            for y in range(max(lo[1], -dy), min(hi[1], ny - dy)):
                for x in range(max(lo[2], -dx), min(hi[2], nx - dx)):
                    a = padded[z, y, x]
                    if a <= 0:
                        continue
                    b = padded[z + dz, y + dy, x + dx]
                    if b <= 0 or a == b:
                        continue
                    if b < a:
                        a, b = b, a
                    if a == last_a and b == last_b:  # runs along a face repeat one pair
                        continue
                    last_a = a
                    last_b = b
                    if emit:
                        out[k, 0] = a
                        out[k, 1] = b
                    k += 1
    return k


@numba.njit(cache=True, nogil=True)
def face_equivalences(padded, lo, hi, offs):  # pragma: no cover - compiled
    dummy = np.empty((0, 2), dtype=np.int64)
    n = _scan_pairs(padded, lo, hi, offs, dummy, False)
    out = np.empty((n, 2), dtype=np.int64)
    _scan_pairs(padded, lo, hi, offs, out, True)
    return out

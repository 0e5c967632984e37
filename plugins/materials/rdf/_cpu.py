"""numba kernel of the pair-distance histogram: cell lists in fractional coordinates.

The cell is cut into ``n_i = floor(w_i / r_max)`` slabs along each lattice vector
(``w_i`` the distance between the cell's faces normal to it), so a pair closer than
``r_max`` is at most one slab apart along every axis and only the 27 neighbouring
boxes are searched: O(N) per frame at fixed density. Where an axis has fewer than
three slabs, the neighbour offsets are de-duplicated so that no box is visited twice.
With ``r_max`` at most half the smallest face distance a pair has at most one image
closer than ``r_max``; it is found among the 27 shifts of the wrapped fractional
difference, exactly as in the reference.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _frame(
    x, h, hinv, ncell, index_a, in_b, molecule, use_mol, r_min, r_max, nbins, counts, tric, half
):
    n = x.shape[0]
    s = np.empty((n, 3))
    for i in range(n):
        for k in range(3):
            v = x[i, 0] * hinv[0, k] + x[i, 1] * hinv[1, k] + x[i, 2] * hinv[2, k]
            s[i, k] = v - np.floor(v)
    nx, ny, nz = ncell[0], ncell[1], ncell[2]
    ntot = nx * ny * nz
    head = np.full(ntot, -1, dtype=np.int64)
    nxt = np.full(n, -1, dtype=np.int64)
    for i in range(n):
        if not in_b[i]:
            continue
        cx = min(int(s[i, 0] * nx), nx - 1)
        cy = min(int(s[i, 1] * ny), ny - 1)
        cz = min(int(s[i, 2] * nz), nz - 1)
        c = (cx * ny + cy) * nz + cz
        nxt[i] = head[c]
        head[c] = i
    # de-duplicated neighbour offsets per axis (fewer than three slabs wrap onto each other)
    offs = np.empty((3, 3), dtype=np.int64)
    noff = np.empty(3, dtype=np.int64)
    for ax in range(3):
        m = ncell[ax]
        if m >= 3:
            offs[ax, 0], offs[ax, 1], offs[ax, 2] = -1, 0, 1
            noff[ax] = 3
        elif m == 2:
            offs[ax, 0], offs[ax, 1] = 0, 1
            noff[ax] = 2
        else:
            offs[ax, 0] = 0
            noff[ax] = 1
    r2min, r2max = r_min * r_min, r_max * r_max
    scale = nbins / (r_max - r_min)
    for ia in range(index_a.shape[0]):
        a = index_a[ia]
        cx = min(int(s[a, 0] * nx), nx - 1)
        cy = min(int(s[a, 1] * ny), ny - 1)
        cz = min(int(s[a, 2] * nz), nz - 1)
        for ox in range(noff[0]):
            bx = (cx + offs[0, ox]) % nx
            for oy in range(noff[1]):
                by = (cy + offs[1, oy]) % ny
                for oz in range(noff[2]):
                    bz = (cz + offs[2, oz]) % nz
                    b = head[(bx * ny + by) * nz + bz]
                    while b >= 0:
                        # identical selections: each unordered pair once, counted twice
                        if (b > a if half else b != a) and not (
                            use_mol and molecule[a] == molecule[b]
                        ):
                            d0 = s[b, 0] - s[a, 0]
                            d1 = s[b, 1] - s[a, 1]
                            d2 = s[b, 2] - s[a, 2]
                            d0 -= np.floor(d0 + 0.5)
                            d1 -= np.floor(d1 + 0.5)
                            d2 -= np.floor(d2 + 0.5)
                            best = np.inf
                            lo, hi = (-1, 2) if tric else (0, 1)
                            for i in range(lo, hi):
                                for j in range(lo, hi):
                                    for k in range(lo, hi):
                                        e0, e1, e2 = d0 + i, d1 + j, d2 + k
                                        v0 = e0 * h[0, 0] + e1 * h[1, 0] + e2 * h[2, 0]
                                        v1 = e0 * h[0, 1] + e1 * h[1, 1] + e2 * h[2, 1]
                                        v2 = e0 * h[0, 2] + e1 * h[1, 2] + e2 * h[2, 2]
                                        r2 = v0 * v0 + v1 * v1 + v2 * v2
                                        if r2 < best:
                                            best = r2
                            if r2min <= best < r2max:
                                r = np.sqrt(best)
                                if r_min <= r < r_max:
                                    kb = int(np.floor((r - r_min) * scale))
                                    if kb > nbins - 1:
                                        kb = nbins - 1
                                    counts[kb] += 2 if half else 1
                        b = nxt[b]


def pair_histogram(
    positions: np.ndarray,
    cells: np.ndarray,
    index_a: np.ndarray,
    index_b: np.ndarray,
    molecule: np.ndarray | None,
    r_min: float,
    r_max: float,
    nbins: int,
) -> np.ndarray:
    """int64 counts of ordered A-B pairs per distance bin, summed over frames."""
    n = positions.shape[1]
    counts = np.zeros(nbins, dtype=np.int64)
    in_b = np.zeros(n, dtype=np.bool_)
    in_b[index_b] = True
    use_mol = molecule is not None
    mol = np.ascontiguousarray(molecule, dtype=np.int64) if use_mol else np.zeros(n, np.int64)
    ia = np.ascontiguousarray(index_a, dtype=np.int64)
    # the same atoms in both selections: the distance of (b, a) is that of (a, b) bit for
    # bit (the differences only change sign), so half the pairs are computed
    half = bool(np.array_equal(np.unique(index_a), np.unique(index_b)))
    for f in range(positions.shape[0]):
        h = np.ascontiguousarray(cells[f], dtype=np.float64)
        widths = face_distances(h)
        # at most ~4 boxes per B atom keeps the lists' memory O(N)
        ncell = np.maximum(np.floor(widths / r_max), 1).astype(np.int64)
        cap = max(round((4 * max(index_b.size, 1)) ** (1 / 3)), 3)
        ncell = np.minimum(ncell, cap)
        tric = bool(np.any(np.abs(h - np.diag(np.diag(h))) > 0))
        x = np.ascontiguousarray(positions[f], dtype=np.float64)
        hinv = np.linalg.inv(h)
        _frame(x, h, hinv, ncell, ia, in_b, mol, use_mol, r_min, r_max, nbins, counts, tric, half)
    return counts


def face_distances(h: np.ndarray) -> np.ndarray:
    """Distances between opposite faces of the cell with lattice vectors the rows of ``h``."""
    vol = abs(float(np.linalg.det(h)))
    return np.array(
        [vol / np.linalg.norm(np.cross(h[(i + 1) % 3], h[(i + 2) % 3])) for i in range(3)]
    )

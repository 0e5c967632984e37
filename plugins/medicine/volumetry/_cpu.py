"""numba CPU kernel of the per-label partial statistics (two passes over the block)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def label_stats(labels, values, has_values, oz, oy, ox):  # pragma: no cover - compiled
    nz, ny, nx = labels.shape
    slot = numba.typed.Dict.empty(key_type=numba.int64, value_type=numba.int64)
    order: list[np.int64] = []
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                lab = np.int64(labels[z, y, x])
                if lab > 0 and lab not in slot:
                    slot[lab] = len(order)
                    order.append(lab)
    n = len(order)
    count = np.zeros(n, np.int64)
    sums = np.zeros((3, n), np.int64)  # integer index sums: exact in any grouping
    lo = np.full((3, n), np.iinfo(np.int64).max, np.int64)
    hi = np.full((3, n), np.iinfo(np.int64).min, np.int64)
    valid = np.zeros(n, np.int64)
    isum = np.zeros(n, np.float64)
    imin = np.full(n, np.inf)
    imax = np.full(n, -np.inf)
    last_lab = np.int64(0)
    s = 0
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                lab = np.int64(labels[z, y, x])
                if lab <= 0:
                    continue
                if lab != last_lab:  # labels come in runs; skip the dict lookup
                    s = slot[lab]
                    last_lab = lab
                count[s] += 1
                g0, g1, g2 = z + oz, y + oy, x + ox
                sums[0, s] += g0
                sums[1, s] += g1
                sums[2, s] += g2
                if g0 < lo[0, s]:
                    lo[0, s] = g0
                if g1 < lo[1, s]:
                    lo[1, s] = g1
                if g2 < lo[2, s]:
                    lo[2, s] = g2
                if g0 + 1 > hi[0, s]:
                    hi[0, s] = g0 + 1
                if g1 + 1 > hi[1, s]:
                    hi[1, s] = g1 + 1
                if g2 + 1 > hi[2, s]:
                    hi[2, s] = g2 + 1
                if has_values:
                    v = np.float64(values[z, y, x])
                    if v == v:
                        valid[s] += 1
                        isum[s] += v
                        if v < imin[s]:
                            imin[s] = v
                        if v > imax[s]:
                            imax[s] = v
    labs = np.empty(n, np.int64)
    for i in range(n):
        labs[i] = order[i]
    return labs, count, sums, lo, hi, valid, isum, imin, imax

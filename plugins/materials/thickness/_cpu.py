"""numba local thickness: each eligible centre paints floor(dt) into its open ball."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _paint(dt, centres, lt):
    nz, ny, nx = dt.shape
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                if not centres[z, y, x]:
                    continue
                big = np.floor(dt[z, y, x])
                if big < 1:
                    continue
                r = int(big)
                r2 = big * big
                for dz in range(-r, r + 1):
                    zz = z + dz
                    if zz < 0 or zz >= nz:
                        continue
                    for dy in range(-r, r + 1):
                        yy = y + dy
                        if yy < 0 or yy >= ny:
                            continue
                        for dx in range(-r, r + 1):
                            xx = x + dx
                            if xx < 0 or xx >= nx:
                                continue
                            if dz * dz + dy * dy + dx * dx < r2 and lt[zz, yy, xx] < big:
                                lt[zz, yy, xx] = big


def paint(dt: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """float64 local thickness (in voxels) of a 3-D distance transform."""
    lt = np.zeros(dt.shape)
    _paint(
        np.ascontiguousarray(dt, dtype=np.float64),
        np.ascontiguousarray(centres, dtype=np.bool_),
        lt,
    )
    return lt

"""numba kernel of Horn's slope, aspect and hillshade (no validation inside); the
per-cell arithmetic is ``_cell.horn_cell``, shared with the GPU kernel."""

from __future__ import annotations

import numba
from minjiang.plugins.forestry.terrain._cell import horn_cell, make_horn_at, sun

_at = numba.njit(cache=True, nogil=True)(make_horn_at(numba.njit(nogil=True)(horn_cell)))
_sun = numba.njit(cache=True, nogil=True)(sun)


@numba.njit(cache=True, nogil=True)
def horn(z, ewres, nsres, z_factor, azimuth, altitude, out):  # pragma: no cover - jitted
    rows, cols = out.shape[1], out.shape[2]
    s1, s2, s3 = _sun(azimuth, altitude)
    for r in range(rows):
        ew8 = 8.0 * ewres[r]
        ns8 = 8.0 * nsres[r]
        for k in range(cols):
            out[0, r, k], out[1, r, k], out[2, r, k] = _at(z, r, k, ew8, ns8, z_factor, s1, s2, s3)

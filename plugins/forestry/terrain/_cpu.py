"""numba kernel of Horn's slope, aspect and hillshade (no validation inside); the
per-cell arithmetic is ``_cell.horn_cell``, shared with the GPU kernel."""

from __future__ import annotations

import numba
from minjiang.plugins.forestry.terrain._cell import horn_cell, sun

_cell = numba.njit(cache=True, nogil=True)(horn_cell)
_sun = numba.njit(cache=True, nogil=True)(sun)


@numba.njit(cache=True, nogil=True)
def horn(z, ewres, nsres, z_factor, azimuth, altitude, out):  # pragma: no cover - jitted
    rows, cols = out.shape[1], out.shape[2]
    sin_alt, cos_az_cos_alt, sin_az_cos_alt = _sun(azimuth, altitude)
    for r in range(rows):
        ew8 = 8.0 * ewres[r]
        ns8 = 8.0 * nsres[r]
        for k in range(cols):
            s, asp, hill = _cell(
                z[r, k],
                z[r, k + 1],
                z[r, k + 2],
                z[r + 1, k],
                z[r + 1, k + 2],
                z[r + 2, k],
                z[r + 2, k + 1],
                z[r + 2, k + 2],
                ew8,
                ns8,
                z_factor,
                sin_alt,
                cos_az_cos_alt,
                sin_az_cos_alt,
            )
            out[0, r, k] = s
            out[1, r, k] = asp
            out[2, r, k] = hill

"""numba kernel of Horn's slope, aspect and hillshade (no validation inside)."""

from __future__ import annotations

import math

import numba


@numba.njit(cache=True, nogil=True)
def horn(z, ewres, nsres, z_factor, azimuth, altitude, out):  # pragma: no cover - jitted
    rows, cols = out.shape[1], out.shape[2]
    az = math.radians(azimuth)
    alt = math.radians(altitude)
    sin_alt = math.sin(alt)
    cos_az_cos_alt = math.cos(az) * math.cos(alt)
    sin_az_cos_alt = math.sin(az) * math.cos(alt)
    for r in range(rows):
        ew8 = 8.0 * ewres[r]
        ns8 = 8.0 * nsres[r]
        for k in range(cols):
            a = z[r, k]
            b = z[r, k + 1]
            c = z[r, k + 2]
            d = z[r + 1, k]
            f = z[r + 1, k + 2]
            g = z[r + 2, k]
            h = z[r + 2, k + 1]
            i = z[r + 2, k + 2]
            dzdx = ((c + 2 * f + i) - (a + 2 * d + g)) / ew8
            dzdy = ((g + 2 * h + i) - (a + 2 * b + c)) / ns8
            s = math.degrees(math.atan(z_factor * math.hypot(dzdx, dzdy)))
            out[0, r, k] = s
            if math.isnan(s):
                out[1, r, k] = math.nan
                out[2, r, k] = math.nan
                continue
            if dzdx == 0 and dzdy == 0:
                out[1, r, k] = math.nan
            else:
                theta = math.degrees(math.atan2(dzdy, -dzdx))
                asp = 450.0 - theta if theta > 90.0 else 90.0 - theta
                out[1, r, k] = 0.0 if asp == 360.0 else asp
            x = -dzdx * z_factor
            y = -dzdy * z_factor
            cang = (sin_alt - (y * cos_az_cos_alt - x * sin_az_cos_alt)) / math.sqrt(
                1 + x * x + y * y
            )
            out[2, r, k] = 1.0 if cang <= 0 else 1.0 + 254.0 * cang

"""NumPy reference of Horn's slope, aspect and hillshade (the specification)."""

from __future__ import annotations

import numpy as np


def horn(
    z: np.ndarray,
    ewres: np.ndarray,
    nsres: np.ndarray,
    z_factor: float,
    azimuth: float,
    altitude: float,
) -> dict[str, np.ndarray]:
    a, b, c = z[:-2, :-2], z[:-2, 1:-1], z[:-2, 2:]
    d, f = z[1:-1, :-2], z[1:-1, 2:]
    g, h, i = z[2:, :-2], z[2:, 1:-1], z[2:, 2:]
    ew = ewres[:, None]
    dzdx = ((c + 2 * f + i) - (a + 2 * d + g)) / (8 * ew)
    dzdy = ((g + 2 * h + i) - (a + 2 * b + c)) / (8 * nsres[:, None])
    with np.errstate(invalid="ignore"):
        slope = np.degrees(np.arctan(z_factor * np.hypot(dzdx, dzdy)))
        theta = np.degrees(np.arctan2(dzdy, -dzdx))
        aspect = np.where(theta > 90.0, 450.0 - theta, 90.0 - theta)
        aspect = np.where(aspect == 360.0, 0.0, aspect)
        aspect = np.where((dzdx == 0) & (dzdy == 0), np.nan, aspect)
        # gdaldem hillshade: x, y as GDAL's (x = left - right, y = bottom - top, per cell size)
        x = -dzdx * z_factor
        y = -dzdy * z_factor
        az, alt = np.radians(azimuth), np.radians(altitude)
        cang = (
            np.sin(alt) - (y * np.cos(az) * np.cos(alt) - x * np.sin(az) * np.cos(alt))
        ) / np.sqrt(1 + x * x + y * y)
        shade = np.where(cang <= 0, 1.0, 1.0 + 254.0 * cang)
    nan = np.isnan(slope)
    shade[nan] = np.nan
    aspect[nan] = np.nan
    return {"slope": slope, "aspect": aspect, "hillshade": shade}

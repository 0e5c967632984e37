"""Horn's slope, aspect and hillshade of one cell, as plain Python: compiled by numba
for the CPU kernel (``_cpu.py``) and by ``numba.cuda`` as a device function for the GPU
kernel (``_gpu.py``), so both run the same operations in the same order."""

from __future__ import annotations

import math


def horn_cell(
    a: float,
    b: float,
    c: float,
    d: float,
    f: float,
    g: float,
    h: float,
    i: float,
    ew8: float,
    ns8: float,
    z_factor: float,
    sin_alt: float,
    cos_az_cos_alt: float,
    sin_az_cos_alt: float,
) -> tuple[float, float, float]:  # pragma: no cover - compiled
    """``(slope, aspect, hillshade)`` of the window ``a b c / d e f / g h i``."""
    dzdx = ((c + 2 * f + i) - (a + 2 * d + g)) / ew8
    dzdy = ((g + 2 * h + i) - (a + 2 * b + c)) / ns8
    s = math.degrees(math.atan(z_factor * math.hypot(dzdx, dzdy)))
    if math.isnan(s):
        return s, math.nan, math.nan
    if dzdx == 0 and dzdy == 0:
        asp = math.nan
    else:
        theta = math.degrees(math.atan2(dzdy, -dzdx))
        asp = 450.0 - theta if theta > 90.0 else 90.0 - theta
        if asp == 360.0:
            asp = 0.0
    x = -dzdx * z_factor
    y = -dzdy * z_factor
    cang = (sin_alt - (y * cos_az_cos_alt - x * sin_az_cos_alt)) / math.sqrt(1 + x * x + y * y)
    return s, asp, 1.0 if cang <= 0 else 1.0 + 254.0 * cang


def sun(azimuth: float, altitude: float) -> tuple[float, float, float]:  # pragma: no cover
    """``(sin(alt), cos(az) cos(alt), sin(az) cos(alt))`` of the sun, in degrees."""
    az = math.radians(azimuth)
    alt = math.radians(altitude)
    return math.sin(alt), math.cos(az) * math.cos(alt), math.sin(az) * math.cos(alt)

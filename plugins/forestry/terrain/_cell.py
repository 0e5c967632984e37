"""Horn's slope, aspect and hillshade of one cell, as plain Python: compiled by numba
for the CPU kernel (``_cpu.py``) and by ``numba.cuda`` as device functions for the GPU
kernel (``_gpu.py``), so both run the same operations in the same order; the window
gather around it (``make_horn_at``) is shared the same way."""

from __future__ import annotations

import math
from typing import Any


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


def make_horn_at(cell: Any) -> Any:
    """``horn_at(z, r, k, ew8, ns8, z_factor, *sun)``: ``cell`` (a compiled
    :func:`horn_cell`) of the window whose top-left cell is ``z[r, k]``, the output cell
    ``(r, k)`` of a 1-cell padded block. Each kernel compiles it around its own
    compiled ``horn_cell`` (numba and ``numba.cuda`` resolve the closure's function)."""

    def horn_at(z, r, k, ew8, ns8, z_factor, sin_alt, cos_az_cos_alt, sin_az_cos_alt):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
        return cell(
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

    return horn_at


def sun(azimuth: float, altitude: float) -> tuple[float, float, float]:  # pragma: no cover
    """``(sin(alt), cos(az) cos(alt), sin(az) cos(alt))`` of the sun, in degrees."""
    az = math.radians(azimuth)
    alt = math.radians(altitude)
    return math.sin(alt), math.cos(az) * math.cos(alt), math.sin(az) * math.cos(alt)

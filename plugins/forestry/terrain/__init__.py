"""Slope, aspect and hillshade by Horn's (1981) 3 x 3 method, with GDAL's conventions.

For the window ``a b c / d e f / g h i`` (rows north to south),

* ``dz/dx = ((c + 2f + i) - (a + 2d + g)) / (8 ewres)``,
  ``dz/dy = ((g + 2h + i) - (a + 2b + c)) / (8 nsres)`` (``nsres`` > 0, rows run south);
* slope in degrees ``atan(z_factor * hypot(dz/dx, dz/dy))`` (``gdaldem slope``);
* aspect in degrees clockwise from north, the direction the slope faces:
  ``theta = atan2(dz/dy, -dz/dx)``, ``aspect = 90 - theta`` (``+ 360`` when negative),
  NaN where the surface is flat (GDAL writes its nodata there; 360 becomes 0);
* hillshade as ``gdaldem hillshade``: ``1 + 254 * cos(incidence)``, 1 where the cell
  faces away from the sun, from the sun's ``azimuth`` and ``altitude`` in degrees.

Edge policy (GDAL's default, without ``-compute_edges``): a cell whose 3 x 3 window is
not complete (the first and last row and column of the raster) or holds a NaN is NaN.
``ewres`` may vary per row (geographic grids: metres per degree by latitude).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["horn_terrain"]


def horn_terrain(
    z: Any,
    ewres: Any,
    nsres: Any,
    *,
    z_factor: float = 1.0,
    azimuth: float = 315.0,
    altitude: float = 45.0,
    backend: str = "cpu",
) -> dict[str, np.ndarray]:
    """Slope, aspect and hillshade of the interior of a 1-cell padded block.

    Parameters
    ----------
    z : ndarray, shape (H + 2, W + 2)
        Elevations with a 1-cell halo; NaN marks missing cells (and the outside).
    ewres : float or ndarray of shape (H,)
        Cell width in the elevation's units, per interior row.
    nsres : float or ndarray of shape (H,)
        Cell height (positive), per interior row.
    z_factor, azimuth, altitude : float
        Vertical exaggeration; the sun's azimuth (clockwise from north) and altitude,
        in degrees.
    backend : {"reference", "cpu", "gpu"}
        The NumPy reference, the numba kernel, or the ``numba.cuda`` kernel (``z`` a
        CuPy array, or a NumPy one under numba's CUDA simulator).

    Returns
    -------
    dict with ``slope``, ``aspect``, ``hillshade`` of shape (H, W), float64 (CuPy
    arrays on the GPU backend).
    """
    if backend == "gpu":
        from minjiang.kernels import cuda as _cuda

        xp = _cuda.array_module(z)
        z = xp.asarray(z, dtype=xp.float64)
    else:
        z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] < 3 or z.shape[1] < 3:
        raise ValueError(f"horn_terrain: z must be 2-D with a 1-cell halo, got shape {z.shape}")
    rows = z.shape[0] - 2
    ew = np.broadcast_to(np.asarray(ewres, dtype=np.float64), (rows,)).copy()
    ns = np.broadcast_to(np.asarray(nsres, dtype=np.float64), (rows,)).copy()
    if not (np.all(ew > 0) and np.all(ns > 0)):
        raise ValueError("horn_terrain: cell sizes must be positive")
    args = (z, ew, ns, float(z_factor), float(azimuth), float(altitude))
    if backend == "reference":
        from minjiang.plugins.forestry.terrain._reference import horn as reference

        return reference(*args)
    if backend == "gpu":
        from minjiang.plugins.forestry.terrain._gpu import horn as gpu

        out = gpu(*args)
        return {"slope": out[0], "aspect": out[1], "hillshade": out[2]}
    if backend != "cpu":
        raise ValueError(f"horn_terrain: backend {backend!r} is not 'reference', 'cpu' or 'gpu'")
    from minjiang.plugins.forestry.terrain._cpu import horn as cpu

    out = np.empty((3, rows, z.shape[1] - 2))
    cpu(np.ascontiguousarray(z), ew, ns, *args[3:], out)
    return {"slope": out[0], "aspect": out[1], "hillshade": out[2]}

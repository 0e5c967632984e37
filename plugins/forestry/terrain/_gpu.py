"""GPU kernel of Horn's slope, aspect and hillshade (``numba.cuda``, one thread per
cell), compiling the per-cell source the CPU kernel compiles (``_cell.py``): the same
operations in the same order, so results agree with the CPU to CUDA's ``atan``,
``atan2`` and ``hypot`` (a few ulp). Written in numba so that it also runs under
numba's CUDA simulator, where ``tests/plugins/forestry/test_forestry_cudasim.py``
checks it."""

from __future__ import annotations

from typing import Any

from minjiang.kernels import cuda as _cuda
from minjiang.plugins.forestry.terrain._cell import horn_cell, make_horn_at, sun
from numba import cuda

__all__ = ["horn"]


def _build() -> Any:
    at = cuda.jit(device=True)(make_horn_at(cuda.jit(device=True)(horn_cell)))

    @cuda.jit
    def kernel(z, ewres, nsres, z_factor, s1, s2, s3, out):
        rows, cols = out.shape[1], out.shape[2]
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for n in range(start, rows * cols, stride):
            r = n // cols
            k = n - r * cols
            s, asp, hill = at(z, r, k, 8.0 * ewres[r], 8.0 * nsres[r], z_factor, s1, s2, s3)
            out[0, r, k] = s
            out[1, r, k] = asp
            out[2, r, k] = hill

    return kernel


def horn(z: Any, ewres: Any, nsres: Any, z_factor: float, azimuth: float, altitude: float) -> Any:
    """``(3, H, W)`` slope, aspect, hillshade of device ``z`` (``(H + 2, W + 2)``,
    float64); ``ewres``/``nsres`` per interior row (NumPy arrays only under the
    simulator)."""
    xp = _cuda.array_module(z)
    rows, cols = z.shape[0] - 2, z.shape[1] - 2
    out = xp.empty((3, rows, cols), dtype=xp.float64)
    sin_alt, cos_az_cos_alt, sin_az_cos_alt = sun(azimuth, altitude)
    kernel = _cuda.cached(("forestry.horn",), _build)
    _cuda.launch(
        kernel,
        rows * cols,
        xp.ascontiguousarray(z),
        xp.asarray(ewres, dtype=xp.float64),
        xp.asarray(nsres, dtype=xp.float64),
        float(z_factor),
        sin_alt,
        cos_az_cos_alt,
        sin_az_cos_alt,
        out,
    )
    return out

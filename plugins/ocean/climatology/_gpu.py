"""GPU kernels of the climatology statistics (``numba.cuda``).

``pooled_stats`` runs one thread per (pool, pixel). The thread gathers the finite
samples of its pool through the CSR table into a per-thread buffer, adds them in
table order for the mean (the CPU kernel's order, so means equal the CPU's bit for
bit) and takes the two order statistics that NumPy's ``linear`` percentile
interpolates with Hoare selection (the median kernels' ``select_kth``) plus a
minimum scan, instead of sorting: the values are the same, the work is linear in
the pool size rather than quadratic (insertion sort) and there is no sort in
``numba.cuda``. The interpolation is the shared :mod:`._quantile` source, so
percentiles are exact. The buffer's length is a compile-time constant, so a kernel
is compiled per pool capacity (rounded up to a multiple of 64) and cached per device.

``smooth_circular`` runs one thread per (day, pixel) and adds its window's values
from 0.0 in window order, as the CPU kernel does.

Threads are laid out pixel-fastest: the sample matrices are (sample, pixel) in
memory (the data's own (time, space) order), so a warp's loads are coalesced.
The public functions take and return (pixel, ...) arrays as ``_cpu`` does; these are
transposed views of the (…, pixel) buffers, which the kernels read through strides.

Why ``numba.cuda``: gathering, selection and interpolation are branchy per-thread
code with no CuPy primitive; the kernels are plain Python that also run under
numba's CUDA simulator, where ``tests/plugins/ocean/test_ocean_cudasim.py`` checks
them against the NumPy reference.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from minjiang.kernels import cuda as _cuda
from minjiang.kernels.median import select_kth
from minjiang.plugins.ocean.climatology._pools import Pools
from minjiang.plugins.ocean.climatology._quantile import lerp, virtual_index
from numba import cuda, float64

__all__ = ["pooled_stats", "smooth_circular"]

_CAPACITY_STEP = 64  # pool capacities are rounded up to this: fewer compiled variants


def _build_pooled(capacity: int) -> Any:
    select = cuda.jit(device=True)(select_kth)
    position = cuda.jit(device=True)(virtual_index)
    interpolate = cuda.jit(device=True)(lerp)

    @cuda.jit
    def pooled(values, offsets, index, q, seas, thresh):
        # values: (pixel, sample) view; seas, thresh: (pixel, pool) views
        npix, npool = seas.shape
        buf = cuda.local.array(capacity, float64)
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for item in range(start, npix * npool, stride):
            k = item // npix
            p = item - k * npix
            n = 0
            total = 0.0
            for j in range(offsets[k], offsets[k + 1]):
                v = float64(values[p, index[j]])
                if v == v:
                    buf[n] = v
                    total += v
                    n += 1
            if n == 0:
                seas[p, k] = math.nan
                thresh[p, k] = math.nan
                continue
            seas[p, k] = total / n
            vi = position(n, q)
            if vi <= 0.0:
                thresh[p, k] = select(buf, n, 0)
            elif vi >= n - 1:
                thresh[p, k] = select(buf, n, n - 1)
            else:
                lo = int(math.floor(vi))  # noqa: RUF046 - a float on the CUDA target
                x0 = select(buf, n, lo)
                # selection leaves every value right of ``lo`` >= x0: the next order
                # statistic is their minimum
                x1 = buf[lo + 1]
                for i in range(lo + 2, n):
                    if buf[i] < x1:
                        x1 = buf[i]
                thresh[p, k] = interpolate(x0, x1, vi - lo)

    return pooled


def _build_smooth() -> Any:
    @cuda.jit
    def smooth(clim, width, out):
        # clim, out: (pixel, day) views; the window wraps around the year
        npix, n = clim.shape
        h = width // 2
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for item in range(start, npix * n, stride):
            i = item // npix
            p = item - i * npix
            total = 0.0
            for j in range(width):
                d = (i - h + j) % n
                if d < 0:  # keep the wrap right whatever the target's modulo sign
                    d += n
                total += clim[p, d]
            out[p, i] = total / width

    return smooth


def pooled_stats(values: Any, pools: Pools, percentile: float) -> tuple[Any, Any]:
    """See :func:`minjiang.plugins.ocean.climatology._reference.pooled_stats`.

    ``values`` is a device (pixel, sample) array, best a transposed view of a
    (sample, pixel) C-contiguous array; ``seas`` and ``thresh`` are (pixel, pool)
    views of new (pool, pixel) C-contiguous float64 arrays.
    """
    xp = _cuda.array_module(values)
    npix = values.shape[0]
    npool = len(pools)
    seas = xp.empty((npool, npix), dtype=np.float64)
    thresh = xp.empty((npool, npix), dtype=np.float64)
    if npix and npool:
        sizes = np.diff(pools.offsets)
        longest = int(sizes.max()) if sizes.size else 0
        capacity = max(_CAPACITY_STEP, -(-longest // _CAPACITY_STEP) * _CAPACITY_STEP)
        kernel = _cuda.cached(("ocean.pooled_stats", capacity), lambda: _build_pooled(capacity))
        _cuda.launch(
            kernel,
            npix * npool,
            values,
            xp.asarray(pools.offsets),
            xp.asarray(pools.index),
            float(np.true_divide(percentile, 100)),
            seas.T,
            thresh.T,
        )
    return seas.T, thresh.T


def smooth_circular(clim: Any, width: int) -> Any:
    """See :func:`minjiang.plugins.ocean.climatology._reference.smooth_circular`.

    ``clim`` is a device (..., day) array; the result has its shape and is a
    transposed view of a (day, pixel) C-contiguous float64 array for 2-D input.
    """
    xp = _cuda.array_module(clim)
    n = clim.shape[-1]
    flat = clim.reshape(-1, n) if clim.ndim != 2 else clim
    out = xp.empty((n, flat.shape[0]), dtype=np.float64)
    if out.size:
        kernel = _cuda.cached(("ocean.smooth_circular",), _build_smooth)
        _cuda.launch(kernel, out.size, flat, int(width), out.T)
    return out.T.reshape(clim.shape) if clim.ndim != 2 else out.T


def spread(values: Any, cal: Any, y0: int, y1: int) -> Any:
    """Device version of :func:`minjiang.plugins.ocean.climatology._pools.spread`.

    Same element-wise operations (so the same values), laid out sample-major:
    returns a (pixel, n_years × 366) view of a (n_years × 366, pixel) array.
    """
    from minjiang.plugins.ocean._time import DOY_FEB29

    xp = _cuda.array_module(values)
    n_years = y1 - y0 + 1
    npix = values.shape[0]
    sel = np.flatnonzero((cal.year >= y0) & (cal.year <= y1))
    flat = (cal.year[sel] - y0) * 366 + (cal.doy[sel] - 1)
    block = xp.full((366 * n_years, npix), np.nan, dtype=np.float64)
    block[xp.asarray(flat)] = values.T[xp.asarray(sel)]
    mat = block.reshape(n_years, 366, npix)
    feb28, feb29, mar1 = mat[:, DOY_FEB29 - 2], mat[:, DOY_FEB29 - 1], mat[:, DOY_FEB29]
    missing = xp.isnan(feb29)
    fill = xp.where(xp.isnan(feb28), mar1, xp.where(xp.isnan(mar1), feb28, (feb28 + mar1) / 2.0))
    fill = xp.sign(fill) * xp.floor(xp.abs(fill) * 100.0 + 0.5) / 100.0  # C's round(), 2 decimals
    feb29[missing] = fill[missing]
    return block.T

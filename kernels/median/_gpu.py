"""GPU median filter over 3-D blocks (``numba.cuda``; lower ranks are reshaped to 3-D).

One thread per output cell gathers the non-NaN values of its window into a per-thread
buffer and selects the element of rank ``n // 2`` with the same Hoare selection as
``_cpu``. The median is an element of the window, so the result is exact: it equals the
CPU's and the reference's bit for bit whatever the blocking. Neighbouring threads take
neighbouring cells along the last axis, so the window loads of a warp are coalesced.

The buffer lives in registers or local memory and its length is a compile-time
constant, so a kernel is compiled per window volume and dtype and cached per device.
Large windows (hundreds of cells) spill to local memory and slow down; the median
filters used here (3-7 cells a side) stay small.

Why ``numba.cuda``: selection is branchy per-thread code that CuPy has no primitive
for; the numba kernel is plain Python that also runs under numba's CUDA simulator,
which ``tests/kernels/test_cudasim.py`` checks against the reference. ``benchmarks/_gpu.py``
times it against ``cupyx.scipy.ndimage.median_filter`` on the GPU machine.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from minjiang.kernels import _cuda
from minjiang.kernels.median._select import select_kth
from numba import cuda, from_dtype

__all__ = ["median_valid"]


def _build(volume: int, dtype: np.dtype) -> Any:
    item = from_dtype(dtype)

    select = cuda.jit(device=True)(select_kth)

    @cuda.jit
    def median(padded, sz, sy, sx, out):
        nz, ny, nx = out.shape
        cz = sz // 2
        cy = sy // 2
        cx = sx // 2
        buf = cuda.local.array(volume, item)
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for t in range(start, nz * ny * nx, stride):
            x = t % nx
            rest = t // nx
            y = rest % ny
            z = rest // ny
            c = padded[z + cz, y + cy, x + cx]
            if c != c:  # NaN stays NaN
                out[z, y, x] = c
                continue
            n = 0
            for dz in range(sz):
                for dy in range(sy):
                    for dx in range(sx):
                        v = padded[z + dz, y + dy, x + dx]
                        if v == v:
                            buf[n] = v
                            n += 1
            out[z, y, x] = select(buf, n, n // 2)

    return median


def median_valid(padded: Any, sizes: tuple[int, ...]) -> Any:
    """Median over windows of ``sizes`` inside the device block ``padded`` (1-3 dims)."""
    xp = _cuda.array_module(padded)
    ndim = padded.ndim
    out_shape = tuple(n - s + 1 for n, s in zip(padded.shape, sizes, strict=True))
    x3 = xp.ascontiguousarray(padded).reshape((1,) * (3 - ndim) + padded.shape)
    s3 = (1,) * (3 - ndim) + tuple(sizes)
    out = xp.empty(out_shape, dtype=padded.dtype)
    volume = s3[0] * s3[1] * s3[2]
    dtype = np.dtype(padded.dtype)
    kernel = _cuda.cached(("median", volume, dtype.str), lambda: _build(volume, dtype))
    _cuda.launch(
        kernel, out.size, x3, s3[0], s3[1], s3[2], out.reshape((1,) * (3 - ndim) + out_shape)
    )
    return out

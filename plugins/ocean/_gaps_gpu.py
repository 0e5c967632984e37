"""GPU gap filling (``numba.cuda``): one thread per pixel runs the shared row code.

Neighbouring threads take neighbouring pixels of a (time, pixel) block, so each step
of the walk along time is a coalesced load across the warp. The arithmetic is
:func:`minjiang.plugins.ocean._gaps_row.pad_row`, the one the CPU kernel compiles,
so filled values equal the CPU's bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from minjiang.kernels import cuda as _cuda
from minjiang.plugins.ocean._gaps_row import pad_row
from numba import cuda

__all__ = ["pad_gaps"]


def _build() -> Any:
    row_fn = cuda.jit(device=True)(pad_row)

    @cuda.jit
    def pad_columns(block, max_length):
        # block: (time, pixel); each thread fills whole columns
        npix = block.shape[1]
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for p in range(start, npix, stride):
            row_fn(block[:, p], max_length)

    return pad_columns


def pad_gaps(values: Any, max_length: int) -> Any:
    """Gap-filled copy of device ``values`` (pixel, time), as :func:`._gaps.pad_gaps_reference`.

    Returns a (pixel, time) view of a new (time, pixel) C-contiguous float64 array.
    """
    xp = _cuda.array_module(values)
    block = xp.array(values.T, dtype=np.float64, order="C", copy=True)
    if max_length > 0 and block.size:
        kernel = _cuda.cached(("ocean.pad_gaps",), _build)
        _cuda.launch(kernel, block.shape[1], block, int(max_length))
    return block.T

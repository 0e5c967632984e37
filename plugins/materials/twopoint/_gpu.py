"""GPU path of the two-point pair counts (CuPy): FFT autocorrelation with ``cupy.fft``.

The CPU kernel's algorithm as array code: ``num = rint(irfftn(|rfftn(I)|**2))`` over
the indicator zero-padded to at least ``n_i + L_i`` per axis (non-periodic) or not
padded (periodic), the lag box gathered from the correlation, rounded to int64 and
copied to the host (a partial state; the lag box is small). ``overlap`` has the CPU's
closed form and is computed on the host. The counts are integers recovered by
rounding, so they equal the CPU's exactly wherever the FFT error stays below 0.5 (it
is orders of magnitude below for any block that fits in device memory).

Written against the array module of its input: ``numpy`` runs the same lines, which is
how ``tests/plugins/materials/test_gpu_paths.py`` checks it without a GPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from minjiang.kernels import array_namespace, to_host

__all__ = ["pair_counts"]


def pair_counts(ind: Any, lags: tuple[int, ...], periodic: bool) -> tuple[np.ndarray, np.ndarray]:
    """int64 ``num`` and ``overlap`` (host arrays) over the lag box, index ``r + L``."""
    from minjiang.plugins.materials.twopoint._cpu import _fast_len, overlap_counts

    xp = array_namespace(ind)
    x = xp.asarray(ind, dtype=xp.float64)
    if periodic:
        size = tuple(x.shape)
    else:
        size = tuple(_fast_len(n + m) for n, m in zip(x.shape, lags, strict=True))
    axes = tuple(range(x.ndim))
    f = xp.fft.rfftn(x, s=size, axes=axes)
    corr = xp.fft.irfftn(f.real**2 + f.imag**2, s=size, axes=axes)
    take = xp.ix_(*[xp.arange(-m, m + 1) % s for m, s in zip(lags, size, strict=True)])
    num = to_host(xp.rint(corr[take]).astype(xp.int64))
    return num, overlap_counts(tuple(x.shape), lags, periodic)

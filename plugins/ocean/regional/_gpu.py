"""Array code of the NaN-aware weighted sums for GPU tasks (CuPy; NumPy runs it too).

All regions of a block are summed in two matrix products over the block's cells,
``Σ_c x[t, c] · W[c, r]`` with missing values set to 0, and ``Σ_c ok[t, c] · W[c, r]``
with ``ok`` the finite-value indicator: the block is read once whatever the number of
regions, and the products run on the device's BLAS (cuBLAS for CuPy arrays). The
numba kernel adds in cell order; a BLAS product adds in its own blocked order, so the
sums agree to rounding (a few ulp of Σ|w·x|), not bit for bit.

A region with a non-finite weight (a NaN cell area, say) cannot go through the
products: ``0 · NaN`` would spread NaN from cells *without* data, where the reference
skips the cell. Such regions take the element-wise form of the reference instead.
The weights are host data, so that test costs no device synchronisation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["weighted_sums_regions"]


def weighted_sums_regions(values: Any, weights: np.ndarray) -> tuple[Any, Any]:
    """(Σ w·x, Σ w) per region and time step over the cells with a finite value.

    Parameters
    ----------
    values : array (time, ...)
        The block, NumPy or CuPy, any float dtype; the trailing axes are the cells.
    weights : numpy.ndarray (regions, cells)
        Host weights of each region (0 outside it), float64.

    Returns
    -------
    total, wsum : arrays (regions, time), float64
        In the array module of ``values``; the same as
        :func:`minjiang.plugins.ocean.regional.weighted_sums_reference` per region.
    """
    from minjiang.kernels import array_namespace as array_module

    xp = array_module(values)
    nt = values.shape[0]
    v = values.reshape(nt, -1)
    w_host = np.asarray(weights, dtype=np.float64).reshape(-1, v.shape[1])
    n_regions = w_host.shape[0]
    total = xp.zeros((n_regions, nt), dtype=xp.float64)
    wsum = xp.zeros((n_regions, nt), dtype=xp.float64)
    if nt == 0 or v.shape[1] == 0 or n_regions == 0:
        return total, wsum
    ok = xp.isfinite(v)
    finite_w = np.isfinite(w_host).all(axis=1)
    fast = np.flatnonzero(finite_w)
    if fast.size:
        w_dev = xp.asarray(np.ascontiguousarray(w_host[fast].T))  # (cells, regions)
        filled = xp.where(ok, v, 0).astype(xp.float64, copy=False)
        total[xp.asarray(fast)] = (filled @ w_dev).T
        del filled
        wsum[xp.asarray(fast)] = (ok.astype(xp.float64) @ w_dev).T
    for r in np.flatnonzero(~finite_w):
        # the reference's own form: a cell counts when its value is finite and its weight non-zero
        w = xp.asarray(w_host[r])[None, :]
        keep = ok & (w != 0)
        total[r] = xp.where(keep, v.astype(xp.float64, copy=False) * w, 0.0).sum(axis=1)
        wsum[r] = xp.where(keep, w, 0.0).sum(axis=1)
    return total, wsum

"""Array code of the EOF block steps for GPU tasks (CuPy; NumPy runs it too).

Both steps are matrix algebra on the weighted, centred block ``A`` (time × cells):
the Gram partial ``A Aᵀ`` and the projection ``Uᵀ A / σ``, one BLAS product each
(cuBLAS for CuPy arrays). Cells with a missing value or a non-finite weight (the land
mask) are not removed from ``A`` but set to 0: a zero column adds nothing to ``A Aᵀ``,
and keeping the block's shape avoids a boolean compaction (a device synchronisation
and a copy). Their EOF values are set to NaN afterwards, as in the NumPy reference.

The time means are the array module's ``mean`` (pairwise or tree sums) where the numba
kernel adds in time order, and the products add in BLAS order: results agree with the
CPU to rounding, not bit for bit. The weights, ``U`` and ``σ`` are host data (one
value per cell or per mode) moved to the device here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["gram", "project"]


def _prepare(values: Any, weights: np.ndarray | None, center: bool) -> tuple[Any, Any]:
    from minjiang.kernels import array_namespace as array_module

    xp = array_module(values)
    n = values.shape[0]
    x = values.reshape(n, -1).astype(xp.float64)
    valid = xp.isfinite(x).all(axis=0)
    if weights is not None:
        w_host = np.asarray(weights, dtype=np.float64).reshape(-1)
        w = xp.asarray(w_host)
        valid &= xp.isfinite(w)
    if center:
        x -= x.mean(axis=0)
    if weights is not None:
        x *= w[None, :]
    # zero columns for dropped cells: they add nothing to A Aᵀ nor to Uᵀ A
    a = xp.where(valid[None, :], x, 0.0)
    return a, valid


def gram(values: Any, weights: np.ndarray | None, center: bool = True) -> Any:
    """``A_b A_bᵀ`` (n_time × n_time, float64) of one block (time, ...).

    Parameters
    ----------
    values : array (time, ...)
        The block, NumPy or CuPy; the trailing axes are the cells.
    weights : numpy.ndarray or None
        Host weights, one per cell (``None``: all 1).
    center : bool
        Remove each cell's time mean first.

    Returns
    -------
    array (time, time)
        In the array module of ``values``; equal to
        :func:`minjiang.plugins.ocean.eof.gram_partial` to rounding.
    """
    a, _ = _prepare(values, weights, center)
    return a @ a.T


def project(
    values: Any,
    weights: np.ndarray | None,
    u: np.ndarray,
    sigma: np.ndarray,
    *,
    center: bool = True,
) -> Any:
    """EOFs of one block: (k, ...) with NaN on dropped cells.

    Parameters
    ----------
    values : array (time, ...)
        The block, NumPy or CuPy.
    weights : numpy.ndarray or None
        Host weights, one per cell (``None``: all 1).
    u : numpy.ndarray (time, k)
        Normalised principal components (host).
    sigma : numpy.ndarray (k,)
        Singular values (host).
    center : bool
        Remove each cell's time mean first.

    Returns
    -------
    array (k, ...)
        In the array module of ``values``; equal to
        :func:`minjiang.plugins.ocean.eof.project` to rounding.
    """
    from minjiang.kernels import array_namespace as array_module

    xp = array_module(values)
    a, valid = _prepare(values, weights, center)
    u_dev = xp.asarray(np.asarray(u, dtype=np.float64))
    s_dev = xp.asarray(np.asarray(sigma, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):  # σ = 0: as the reference, inf/NaN
        e = (u_dev.T @ a) / s_dev[:, None]
    out = xp.where(valid[None, :], e, xp.nan)
    return out.reshape((u.shape[1], *values.shape[1:]))

"""Two-point correlation S₂(r) of a phase: integer pair counts per lag, radial average once.

:func:`pair_counts` gives, for every lag vector ``r`` in a box ``|r_i| <= L_i``, the
number of voxel pairs ``(x, x + r)`` both in the phase (``num``) and the number of
pairs inside the image (``overlap``): non-periodic (the image is zero-padded and each
lag divided by its own pair number: the unbiased estimator) or periodic (wrap-around,
every lag has ``N`` pairs). Counts are int64, so those of several blocks add exactly.
:func:`radial_average` turns them into S₂(r⃗) = num / overlap per lag vector and
averages the lag vectors whose length (in physical units, any voxel size per axis)
falls in each distance bin ``[e_k, e_{k+1})`` — the average over directions that
porespy's ``two_point_correlation`` reports.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from minjiang.kernels import resolve_backend

__all__ = ["lag_box", "pair_counts", "radial_average"]


def lag_box(shape: tuple[int, ...], spacing: Any, r_max: float, periodic: bool) -> tuple[int, ...]:
    """Lags per axis that cover every vector shorter than ``r_max`` (bounded by the image).

    Parameters
    ----------
    shape : tuple of int
        Image shape.
    spacing : sequence of float
        Voxel size per axis.
    r_max : float
        Largest distance wanted (physical units).
    periodic : bool
        Periodic images keep ``|r_i| <= (n_i - 1) // 2`` (each lag vector once).

    Returns
    -------
    tuple of int
    """
    out = []
    for n, v in zip(shape, spacing, strict=True):
        cap = (n - 1) // 2 if periodic else n - 1
        out.append(int(min(int(np.ceil(r_max / float(v))), cap)))
    return tuple(out)


def pair_counts(
    indicator: Any, lags: tuple[int, ...], *, periodic: bool = False, backend: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs in the phase and pairs in the image, per lag vector.

    Parameters
    ----------
    indicator : numpy.ndarray or cupy.ndarray
        2-D or 3-D boolean (or 0/1) image of the phase (boolean on the GPU).
    lags : tuple of int
        ``L_i`` per axis; the result covers ``-L_i..L_i``.
    periodic : bool
        Wrap around the image edges (default: zero-padded, non-periodic).
    backend : {"reference", "cpu", "gpu"}, optional
        Shifted products (reference), FFT (default for NumPy arrays) or FFT with
        ``cupy.fft`` (default for CuPy arrays).

    Returns
    -------
    num, overlap : numpy.ndarray
        int64 host arrays of shape ``(2 L_i + 1, ...)``, lag ``r`` at index ``r + L``.

    Raises
    ------
    ValueError
        For an image that is not 2-D or 3-D, or lags outside the image.
    """
    chosen = resolve_backend(backend, indicator, kernel="materials.two_point", has_gpu=True)
    if chosen == "gpu":
        if indicator.ndim not in (2, 3):
            raise ValueError(f"the image must be 2-D or 3-D, got {indicator.ndim}-D")
        if len(lags) != indicator.ndim or any(m < 0 for m in lags):
            raise ValueError(f"lags must give one non-negative value per axis, got {lags!r}")
        if indicator.dtype != bool:
            raise ValueError("the GPU path takes a boolean indicator")
        from minjiang.plugins.materials.twopoint._gpu import pair_counts as gpu

        return gpu(indicator, tuple(int(m) for m in lags), periodic)
    ind = np.asarray(indicator)
    if ind.ndim not in (2, 3):
        raise ValueError(f"the image must be 2-D or 3-D, got {ind.ndim}-D")
    if len(lags) != ind.ndim or any(m < 0 for m in lags):
        raise ValueError(f"lags must give one non-negative value per axis, got {lags!r}")
    if ind.dtype != bool and ind.size and not np.isin(np.unique(ind), (0, 1)).all():
        raise ValueError("the indicator must be boolean or 0/1")
    if chosen == "reference":
        from minjiang.plugins.materials.twopoint._reference import pair_counts as impl
    else:
        from minjiang.plugins.materials.twopoint._cpu import pair_counts as impl
    return impl(ind, tuple(int(m) for m in lags), periodic)


def radial_average(
    num: Any, overlap: Any, spacing: Any, edges: Any
) -> tuple[np.ndarray, np.ndarray]:
    """S₂ per distance bin: the mean of ``num / overlap`` over the lag vectors in it.

    Parameters
    ----------
    num, overlap : numpy.ndarray
        Output of :func:`pair_counts` (summed over blocks, if any).
    spacing : sequence of float
        Voxel size per axis.
    edges : numpy.ndarray
        Increasing bin edges (physical units).

    Returns
    -------
    s2 : numpy.ndarray
        float64 per bin (NaN where no lag vector falls).
    vectors : numpy.ndarray
        int64 number of lag vectors per bin.
    """
    from minjiang.plugins.materials.twopoint._cpu import radial_average as impl

    num, overlap = np.asarray(num), np.asarray(overlap)
    if num.shape != overlap.shape or len(spacing) != num.ndim:
        raise ValueError("num, overlap and spacing must describe the same lag box")
    return impl(
        num, overlap, np.asarray(spacing, dtype=np.float64), np.asarray(edges, dtype=np.float64)
    )

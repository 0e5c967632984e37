"""Separable n-D Gaussian filter, blockwise: the valid part of a block padded by its halo.

A block padded by ``gaussian_radius(sigma[d], truncate)`` cells on each side of axis d
(real neighbour data inside the array, :func:`pad_boundary` at the true array edges)
filtered with :func:`gaussian_valid` gives exactly the cells of the whole-array
:func:`gaussian_filter` it covers, so chunked results reassemble bit for bit. Weights and
boundary modes are SciPy's (``scipy.ndimage.gaussian_filter``, order 0).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
from minjiang.kernels._dispatch import is_gpu_array, resolve_backend

__all__ = [
    "BOUNDARY_MODES",
    "gaussian_filter",
    "gaussian_radius",
    "gaussian_valid",
    "pad_boundary",
    "separable_seconds",
]

#: Multiply-adds per second of one core in the numba kernel (1.45e10 measured on the
#: benchmark machine: 365 x 96 x 160 float32, sigma 2, one thread, taps four at a time).
TAPS_PER_SECOND = 1.4e10


def separable_seconds(cells: int, radii: Sequence[int]) -> float:
    """Projected seconds of one core to filter ``cells`` padded cells with a separable
    kernel of ``radii`` (one pass of ``2 r + 1`` taps per filtered axis): what an
    operator's ``compute`` gives the planner."""
    return cells * sum(2 * r + 1 for r in radii if r > 0) / TAPS_PER_SECOND


#: SciPy boundary mode -> ``numpy.pad`` mode giving the same extension of the data.
_NUMPY_PAD_MODE = {
    "reflect": "symmetric",  # d c b a | a b c d | d c b a
    "mirror": "reflect",  # d c b | a b c d | c b a
    "nearest": "edge",  # a a a | a b c d | d d d
    "wrap": "wrap",  # b c d | a b c d | a b c
    "constant": "constant",  # k k k | a b c d | k k k
}
BOUNDARY_MODES: tuple[str, ...] = tuple(_NUMPY_PAD_MODE)

# SciPy skips axes whose sigma is at most this (gaussian_filter's own threshold).
_SIGMA_EPS = 1e-15


def _check_truncate(truncate: Any, kernel: str) -> float:
    if (
        isinstance(truncate, bool)
        or not isinstance(truncate, numbers.Real)
        or not math.isfinite(truncate)
        or truncate < 0
    ):
        raise ValueError(
            f"{kernel}: truncate={truncate!r} must be a finite number >= 0 "
            "(the filter radius in standard deviations; SciPy's default is 4.0)"
        )
    return float(truncate)


def _check_sigma_value(value: Any, kernel: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(
            f"{kernel}: sigma={value!r} must be a finite number >= 0 "
            "(the standard deviation in cells; 0 leaves an axis unfiltered)"
        )
    return float(value)


def _sigmas(sigma: Sequence[float] | float, ndim: int, kernel: str) -> tuple[float, ...]:
    if isinstance(sigma, numbers.Real) and not isinstance(sigma, bool):
        return (_check_sigma_value(sigma, kernel),) * ndim
    if isinstance(sigma, (str, bytes)) or not isinstance(sigma, Sequence | np.ndarray):
        raise TypeError(
            f"{kernel}: sigma={sigma!r} must be a number or a sequence of one number per axis"
        )
    if np.ndim(sigma) != 1:
        raise ValueError(
            f"{kernel}: sigma must be one number or a flat sequence of {ndim} numbers "
            f"(one per axis), got {sigma!r}"
        )
    values = tuple(np.asarray(sigma, dtype=object).tolist())
    if len(values) != ndim:
        raise ValueError(
            f"{kernel}: sigma has {len(values)} values for an array with {ndim} axes; "
            f"give one number or {ndim} numbers (one per axis)"
        )
    return tuple(_check_sigma_value(v, kernel) for v in values)


def _out_dtype(x: Any, kernel: str, name: str) -> np.dtype:
    dtype = np.dtype(x.dtype)
    if dtype.kind not in "biuf":
        raise TypeError(
            f"{kernel}: {name} has dtype {dtype.name!r}; expected a real number type "
            "(float32 or float64; integers are filtered as float64)"
        )
    return np.dtype(np.float32) if dtype == np.float32 else np.dtype(np.float64)


def gaussian_radius(sigma: float, truncate: float = 4.0) -> int:
    """Halo width of a Gaussian filter along one axis (SciPy's rule).

    Parameters
    ----------
    sigma : float
        Standard deviation in cells, ``>= 0``.
    truncate : float
        Cut the kernel off at this many standard deviations.

    Returns
    -------
    int
        ``int(truncate * sigma + 0.5)``: the cells of padding needed on each side.
    """
    sigma = _check_sigma_value(sigma, "gaussian_radius")
    truncate = _check_truncate(truncate, "gaussian_radius")
    return int(truncate * sigma + 0.5)


def _axis_weights(
    sigmas: tuple[float, ...], truncate: float
) -> tuple[list[np.ndarray | None], tuple[int, ...]]:
    from minjiang.kernels.gaussian._reference import gaussian_weights

    weights: list[np.ndarray | None] = []
    radii = []
    for s in sigmas:
        if s > _SIGMA_EPS:
            r = int(truncate * s + 0.5)
            weights.append(gaussian_weights(s, r))
            radii.append(r)
        else:
            weights.append(None)
            radii.append(0)
    return weights, tuple(radii)


def pad_boundary(
    x: Any,
    pad_width: int | Sequence[int] | Sequence[tuple[int, int]],
    mode: str,
    cval: float = 0.0,
) -> Any:
    """Pad ``x`` the way a SciPy ``ndimage`` boundary mode extends it.

    Parameters
    ----------
    x : numpy.ndarray or cupy.ndarray
        The array (or the part of it next to the array edge) to extend.
    pad_width : int or sequence
        Cells to add: one int for every side of every axis, one int per axis (both
        sides), or one ``(before, after)`` pair per axis.
    mode : {"reflect", "mirror", "nearest", "wrap", "constant"}
        SciPy's names, mapped to ``numpy.pad``'s ``symmetric``, ``reflect``, ``edge``,
        ``wrap`` and ``constant``.
    cval : float
        The fill value of ``mode="constant"``.

    Returns
    -------
    ndarray
        The padded array, same dtype and array type as ``x``.

    Notes
    -----
    ``reflect``, ``mirror``, ``nearest`` and ``constant`` read only cells within
    ``pad`` of the edge they extend, so padding the edge block of a chunked array
    (after its real neighbours have been added on the inner sides) matches padding
    the whole array. ``wrap`` copies cells from the *opposite* end of the axis: apply
    it only along axes that ``x`` covers completely, and take periodic halos of
    partial blocks from the other end of the array instead.
    """
    if mode not in _NUMPY_PAD_MODE:
        raise ValueError(
            f"pad_boundary: unknown mode {mode!r}; expected one of {BOUNDARY_MODES!r} "
            "(scipy.ndimage's names)"
        )
    gpu = is_gpu_array(x)
    if not gpu:
        x = np.asarray(x)
    widths = _pad_widths(pad_width, x.ndim)
    if mode != "constant":
        for axis, (n, (before, after)) in enumerate(zip(x.shape, widths, strict=True)):
            if n == 0 and before + after > 0:
                raise ValueError(
                    f"pad_boundary: cannot extend axis {axis} of length 0 with mode "
                    f"{mode!r}; there are no cells to copy (use mode='constant')"
                )
    if gpu:
        import cupy as xp
    else:
        xp = np
    if x.ndim == 0:  # no axis to extend (numpy.pad refuses 0-d arrays)
        return x.copy()
    if mode == "constant":
        return xp.pad(x, widths, mode="constant", constant_values=cval)
    return xp.pad(x, widths, mode=_NUMPY_PAD_MODE[mode])


def _pad_widths(pad_width: Any, ndim: int) -> tuple[tuple[int, int], ...]:
    def _int(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
            raise ValueError(f"pad_boundary: pad_width entry {v!r} must be a non-negative integer")
        return int(v)

    if isinstance(pad_width, numbers.Integral) and not isinstance(pad_width, bool):
        w = _int(pad_width)
        return ((w, w),) * ndim
    try:
        items = list(pad_width)
    except TypeError:
        raise TypeError(
            f"pad_boundary: pad_width={pad_width!r} must be an int, one int per axis, "
            "or one (before, after) pair per axis"
        ) from None
    if len(items) != ndim:
        raise ValueError(
            f"pad_boundary: pad_width has {len(items)} entries for an array with {ndim} "
            f"axes; give one int per axis or one (before, after) pair per axis"
        )
    widths = []
    for item in items:
        if isinstance(item, numbers.Integral) and not isinstance(item, bool):
            w = _int(item)
            widths.append((w, w))
        else:
            pair = tuple(item)
            if len(pair) != 2:
                raise ValueError(
                    f"pad_boundary: pad_width entry {item!r} must be an int or a "
                    "(before, after) pair"
                )
            widths.append((_int(pair[0]), _int(pair[1])))
    return tuple(widths)


def gaussian_valid(
    padded: Any,
    sigma: Sequence[float] | float,
    *,
    truncate: float = 4.0,
    backend: str | None = None,
) -> Any:
    """Gaussian-filter a padded block and return only its interior.

    Parameters
    ----------
    padded : ndarray
        A block padded by ``gaussian_radius(sigma[d], truncate)`` cells on both sides
        of every axis d.
    sigma : float or sequence of float
        Standard deviation in cells, one for all axes or one per axis; 0 leaves an
        axis unfiltered (and needs no padding there).
    truncate : float
        Cut the kernel off at this many standard deviations (SciPy's default 4.0).
    backend : {"reference", "cpu", "gpu"}, optional
        Defaults to the input's array type (NumPy -> ``"cpu"``).

    Returns
    -------
    ndarray
        Shape ``padded.shape[d] - 2 * radius[d]`` per axis. float32 for float32 input,
        float64 otherwise; accumulation is in float64. NaN and inf spread over the
        kernel's footprint, as in SciPy.
    """
    chosen = resolve_backend(backend, padded, kernel="gaussian_valid", has_gpu=True)
    x = padded if chosen == "gpu" else np.asarray(padded)
    out_dtype = _out_dtype(x, "gaussian_valid", "padded")
    x = x.astype(out_dtype, copy=False)  # integers and booleans are filtered as float64
    sigmas = _sigmas(sigma, x.ndim, "gaussian_valid")
    truncate = _check_truncate(truncate, "gaussian_valid")
    weights, radii = _axis_weights(sigmas, truncate)
    for axis, (n, r) in enumerate(zip(x.shape, radii, strict=True)):
        if n < 2 * r:
            raise ValueError(
                f"gaussian_valid: padded has {n} cells on axis {axis}, fewer than the "
                f"2 * {r} halo cells that sigma={sigmas[axis]!r} needs; pad each side "
                f"by gaussian_radius(sigma, truncate) = {r} (see pad_boundary)"
            )
    if chosen == "reference":
        from minjiang.kernels.gaussian import _reference

        return _reference.gaussian_valid(x, weights, out_dtype)
    if chosen == "gpu":
        from minjiang.kernels.gaussian import _gpu

        return _gpu.gaussian_valid(x, weights, out_dtype)
    from minjiang.kernels.gaussian import _cpu

    # reshape: ascontiguousarray turns a 0-d array into a 1-d one
    return _cpu.gaussian_valid(np.ascontiguousarray(x).reshape(x.shape), weights, out_dtype)


def gaussian_filter(
    x: Any,
    sigma: Sequence[float] | float,
    *,
    truncate: float = 4.0,
    mode: str = "reflect",
    cval: float = 0.0,
    backend: str | None = None,
) -> Any:
    """Gaussian filter of a whole array, as ``scipy.ndimage.gaussian_filter``.

    Parameters
    ----------
    x : ndarray
        The array.
    sigma : float or sequence of float
        Standard deviation in cells, one for all axes or one per axis (0: no filtering).
    truncate : float
        Cut the kernel off at this many standard deviations.
    mode : {"reflect", "mirror", "nearest", "wrap", "constant"}
        How the array is extended beyond its edges (SciPy's names).
    cval : float
        Value outside the array for ``mode="constant"``.
    backend : {"reference", "cpu", "gpu"}, optional
        Defaults to the input's array type (NumPy -> ``"cpu"``).

    Returns
    -------
    ndarray
        Same shape as ``x``; float32 for float32 input, float64 otherwise.
    """
    chosen = resolve_backend(backend, x, kernel="gaussian_filter", has_gpu=True)
    x = x if chosen == "gpu" else np.asarray(x)
    out_dtype = _out_dtype(x, "gaussian_filter", "x")
    sigmas = _sigmas(sigma, x.ndim, "gaussian_filter")
    truncate = _check_truncate(truncate, "gaussian_filter")
    if mode not in _NUMPY_PAD_MODE:
        raise ValueError(
            f"gaussian_filter: unknown mode {mode!r}; expected one of {BOUNDARY_MODES!r} "
            "(scipy.ndimage's names)"
        )
    if x.size == 0:
        return x.astype(out_dtype)  # an empty array of x's type (NumPy or CuPy)
    _, radii = _axis_weights(sigmas, truncate)
    # Pad in the output type so that an integer array's cval is not truncated.
    padded = pad_boundary(x.astype(out_dtype, copy=False), radii, mode, cval)
    return gaussian_valid(padded, sigmas, truncate=truncate, backend=backend)

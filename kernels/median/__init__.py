"""Median filter over 1-3-D arrays, for blocks padded by a halo or whole arrays.

:func:`median_valid` is the chunk kernel: it takes a block padded by the window's
reach on each side (``size // 2`` before, ``size - 1 - size // 2`` after, as
:func:`median_halo` says) and returns the interior. :func:`median_filter` pads a whole
array with one of SciPy's boundary modes and matches ``scipy.ndimage.median_filter``
exactly on NaN-free input. NaN cells stay NaN and are left out of their neighbours'
windows (the median is then the element of rank ``n // 2`` among the ``n`` values
that are not NaN).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from minjiang.kernels._dispatch import resolve_backend
from minjiang.kernels.median._select import select_kth

__all__ = ["median_filter", "median_halo", "median_seconds", "median_valid", "select_kth"]

#: Window cells per second one core selects from, for large windows (Hoare's
#: selection: 4.6e7 measured on the benchmark machine, 5^3 over 64 x 128 x 128
#: float32); windows of up to 64 values go about twice as fast (rank counting).
WINDOW_CELLS_PER_SECOND = 4e7


def median_seconds(cells: int, radii: Sequence[int]) -> float:
    """Projected seconds of one core for a median over ``cells`` padded cells with a
    window of ``2 r + 1`` cells per axis: what an operator's ``compute`` gives the
    planner."""
    window = 1
    for r in radii:
        window *= 2 * r + 1
    return cells * window / WINDOW_CELLS_PER_SECOND


_NP_MODE = {"reflect": "symmetric", "mirror": "reflect", "nearest": "edge", "wrap": "wrap"}


def _sizes(size: int | Sequence[int], ndim: int) -> tuple[int, ...]:
    given: Any = size  # an int, a sequence of ints or an array of them
    # bool(): np.isscalar is a TypeGuard, which would narrow `given` to a NumPy scalar
    sizes = (int(given),) * ndim if bool(np.isscalar(given)) else tuple(int(s) for s in given)
    if len(sizes) != ndim:
        raise ValueError(
            f"median: size {tuple(sizes)!r} has {len(sizes)} entries for a {ndim}-D array"
        )
    if any(s < 1 for s in sizes):
        raise ValueError(f"median: window size {sizes!r} must be >= 1 along every axis")
    return sizes


def median_halo(size: int | Sequence[int], ndim: int | None = None) -> tuple[tuple[int, int], ...]:
    """Cells of padding ``(before, after)`` per axis that a window of ``size`` needs.

    Parameters
    ----------
    size
        Window size per axis (or one size for all axes, then give ``ndim``).
    ndim
        Number of axes when ``size`` is a scalar.

    Returns
    -------
    tuple of (int, int)
        ``(size // 2, size - 1 - size // 2)`` per axis, SciPy's window placement.
    """
    sizes = _sizes(size, ndim if ndim is not None else len(size))  # type: ignore[arg-type]
    return tuple((s // 2, s - 1 - s // 2) for s in sizes)


def median_valid(
    padded: Any, size: int | Sequence[int], *, backend: str | None = None
) -> np.ndarray:
    """Median filter of the interior of a block padded by the window's reach.

    Parameters
    ----------
    padded
        Real array of 1 to 3 dims, padded by :func:`median_halo` on each side.
    size
        Window size per axis, in cells (any size >= 1; even sizes reach one cell
        further back than forward, as in SciPy).
    backend
        ``"reference"`` (NumPy) or ``"cpu"`` (numba); ``None`` follows the array type.

    Returns
    -------
    numpy.ndarray
        Shape ``padded.shape - (size - 1)``, same dtype as ``padded``.
    """
    chosen = resolve_backend(backend, padded, kernel="median_valid", has_gpu=True)
    x = padded if chosen == "gpu" else np.asarray(padded)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"median_valid: needs a real-valued array, got dtype {x.dtype.name!r}")
    if not 1 <= x.ndim <= 3:
        raise ValueError(f"median_valid: supports 1 to 3 dims, got an array of shape {x.shape}")
    sizes = _sizes(size, x.ndim)
    if any(n < s for n, s in zip(x.shape, sizes, strict=True)):
        raise ValueError(
            f"median_valid: block of shape {x.shape} is smaller than the window {sizes}; "
            "pad it by median_halo(size) on each side"
        )
    if x.dtype == np.bool_:
        x = x.view(np.uint8)
    if chosen == "gpu":
        from minjiang.kernels.median import _gpu

        out = _gpu.median_valid(x, sizes)
        return out.view(np.bool_) if padded.dtype == np.bool_ else out
    if chosen == "reference":
        from minjiang.kernels.median import _reference

        out = _reference.median_valid(x, sizes)
    else:
        from minjiang.kernels.median import _cpu

        x3 = x.reshape((1,) * (3 - x.ndim) + x.shape)
        s3 = (1,) * (3 - x.ndim) + sizes
        out = _cpu.median_valid(np.ascontiguousarray(x3), *s3).reshape(
            tuple(n - s + 1 for n, s in zip(x.shape, sizes, strict=True))
        )
    return out.view(np.bool_) if np.asarray(padded).dtype == np.bool_ else out


def median_filter(
    x: Any,
    size: int | Sequence[int],
    mode: str = "reflect",
    cval: float = 0.0,
    *,
    backend: str | None = None,
) -> np.ndarray:
    """Median filter of a whole array, as ``scipy.ndimage.median_filter``.

    Parameters
    ----------
    x
        Real array of 1 to 3 dims.
    size
        Window size per axis, in cells.
    mode
        Boundary mode at the array's edges: ``"reflect"``, ``"mirror"``,
        ``"nearest"``, ``"wrap"`` or ``"constant"`` (SciPy's meanings).
    cval
        Fill value for ``mode="constant"``.
    backend
        ``"reference"`` or ``"cpu"``; ``None`` follows the array type.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``x``.
    """
    chosen = resolve_backend(backend, x, kernel="median_filter", has_gpu=True)
    arr = x if chosen == "gpu" else np.asarray(x)  # np.pad below dispatches to cupy.pad
    sizes = _sizes(size, arr.ndim)
    halo = median_halo(sizes)
    if mode == "constant":
        padded = np.pad(arr, halo, mode="constant", constant_values=cval)
    elif mode in _NP_MODE:
        padded = np.pad(arr, halo, mode=_NP_MODE[mode])  # type: ignore[call-overload]
    else:
        raise ValueError(
            f"median_filter: unknown mode {mode!r}; expected one of "
            f"{sorted([*_NP_MODE, 'constant'])!r}"
        )
    return median_valid(padded, sizes, backend=backend)

"""Mean squared displacement over all time origins, and unwrapping with the cell.

:func:`msd_per_atom` gives ``msd[m, i, k]``, the mean over every origin ``t`` of
``(x[t + m, i, k] - x[t, i, k])**2`` for unwrapped positions; :func:`unwrap` makes
unwrapped positions from wrapped ones and the cell of every frame;
:func:`diffusion_fit` fits ``MSD(t) = 2 d D t + c`` over a declared window.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from minjiang.kernels import resolve_backend

__all__ = ["diffusion_fit", "msd_per_atom", "unwrap"]


def msd_per_atom(positions: Any, *, backend: str | None = None) -> np.ndarray:
    """All-origins MSD per atom and Cartesian component.

    Parameters
    ----------
    positions : numpy.ndarray or cupy.ndarray
        (frame, atom, dim) unwrapped positions, frames evenly spaced in time.
    backend : {"reference", "cpu", "gpu"}, optional
        ``"reference"``: the direct O(T²) sum; ``"cpu"`` (default for NumPy arrays):
        the FFT algorithm; ``"gpu"`` (default for CuPy arrays): the FFT algorithm with
        ``cupy.fft``, the result on the device.

    Returns
    -------
    numpy.ndarray or cupy.ndarray
        float64 (lag, atom, dim); lag 0 is 0.

    Raises
    ------
    ValueError
        For an array that is not 3-D or holds non-finite values.
    """
    chosen = resolve_backend(backend, positions, kernel="materials.msd", has_gpu=True)
    if chosen == "gpu":
        from minjiang.kernels import array_namespace

        xp = array_namespace(positions)
        if positions.ndim != 3:
            raise ValueError(f"positions must be (frame, atom, dim), got shape {positions.shape}")
        if positions.size and not bool(xp.isfinite(positions).all()):
            raise ValueError(
                "positions hold NaN or infinite values; the MSD needs finite positions"
            )
        from minjiang.plugins.materials.msd._gpu import msd_per_atom as gpu

        if positions.shape[0] == 0:
            return xp.zeros(positions.shape, dtype=xp.float64)
        return gpu(positions)
    x = np.asarray(positions)
    if x.ndim != 3:
        raise ValueError(f"positions must be (frame, atom, dim), got shape {x.shape}")
    if x.size and not np.isfinite(x).all():
        raise ValueError("positions hold NaN or infinite values; the MSD needs finite positions")
    if x.shape[0] == 0:
        return np.zeros(x.shape, dtype=np.float64)
    if chosen == "reference":
        from minjiang.plugins.materials.msd._reference import msd_per_atom as impl
    else:
        from minjiang.plugins.materials.msd._cpu import msd_per_atom as impl
    return impl(x)


def unwrap(positions: Any, cells: Any, start: Any = None) -> np.ndarray:
    """Unwrap positions through periodic boundaries, frame to frame.

    Each step adds the minimum-image displacement between consecutive frames (the
    fractional difference wrapped into [-0.5, 0.5), in the cell of the later frame),
    so an atom must move less than half a cell between frames.

    Parameters
    ----------
    positions : numpy.ndarray or cupy.ndarray
        (frame, atom, 3) wrapped positions (the result stays on their device).
    cells : numpy.ndarray
        (frame, 3, 3) lattice vectors as rows (a CuPy array is copied to the host).
    start : numpy.ndarray, optional
        (2, atom, 3): the wrapped and unwrapped positions of the frame before the first
        (when unwrapping continues a previous block); by default frame 0 is kept.

    Returns
    -------
    numpy.ndarray or cupy.ndarray
        float64 (frame, atom, 3) unwrapped positions.
    """
    from minjiang.kernels import array_namespace, to_host

    xp = array_namespace(positions)
    x = xp.asarray(positions, dtype=xp.float64)
    h = np.asarray(to_host(cells), dtype=np.float64)  # 9 numbers per frame, on the host
    out = xp.empty_like(x)
    if x.shape[0] == 0:
        return out
    if not np.isfinite(h).all():
        raise ValueError("a frame has no periodic cell (NaN); unwrapping needs the box")
    if start is None:
        prev_w, prev_u = x[0], x[0]
        out[0] = x[0]
        first = 1
    else:
        prev_w, prev_u = xp.asarray(start[0], xp.float64), xp.asarray(start[1], xp.float64)
        first = 0
    for f in range(first, x.shape[0]):
        ds = (x[f] - prev_w) @ xp.asarray(np.linalg.inv(h[f]))
        ds -= xp.floor(ds + 0.5)
        out[f] = prev_u + ds @ xp.asarray(h[f])
        prev_w, prev_u = x[f], out[f]
    return out


def diffusion_fit(
    lag_time: Any, msd: Any, window: tuple[float, float], dims: int = 3
) -> dict[str, float]:
    """Self-diffusion coefficient from a least-squares line through the MSD in ``window``.

    Parameters
    ----------
    lag_time : numpy.ndarray
        Lag times.
    msd : numpy.ndarray
        MSD summed over ``dims`` Cartesian components, same length.
    window : (float, float)
        Lag-time range ``[t0, t1]`` (inclusive) of the fit.
    dims : int
        Dimensionality of the MSD (``MSD = 2 dims D t``).

    Returns
    -------
    dict
        ``slope``, ``intercept``, ``D`` (slope / (2 dims)), ``points`` used.

    Raises
    ------
    ValueError
        When fewer than two lag times fall in the window.
    """
    t = np.asarray(lag_time, dtype=np.float64)
    y = np.asarray(msd, dtype=np.float64)
    sel = (t >= window[0]) & (t <= window[1])
    if sel.sum() < 2:
        raise ValueError(
            f"the fit window {tuple(window)!r} holds {int(sel.sum())} lag times; it needs at "
            f"least two (lag times run from {t.min() if t.size else 0:g} to {t.max() if t.size else 0:g})"
        )
    slope, intercept = np.polyfit(t[sel], y[sel], 1)
    return {
        "slope": float(slope),
        "intercept": float(intercept),
        "D": float(slope) / (2 * dims),
        "points": int(sel.sum()),
    }

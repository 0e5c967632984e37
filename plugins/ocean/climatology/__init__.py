"""Daily and monthly climatologies with percentile thresholds (Hobday et al. 2016).

:func:`climatology` is the validated entry point; ``_reference`` (NumPy) and
``_cpu`` (numba) and ``_gpu`` (``numba.cuda``) hold the implementations of the
per-pixel statistics, and
``_pools`` the pixel-independent sampling tables of both conventions.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Literal

import numpy as np
from minjiang.core.errors import ContractError, ParameterError
from minjiang.kernels import array_namespace as array_module
from minjiang.kernels import resolve_backend
from minjiang.plugins.ocean._time import DOY_FEB29, Calendar, daily_axis

__all__ = ["climatology"]

Convention = Literal["marineHeatWaves", "heatwaveR"]


def _impl(backend: str) -> ModuleType:  # with pooled_stats, smooth_circular
    if backend == "reference":
        from minjiang.plugins.ocean.climatology import _reference

        return _reference
    if backend == "cpu":
        from minjiang.plugins.ocean.climatology import _cpu

        return _cpu
    from minjiang.plugins.ocean.climatology import _gpu

    return _gpu


def climatology(
    data: Any,
    time: Calendar,
    *,
    frequency: Literal["daily", "monthly"] = "daily",
    period: tuple[int, int] | None = None,
    window_half_width: int = 5,
    percentile: float = 90.0,
    smooth: bool = True,
    smooth_width: int = 31,
    convention: Convention = "marineHeatWaves",
    max_pad_length: int = 0,
    backend: str | None = None,
) -> tuple[Any, Any]:
    """Seasonal climatology and percentile threshold of every pixel.

    Parameters
    ----------
    data
        (time, ...) values; NaN is missing.
    time
        The time axis of ``data`` (see :func:`minjiang.plugins.ocean._time.decode_time`).
    frequency
        ``"daily"``: 366 day-of-year values (Hobday et al. 2016); ``"monthly"``: 12
        calendar-month values (mean and percentile of every base-period step in
        that month, e.g. the CPC Niño3.4 climatology).
    period
        Base period as inclusive years ``(first, last)``; ``None`` uses all years.
    window_half_width
        Days pooled on each side of a day-of-year (daily only).
    percentile
        Percentile of the pooled samples giving ``thresh`` (90 for heatwaves, 10 for
        cold spells); NumPy's ``linear`` method (R's type 7).
    smooth, smooth_width
        Periodic centred running mean of odd ``smooth_width`` days applied to both
        ``seas`` and ``thresh`` (daily only).
    convention
        ``"marineHeatWaves"`` (default) or ``"heatwaveR"``: how windows treat
        29 February and year ends (see :mod:`._pools`).
    max_pad_length
        Interpolate runs of at most this many missing days first (0: none).
    backend
        ``"cpu"`` (numba), ``"gpu"`` (``numba.cuda`` on CuPy arrays) or
        ``"reference"`` (NumPy); ``None`` follows ``data``: ``"gpu"`` for a CuPy
        array, else ``"cpu"``.

    Returns
    -------
    seas, thresh : numpy.ndarray or cupy.ndarray
        float64, shape (366 or 12, ...), on the device of ``data``.
    """
    from minjiang.plugins.ocean.climatology import _pools

    if data.ndim < 1 or data.shape[0] != len(time):
        raise ContractError(
            f"ocean.climatology: data has {data.shape[0] if data.ndim else 0} time steps but the "
            f"time coordinate has {len(time)}"
        )
    if frequency == "daily" and smooth and smooth_width % 2 == 0:
        raise ParameterError(
            f"ocean.climatology: smooth_percentile_width must be odd, got {smooth_width}"
        )
    backend = resolve_backend(backend, data, kernel="ocean.climatology", has_gpu=True)
    impl = _impl(backend)
    gpu = backend == "gpu"
    xp = array_module(data)
    space = data.shape[1:]
    npix = int(np.prod(space, dtype=np.int64))
    if frequency == "daily":
        axis = daily_axis(time, what="ocean.climatology")
        cal = axis.dense
        if gpu:
            # (time, pixel) in memory, the data's own order: the kernels' loads coalesce
            dense = xp.full((len(cal), npix), np.nan, dtype=np.float64)
            dense[xp.asarray(axis.position)] = data.reshape(len(time), npix)
            values = dense.T
        else:
            values = np.full((npix, len(cal)), np.nan, dtype=np.float64)
            values[:, axis.position] = data.reshape(len(time), npix).T
    elif frequency == "monthly":
        cal = time
        if gpu:
            values = xp.ascontiguousarray(data.reshape(len(time), npix), dtype=np.float64).T
        else:
            values = np.ascontiguousarray(data.reshape(len(time), npix).T, dtype=np.float64)
    else:
        raise ParameterError(
            f"ocean.climatology: frequency must be 'daily' or 'monthly', got {frequency!r}"
        )
    if max_pad_length:
        from minjiang.plugins.ocean._gaps import pad_gaps_for

        values = pad_gaps_for(backend)(values, max_pad_length)
    y0, y1 = _pools.base_range(cal, period, what="ocean.climatology")

    if frequency == "monthly":
        seas, thresh = impl.pooled_stats(values, _pools.monthly_pools(cal, y0, y1), percentile)
        return _to_grid(seas, space), _to_grid(thresh, space)

    if convention == "marineHeatWaves":
        pools = _pools.marineheatwaves_pools(cal, y0, y1, window_half_width)
        seas, thresh = impl.pooled_stats(values, pools, percentile)
        k = DOY_FEB29 - 1
        seas[:, k] = 0.5 * seas[:, k - 1] + 0.5 * seas[:, k + 1]
        thresh[:, k] = 0.5 * thresh[:, k - 1] + 0.5 * thresh[:, k + 1]
    elif convention == "heatwaveR":
        samples = (impl.spread if gpu else _pools.spread)(values, cal, y0, y1)
        pools = _pools.heatwaver_pools(y1 - y0 + 1, window_half_width)
        seas, thresh = impl.pooled_stats(samples, pools, percentile)
    else:
        raise ParameterError(
            f"ocean.climatology: convention must be 'marineHeatWaves' or 'heatwaveR', got {convention!r}"
        )
    if smooth:
        seas = impl.smooth_circular(seas, smooth_width)
        thresh = impl.smooth_circular(thresh, smooth_width)
    return _to_grid(seas, space), _to_grid(thresh, space)


def _to_grid(stat: Any, space: tuple[int, ...]) -> Any:
    return array_module(stat).ascontiguousarray(stat.T).reshape((stat.shape[1], *space))

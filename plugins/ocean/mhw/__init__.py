"""Marine-heatwave (and cold-spell) detection with the Hobday et al. (2016, 2018) metrics.

:func:`detect_events` runs the per-pixel detection on a (time, ...) block against a
366-day climatology; :func:`yearly_summary` grids the events into yearly counts,
days and intensities. ``_reference`` is the NumPy specification (one pixel at a
time), ``_cpu`` the numba kernel and ``_gpu`` the ``numba.cuda`` kernel.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from minjiang.core.errors import ContractError, ParameterError
from minjiang.kernels import array_namespace as array_module
from minjiang.kernels import resolve_backend, to_host
from minjiang.plugins.ocean._time import Calendar, daily_axis
from minjiang.plugins.ocean.mhw._reference import FLOAT_METRICS, INT_METRICS

__all__ = ["FLOAT_METRICS", "INT_METRICS", "Events", "detect_events", "yearly_summary"]


@dataclasses.dataclass(frozen=True)
class Events:
    """Events of a block: ``pixel`` (flat index into the block's space), the integer
    and float metrics (columns named by ``INT_METRICS`` / ``FLOAT_METRICS``), and the
    gap-free daily calendar that the ``index_*`` columns point into."""

    pixel: np.ndarray
    ints: np.ndarray
    floats: np.ndarray
    calendar: Calendar
    n_pixels: int

    def __len__(self) -> int:
        return int(self.pixel.size)

    def column(self, name: str) -> np.ndarray:
        if name in INT_METRICS:
            return self.ints[:, INT_METRICS.index(name)]
        return self.floats[:, FLOAT_METRICS.index(name)]


def detect_events(
    data: Any,
    time: Calendar,
    seas: Any,
    thresh: Any,
    *,
    min_duration: int = 5,
    join_gaps: bool = True,
    max_gap: int = 2,
    max_pad_length: int = 0,
    cold_spells: bool = False,
    backend: str | None = None,
) -> Events:
    """Detect events in every pixel of ``data``.

    Parameters
    ----------
    data
        (time, ...) daily values, NaN where missing.
    time
        Its time axis; missing days (gaps in the axis) count as missing values.
    seas, thresh
        (366, ...) daily climatology and threshold (from ``ocean.climatology``).
    min_duration
        Shortest event, in days (Hobday et al. 2016: 5).
    join_gaps, max_gap
        Join events separated by at most ``max_gap`` days (2).
    max_pad_length
        Interpolate runs of at most this many missing days first (0: none).
    cold_spells
        Detect values below ``thresh`` (a low-percentile threshold) instead.
    backend
        ``"cpu"`` (numba), ``"gpu"`` (``numba.cuda`` on CuPy arrays) or
        ``"reference"`` (NumPy); ``None`` follows the arrays: ``"gpu"`` for CuPy
        arrays, else ``"cpu"``.

    Returns
    -------
    Events
        On the host whatever the backend (events become an Arrow table there).
    """
    if seas.shape != thresh.shape or seas.shape[0] != 366:
        raise ContractError(
            f"ocean.marine_heatwaves: seas and thresh must both be (366, ...) day-of-year "
            f"climatologies; got {seas.shape!r} and {thresh.shape!r}. Compute them with "
            "ocean.climatology (frequency='daily')"
        )
    if seas.shape[1:] != data.shape[1:]:
        raise ContractError(
            f"ocean.marine_heatwaves: the climatology grid {seas.shape[1:]!r} differs from the "
            f"data grid {data.shape[1:]!r}; compute the climatology from the same dataset"
        )
    if min_duration < 1 or max_gap < 0:
        raise ParameterError(
            f"ocean.marine_heatwaves: min_duration must be >= 1 and max_gap >= 0, got "
            f"{min_duration} and {max_gap}"
        )
    backend = resolve_backend(
        backend, data, seas, thresh, kernel="ocean.marine_heatwaves", has_gpu=True
    )
    axis = daily_axis(time, what="ocean.marine_heatwaves")
    cal = axis.dense
    npix = int(np.prod(data.shape[1:], dtype=np.int64))
    if backend == "gpu":
        # (time, pixel) in memory, the data's own order, read through (pixel, time)
        # views: a warp of pixel threads then loads each day coalesced
        xp = array_module(data)
        dense = xp.full((len(cal), npix), np.nan, dtype=np.float64)
        dense[xp.asarray(axis.position)] = data.reshape(len(time), npix)
        temps = dense.T
        s2 = xp.ascontiguousarray(seas.reshape(366, npix), dtype=np.float64).T
        t2 = xp.ascontiguousarray(thresh.reshape(366, npix), dtype=np.float64).T
    else:
        temps = np.full((npix, len(cal)), np.nan, dtype=np.float64)
        temps[:, axis.position] = data.reshape(len(time), npix).T
        s2 = np.ascontiguousarray(seas.reshape(366, npix).T, dtype=np.float64)
        t2 = np.ascontiguousarray(thresh.reshape(366, npix).T, dtype=np.float64)
    if max_pad_length:
        from minjiang.plugins.ocean._gaps import pad_gaps_for

        temps = pad_gaps_for(backend)(temps, max_pad_length)
    doy = cal.doy
    opts: dict[str, Any] = {
        "min_duration": min_duration,
        "join_gaps": join_gaps,
        "max_gap": max_gap,
        "cold_spells": cold_spells,
    }
    if backend == "reference":
        from minjiang.plugins.ocean.mhw._reference import detect_pixel

        pix, ints, floats = [], [], []
        for p in range(npix):
            i, f = detect_pixel(temps[p], s2[p], t2[p], doy, **opts)
            pix.append(np.full(len(i), p, dtype=np.int64))
            ints.append(i)
            floats.append(f)
        pixel = np.concatenate(pix) if pix else np.zeros(0, np.int64)
        ints_a = np.concatenate(ints) if ints else np.zeros((0, len(INT_METRICS)), np.int64)
        floats_a = np.concatenate(floats) if floats else np.zeros((0, len(FLOAT_METRICS)))
    elif backend == "cpu":
        from minjiang.plugins.ocean.mhw._cpu import detect

        pixel, ints_a, floats_a = detect(temps, s2, t2, doy, **opts)
    else:
        from minjiang.plugins.ocean.mhw import _gpu

        pixel, ints_a, floats_a = (to_host(a) for a in _gpu.detect(temps, s2, t2, doy, **opts))
    return Events(pixel, ints_a, floats_a, cal, npix)


#: Gridded yearly summaries written by ``ocean.marine_heatwaves``.
SUMMARIES = ("count", "days", "intensity_mean", "intensity_max", "intensity_cumulative")


def yearly_summary(
    events: Events, years: np.ndarray, valid: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Grid events into yearly statistics, each (year, pixel) float32.

    ``count``: events starting in the year; ``days``: days of the year inside an
    event (events spanning a new year are split); ``intensity_mean``: mean of the
    events' mean intensities, ``intensity_max``: largest peak intensity and
    ``intensity_cumulative``: sum of cumulative intensities, over events starting in
    the year (NaN when none). ``valid`` (pixel,) marks pixels with data; others are
    NaN throughout. Years are calendar years of ``events.calendar``.
    """
    cal = events.calendar
    npix = events.n_pixels
    ny = years.size
    y0 = int(years[0])
    out = {
        "count": np.zeros((ny, npix)),
        "days": np.zeros((ny, npix)),
        "intensity_mean": np.zeros((ny, npix)),
        "intensity_max": np.full((ny, npix), -np.inf),
        "intensity_cumulative": np.zeros((ny, npix)),
    }
    start = events.column("index_start")
    end = events.column("index_end")
    yi = cal.year[start] - y0
    keep = (yi >= 0) & (yi < ny)
    np.add.at(out["count"], (yi[keep], events.pixel[keep]), 1.0)
    np.add.at(
        out["intensity_mean"], (yi[keep], events.pixel[keep]), events.column("intensity_mean")[keep]
    )
    np.add.at(
        out["intensity_cumulative"],
        (yi[keep], events.pixel[keep]),
        events.column("intensity_cumulative")[keep],
    )
    np.maximum.at(
        out["intensity_max"], (yi[keep], events.pixel[keep]), events.column("intensity_max")[keep]
    )
    # days: a +1/-1 difference array over the dense axis, summed per calendar year
    n = len(cal)
    inside = np.zeros((npix, n + 1))
    np.add.at(inside, (events.pixel, start), 1.0)
    np.add.at(inside, (events.pixel, end + 1), -1.0)
    member = np.cumsum(inside[:, :n], axis=1)
    ycal = cal.year - y0
    for k in range(ny):
        sel = ycal == k
        if sel.any():
            out["days"][k] = member[:, sel].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        none = out["count"] == 0
        out["intensity_mean"] = np.where(none, np.nan, out["intensity_mean"] / out["count"])
        out["intensity_max"] = np.where(none, np.nan, out["intensity_max"])
        out["intensity_cumulative"] = np.where(none, np.nan, out["intensity_cumulative"])
    if valid is not None:
        for v in out.values():
            v[:, ~valid] = np.nan
    return {k: v.astype(np.float32) for k, v in out.items()}

"""Which samples feed each day-of-year (or month) of a climatology.

The pools depend only on the time axis, never on the data, so they are built once
per block as a CSR table (``offsets``, ``index``) into a per-pixel sample vector and
shared by the NumPy reference and the numba kernel.

Two conventions are implemented:

``marineHeatWaves`` (E. Oliver's reference code, Hobday et al. 2016)
    Samples are the days of the series itself. For day-of-year ``d`` the pool holds
    every day within ``±window_half_width`` days (in time, so windows cross year
    ends and may reach just outside the base period) of each base-period date whose
    day-of-year is ``d``. Day 60 (29 Feb) gets no pool; it is set afterwards to the
    mean of days 59 and 61.

``heatwaveR`` (heatwaveR ``ts2clm`` as reimplemented by heatwave3 1.4)
    Samples are the base-period days laid out on 366-day years: every year gets a
    29 February, filled where missing with the mean of 28 Feb and 1 Mar of that
    year (or the one of them that exists), rounded to 2 decimals (measured
    against heatwave3 1.4.2 with spike inputs; see docs/plugins/ocean.md). The window runs
    over this augmented series in time, so it crosses year ends inside the base
    period and is cut at its first and last day.
"""

from __future__ import annotations

import numpy as np
from minjiang.core.errors import ContractError
from minjiang.plugins.ocean._time import DOY_FEB29, Calendar

__all__ = ["Pools", "heatwaver_pools", "marineheatwaves_pools", "monthly_pools", "spread"]


class Pools:
    """CSR table: pool ``k`` holds samples ``index[offsets[k]:offsets[k + 1]]``."""

    def __init__(self, offsets: np.ndarray, index: np.ndarray) -> None:
        self.offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        self.index = np.ascontiguousarray(index, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.offsets.size - 1)

    def pool(self, k: int) -> np.ndarray:
        return self.index[self.offsets[k] : self.offsets[k + 1]]

    @classmethod
    def from_lists(cls, lists: list[np.ndarray]) -> Pools:
        sizes = np.array([len(x) for x in lists], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        index = np.concatenate(lists) if lists else np.zeros(0, np.int64)
        return cls(offsets, index)


def base_range(cal: Calendar, period: tuple[int, int] | None, *, what: str) -> tuple[int, int]:
    """Resolve the base period (inclusive years), checking it lies within the data."""
    first, last = int(cal.year[0]), int(cal.year[-1])
    y0, y1 = (first, last) if period is None else (int(period[0]), int(period[1]))
    if y0 > y1:
        raise ContractError(f"{what}: climatology_period {[y0, y1]!r} ends before it starts")
    if y0 < first or y1 > last:
        raise ContractError(
            f"{what}: climatology_period {[y0, y1]!r} is outside the data, which covers "
            f"{first}..{last}; choose base years within it"
        )
    return y0, y1


def marineheatwaves_pools(cal: Calendar, y0: int, y1: int, half_width: int) -> Pools:
    """Pools over a gap-free daily series (``cal`` must be dense)."""
    n = len(cal)
    doy = cal.doy
    in_base = np.flatnonzero((cal.year >= y0) & (cal.year <= y1))
    start, stop = int(in_base[0]), int(in_base[-1]) + 1
    offsets_w = np.arange(-half_width, half_width + 1, dtype=np.int64)
    lists = []
    for d in range(1, 367):
        if d == DOY_FEB29:
            lists.append(np.zeros(0, np.int64))
            continue
        centres = start + np.flatnonzero(doy[start:stop] == d)
        idx = (centres[:, None] + offsets_w[None, :]).ravel()
        lists.append(idx[(idx >= 0) & (idx < n)])
    return Pools.from_lists(lists)


def spread(values: np.ndarray, cal: Calendar, y0: int, y1: int) -> np.ndarray:
    """The (pixel, n_years × 366) samples of the heatwaveR convention.

    ``values`` is (pixel, time) on the dense daily axis ``cal``. Sample
    ``col * 366 + row`` is day-of-year ``row + 1`` of year ``y0 + col``.
    """
    n_years = y1 - y0 + 1
    sel = np.flatnonzero((cal.year >= y0) & (cal.year <= y1))
    flat = (cal.year[sel] - y0) * 366 + (cal.doy[sel] - 1)
    out = np.full((values.shape[0], 366 * n_years), np.nan, dtype=np.float64)
    out[:, flat] = values[:, sel]
    mat = out.reshape(values.shape[0], n_years, 366)
    feb28, feb29, mar1 = mat[:, :, DOY_FEB29 - 2], mat[:, :, DOY_FEB29 - 1], mat[:, :, DOY_FEB29]
    missing = np.isnan(feb29)
    fill = np.where(np.isnan(feb28), mar1, np.where(np.isnan(mar1), feb28, (feb28 + mar1) / 2.0))
    fill = np.sign(fill) * np.floor(np.abs(fill) * 100.0 + 0.5) / 100.0  # C's round(), 2 decimals
    feb29[missing] = fill[missing]
    return out


def heatwaver_pools(n_years: int, half_width: int) -> Pools:
    """Pools over :func:`spread` samples: ±half_width in time, cut at the base period."""
    centres = np.arange(n_years, dtype=np.int64) * 366
    offsets_w = np.arange(-half_width, half_width + 1, dtype=np.int64)
    lists = []
    for d in range(366):
        idx = ((centres + d)[:, None] + offsets_w[None, :]).ravel()
        lists.append(idx[(idx >= 0) & (idx < 366 * n_years)])
    return Pools.from_lists(lists)


def monthly_pools(cal: Calendar, y0: int, y1: int) -> Pools:
    """Pool ``m`` holds every base-period step in calendar month ``m + 1``."""
    in_base = (cal.year >= y0) & (cal.year <= y1)
    return Pools.from_lists([np.flatnonzero(in_base & (cal.month == m)) for m in range(1, 13)])

"""Calendar arithmetic for daily and monthly ocean time series.

The marine-heatwave definitions work on a 366-day climatological year: every date
gets the day-of-year it has in a leap year, so 1 March is day 61 in every year and
day 60 (29 February) exists only in leap years (Hobday et al. 2016; the
``marineHeatWaves`` reference code builds the same table from the year 2012).
Time coordinates arrive either as ``datetime64`` (standard calendars, as xarray
decodes them) or as ``cftime`` objects (model calendars); both are reduced here to
integer day numbers plus (year, month, day).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from minjiang.core.errors import ContractError

__all__ = ["DOY_FEB29", "Calendar", "daily_axis", "decode_time", "doy366"]

#: Day-of-year of 29 February in the 366-day climatological year.
DOY_FEB29 = 60
_CUM366 = np.array([0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335], dtype=np.int64)
_DAY_UNITS = "days since 0001-01-01 00:00:00"


def doy366(month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Day of the 366-day climatological year (1..366) for month and day-of-month."""
    return _CUM366[np.asarray(month, dtype=np.int64) - 1] + np.asarray(day, dtype=np.int64)


@dataclasses.dataclass(frozen=True)
class Calendar:
    """Integer day numbers and calendar fields of a time axis.

    ``day`` counts days from an arbitrary origin in the axis' own calendar, so
    consecutive days differ by exactly one whatever the calendar.
    """

    day: np.ndarray
    year: np.ndarray
    month: np.ndarray
    dom: np.ndarray
    calendar: str

    @property
    def doy(self) -> np.ndarray:
        return doy366(self.month, self.dom)

    def __len__(self) -> int:
        return int(self.day.size)

    def iso(self, i: int) -> str:
        """``YYYY-MM-DD`` of element ``i``."""
        return f"{int(self.year[i]):04d}-{int(self.month[i]):02d}-{int(self.dom[i]):02d}"


def _from_datetime64(values: np.ndarray) -> Calendar:
    d = values.astype("datetime64[D]")
    months = d.astype("datetime64[M]")
    year = months.astype(np.int64) // 12 + 1970
    month = months.astype(np.int64) % 12 + 1
    dom = (d - months.astype("datetime64[D]")).astype(np.int64) + 1
    return Calendar(d.astype(np.int64), year, month, dom, "proleptic_gregorian")


def _from_cftime(values: np.ndarray) -> Calendar:
    import cftime

    calendar = str(getattr(values.flat[0], "calendar", "") or "standard")
    num = cftime.date2num(list(values.ravel()), _DAY_UNITS, calendar=calendar)
    day = np.floor(np.asarray(num, dtype=np.float64)).astype(np.int64)
    year = np.fromiter((v.year for v in values.ravel()), np.int64, values.size)
    month = np.fromiter((v.month for v in values.ravel()), np.int64, values.size)
    dom = np.fromiter((v.day for v in values.ravel()), np.int64, values.size)
    return Calendar(day, year, month, dom, calendar)


def decode_time(values: Any, attrs: Any = None, *, what: str = "time") -> Calendar:
    """Reduce a time coordinate to day numbers and calendar fields.

    Parameters
    ----------
    values
        ``datetime64`` values, ``cftime`` objects, or numbers with CF ``units`` (and
        ``calendar``) in ``attrs``.
    attrs
        The coordinate's attributes, used only for numeric values.
    what
        Name used in error messages.

    Returns
    -------
    Calendar
    """
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ContractError(f"{what}: expected a 1-D time coordinate, got shape {arr.shape!r}")
    if arr.size == 0:
        day, year, month, dom = (np.zeros(0, np.int64) for _ in range(4))
        return Calendar(day, year, month, dom, "standard")
    if np.issubdtype(arr.dtype, np.datetime64):
        if np.isnat(arr).any():
            raise ContractError(
                f"{what}: the time coordinate holds NaT values; drop or fix those steps"
            )
        return _from_datetime64(arr)
    if arr.dtype == object:
        return _from_cftime(arr)
    if np.issubdtype(arr.dtype, np.number):
        units = (attrs or {}).get("units")
        if not units or "since" not in str(units):
            raise ContractError(
                f"{what}: the time coordinate is numeric without CF units ('days since ...'); "
                "ingest it with the ocean.netcdf reader so that times are decoded"
            )
        import cftime

        calendar = str((attrs or {}).get("calendar", "standard"))
        dates = cftime.num2date(arr, str(units), calendar=calendar, only_use_cftime_datetimes=True)
        return _from_cftime(np.asarray(dates, dtype=object))
    raise ContractError(f"{what}: cannot read time values of dtype {arr.dtype!r}")


@dataclasses.dataclass(frozen=True)
class DailyAxis:
    """A gap-free daily axis covering a (possibly gappy) input time axis.

    ``position[i]`` is where input step ``i`` lands on the dense axis.
    """

    dense: Calendar
    position: np.ndarray


def daily_axis(cal: Calendar, *, what: str = "time") -> DailyAxis:
    """Expand ``cal`` to consecutive days (missing days are gaps to fill with NaN).

    Raises :class:`ContractError` when the steps are not strictly increasing whole
    days, or the calendar has no 366-day year mapping (``360_day``).
    """
    if cal.calendar in ("360_day",):
        raise ContractError(
            f"{what}: daily day-of-year statistics are not defined for the '360_day' calendar "
            "(it has 30 February); use frequency='monthly', or regrid in time to a real calendar"
        )
    if len(cal) == 0:
        raise ContractError(f"{what}: the time axis is empty")
    steps = np.diff(cal.day)
    if steps.size and steps.min() <= 0:
        bad = int(np.argmin(steps))
        raise ContractError(
            f"{what}: time steps must be strictly increasing days; steps {bad} and {bad + 1} "
            f"({cal.iso(bad)!r}, {cal.iso(bad + 1)!r}) are not. Sort the files and remove "
            "duplicated or sub-daily steps (resample to daily means first)"
        )
    day0 = int(cal.day[0])
    n = int(cal.day[-1]) - day0 + 1
    position = (cal.day - day0).astype(np.int64)
    if n == len(cal):
        return DailyAxis(cal, position)
    dense_day = np.arange(day0, day0 + n, dtype=np.int64)
    if cal.calendar == "proleptic_gregorian":
        dense = _from_datetime64(dense_day.astype("datetime64[D]"))
    else:
        import cftime

        dates = cftime.num2date(
            dense_day, _DAY_UNITS, calendar=cal.calendar, only_use_cftime_datetimes=True
        )
        dense = _from_cftime(np.asarray(dates, dtype=object))
        dense = dataclasses.replace(dense, day=dense_day)
    return DailyAxis(dense, position)

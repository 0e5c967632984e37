"""Coordinate decoding: the decoding done without xarray equals xarray's own, exactly.

``read_coord_values`` decodes plain coordinates and whole-number standard-calendar
times itself and hands everything else to ``xarray.conventions.decode_cf_variable``.
Each case here is decoded by xarray directly (the reference) and through a store; the
results must have the same dtype and the same values, and each case is checked to take
the path it is meant to take.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from minjiang.storage import DatasetWriter, Store, open_dataset_info, open_store, read_coord_values
from minjiang.storage._reader import _decode_without_xarray
from xarray.conventions import decode_cf_variable


def _xarray_decode(values: np.ndarray, attrs: dict[str, Any]) -> np.ndarray:
    var = xr.Variable(("n",), values, attrs=dict(attrs))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(decode_cf_variable("c", var, decode_timedelta=True).values)


def _assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape
    if want.dtype.kind == "O":
        assert list(got) == list(want)
    else:
        np.testing.assert_array_equal(got, want, strict=True)


_INTS = np.array([0, 1, 2, 30, 365, -5, 1000], dtype=np.int64)

# (values, attrs, decoded without xarray?)
CASES: list[tuple[np.ndarray, dict[str, Any], bool]] = [
    # plain coordinates: returned as read
    (np.linspace(-90, 90, 7), {"units": "degrees_north", "standard_name": "latitude"}, True),
    (np.linspace(0, 1, 5, dtype=np.float32), {"long_name": "depth fraction"}, True),
    (np.arange(6, dtype=np.int32), {}, True),
    (np.arange(4, dtype=np.uint16), {"units": "1"}, True),
    # CF times: each unit, with and without a time of day, "T" or space, Z/UTC
    (_INTS, {"units": "days since 2000-01-01"}, True),
    (_INTS.astype(np.int32), {"units": "hours since 2000-01-01 06:00"}, True),
    (_INTS, {"units": "minutes since 1999-12-31T23:59:00"}, True),
    (_INTS * 86_400, {"units": "seconds since 1970-01-01 00:00:00"}, True),
    (_INTS, {"units": "milliseconds since 2010-06-15T12:30:45.25"}, True),
    (_INTS, {"units": "microseconds since 2010-06-15 12:30:45.123456"}, True),
    (_INTS, {"units": "seconds since 1970-01-01T00:00:00Z"}, True),
    (_INTS, {"units": "seconds since 1970-01-01 00:00:00 UTC"}, True),
    (_INTS, {"units": "day since 1850-01-01"}, True),  # singular, as CF allows
    (_INTS, {"units": "Days since 1850-01-01"}, True),
    (_INTS, {"units": "days since 2000-01-01", "calendar": "standard"}, True),
    (_INTS, {"units": "days since 2000-01-01", "calendar": "gregorian"}, True),
    (_INTS, {"units": "days since 2000-01-01", "calendar": "proleptic_gregorian"}, True),
    (_INTS.astype(np.float64), {"units": "days since 2000-01-01"}, True),
    (_INTS.astype(np.float32), {"units": "hours since 2000-01-01"}, True),
    (np.array([1.7e9, 1.7e9 + 1]), {"units": "seconds since 1970-01-01"}, True),
    (-_INTS, {"units": "days since 2000-01-01"}, True),
    # near the ends of datetime64[ns]
    (np.array([0, 90_000], dtype=np.int64), {"units": "days since 2000-01-01"}, True),
    (np.array([0, 110_000], dtype=np.int64), {"units": "days since 2000-01-01"}, False),
    (np.array([0, -120_000], dtype=np.int64), {"units": "days since 2000-01-01"}, False),
    # xarray's business: other calendars, fractions, fills, odd units and references
    (_INTS, {"units": "days since 2000-01-01", "calendar": "noleap"}, False),
    (_INTS, {"units": "days since 2000-01-01", "calendar": "360_day"}, False),
    (_INTS, {"units": "days since 2000-01-01", "calendar": "julian"}, False),
    (_INTS + 0.5, {"units": "days since 2000-01-01"}, False),
    (np.array([0.0, np.nan, 2.0]), {"units": "days since 2000-01-01"}, False),
    (_INTS, {"units": "days since 2000-01-01", "_FillValue": -5}, False),
    (_INTS, {"units": "days since 2000-01-01", "missing_value": -5}, False),
    (np.linspace(0, 1, 4), {"units": "m", "scale_factor": 2.0, "add_offset": 1.0}, False),
    (np.arange(4, dtype=np.int8), {"_Unsigned": "true"}, False),
    (np.arange(4, dtype=np.float64), {"_FillValue": 2.0}, False),
    (_INTS, {"units": "days since 1-1-1"}, False),
    (_INTS, {"units": "days since 2000-1-1"}, False),
    (_INTS, {"units": "days since 1500-01-01"}, False),
    (_INTS, {"units": "days since 2000-01-01T00:00:00+01:00"}, False),
    (_INTS, {"units": "secs since 2000-01-01"}, False),
    (_INTS, {"units": "days"}, False),  # a timedelta
    (_INTS, {"units": "seconds"}, False),
    (np.arange(4, dtype=np.uint32), {"units": "days since 2000-01-01"}, False),
]


@pytest.fixture(scope="module")
def case_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = open_store(tmp_path_factory.mktemp("coords") / "store")
    w = DatasetWriter(store, "cases")
    for i, (values, attrs, _) in enumerate(CASES):
        w.write_coord(f"c{i:02d}", values, dims=(f"c{i:02d}",), attrs=attrs)
    w.consolidate()
    return store


@pytest.mark.parametrize(
    "i", range(len(CASES)), ids=[f"{a.get('units', '-')}|{v.dtype}" for v, a, _ in CASES]
)
def test_read_coord_values_equals_xarray(case_store: Store, i: int) -> None:
    values, attrs, fast = CASES[i]
    info = open_dataset_info(case_store, "cases").coords[f"c{i:02d}"]
    want = _xarray_decode(values, attrs)
    _assert_same(read_coord_values(case_store, info), want)
    stored = {k: v for k, v in info.attrs.items() if k != "coordinates"}
    assert (_decode_without_xarray(np.asarray(values), stored) is not None) is fast


def test_random_times_equal_xarray() -> None:
    """Random units, references and values: wherever the decoding without xarray
    answers, it is xarray's answer."""
    rng = np.random.default_rng(7)
    units = ["days", "hours", "minutes", "seconds", "milliseconds", "microseconds"]
    spans = {"days": 40_000, "hours": 10**6, "minutes": 10**7, "seconds": 10**9}
    answered = 0
    for _ in range(300):
        unit = str(rng.choice(units))
        span = spans.get(unit, 10**12)
        ref = np.datetime64("1800-01-01") + np.timedelta64(int(rng.integers(0, 150_000)), "D")
        text = str(ref)
        if rng.random() < 0.5:
            sep = "T" if rng.random() < 0.5 else " "
            text += f"{sep}{rng.integers(0, 24):02d}:{rng.integers(0, 60):02d}"
            if rng.random() < 0.5:
                text += f":{rng.integers(0, 60):02d}"
        dtype = rng.choice([np.int32, np.int64, np.float64])
        high = min(span, np.iinfo(np.int32).max) if dtype is np.int32 else span
        values = rng.integers(-high, high, size=8).astype(dtype)
        attrs = {"units": f"{unit} since {text}"}
        fast = _decode_without_xarray(values, attrs)
        if fast is None:
            continue
        answered += 1
        _assert_same(fast, _xarray_decode(values, attrs))
    assert answered > 200


def test_standard_times_decode_without_xarray(tmp_path: Path) -> None:
    """A store's standard-calendar time coordinate is decoded without importing
    xarray, pandas or dask (seconds of a command's start-up)."""
    store = open_store(tmp_path / "store")
    w = DatasetWriter(store, "t")
    times = np.arange("2001-01-01", "2001-02-01", dtype="datetime64[D]").astype("datetime64[ns]")
    w.write_coord("time", times, dims=("time",))
    w.write_coord("lat", np.linspace(-80, 80, 5), dims=("lat",), attrs={"units": "degrees_north"})
    w.consolidate()
    code = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from minjiang.storage import open_dataset_info, open_store, read_coord_values

        store = open_store({str(tmp_path / "store")!r})
        info = open_dataset_info(store, "t")
        time = read_coord_values(store, info.coords["time"])
        lat = read_coord_values(store, info.coords["lat"])
        assert time.dtype == np.dtype("datetime64[ns]"), time.dtype
        assert str(time[0]) == "2001-01-01T00:00:00.000000000", time[0]
        assert lat.dtype == np.float64
        print(sorted(m for m in ("xarray", "pandas", "dask") if m in sys.modules))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["[]"], out.stdout + out.stderr
    info = open_dataset_info(store, "t")
    np.testing.assert_array_equal(read_coord_values(store, info.coords["time"]), times)

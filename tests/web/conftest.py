"""A real store for the web catalog tests: a small SST cube and region labels ingested
with ``array.zarr``, smoothed with ``array.gaussian``, summarised per region with
``array.label_stats`` (a table), in one pipeline whose report writes a PNG quicklook;
plus an ocean SST file read by ``ocean.netcdf`` (another domain, place and year), so
that searches have something to leave out."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from minjiang.core import hookimpl

pytest.importorskip("fastapi", reason="the web extra is not installed (pip install minjiang[web])")

PIPELINE = {
    "name": "webtest.sst_regions",
    "version": "1",
    "inputs": ["cube", "regions"],
    "report": "webtest.quicklook",
    "steps": [
        {"id": "sst", "reader": "array.zarr", "paths": "$cube", "name": "webtest/sst"},
        {"id": "zones", "reader": "array.zarr", "paths": "$regions", "name": "webtest/regions"},
        {
            "id": "smooth",
            "operator": "array.gaussian",
            "inputs": {"x": "sst"},
            "params": {"sigma": {"time": 0, "y": 1.0, "x": 1.0}},
            "name": "webtest/sst-smooth",
        },
        {
            "id": "mean",
            "operator": "array.reduce",
            "inputs": {"x": "smooth"},
            "params": {"dims": ["time"], "stat": "mean"},
            "name": "webtest/sst-mean",
        },
        {
            "id": "by_region",
            "operator": "array.label_stats",
            "inputs": {"values": "mean", "labels": "zones"},
            "name": "webtest/sst-by-region",
        },
    ],
}


def _quicklook(results: dict[str, Any], directory: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mean = results["mean"].to_xarray()["mean"].values
    fig, ax = plt.subplots(figsize=(3, 2), dpi=60)
    ax.imshow(mean, origin="lower")
    ax.set_title("mean smoothed SST")
    out = directory / "mean-sst.png"
    fig.savefig(out)
    plt.close(fig)
    return [out]


class _Reports:
    @hookimpl
    def minjiang_register_reports(self) -> list[Any]:
        from minjiang.core._pipeline import Report

        return [Report("webtest.quicklook", _quicklook, steps=("mean",))]


@dataclass(frozen=True)
class WebStore:
    """The store and what the tests compare the server's answers with."""

    root: Path
    runtime: Any
    ids: dict[str, str]  # step id (and "ocean") -> dataset id
    cube: np.ndarray
    report_dir: str


def _write(path: Path, name: str, values: np.ndarray, dims: tuple[str, ...], chunks, coords):
    import xarray as xr

    ds = xr.Dataset(
        {name: (dims, values, {"units": "degC"} if name == "sst" else {})}, coords=coords
    )
    if name == "sst":
        ds["sst"].attrs["standard_name"] = "sea_surface_temperature"
    ds.attrs["title"] = f"web catalog test {name}"
    ds.attrs["comment"] = "<script>alert('attributes are text')</script>"
    ds.to_zarr(
        path, mode="w", zarr_format=3, consolidated=False, encoding={name: {"chunks": chunks}}
    )
    return path


def _ocean_file(path: Path, rng: np.random.Generator) -> Path:
    """Daily SST of 2022 on a small lat/lon grid off south-west Africa, as NetCDF."""
    import pandas as pd
    import xarray as xr

    time = pd.date_range("2022-01-01", periods=5, freq="D")
    lat = np.arange(-40.0, -35.0, 1.0)
    lon = np.arange(10.0, 16.0, 1.0)
    sst = (15 + rng.normal(0, 1, (time.size, lat.size, lon.size))).astype(np.float32)
    xr.Dataset(
        {
            "sst": (
                ("time", "lat", "lon"),
                sst,
                {"units": "degC", "standard_name": "sea_surface_temperature"},
            )
        },
        coords={
            "time": time,
            "lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", lon, {"units": "degrees_east", "standard_name": "longitude"}),
        },
    ).to_netcdf(path, engine="netcdf4")
    return path


@pytest.fixture(scope="package")
def web_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebStore]:
    import pandas as pd
    from minjiang.core._runtime import Runtime

    tmp = tmp_path_factory.mktemp("web-store")
    rng = np.random.default_rng(7)
    nt, ny, nx = 6, 10, 12
    cube = (20 + rng.normal(0, 1, (nt, ny, nx))).astype(np.float32)
    cube[:, 0, 0] = np.nan  # a land cell: the quality summary counts it
    coords = {
        "time": ("time", pd.date_range("2021-03-01", periods=nt, freq="D")),
        "lat": ("y", np.linspace(10.0, 19.0, ny), {"units": "degrees_north"}),
        "lon": ("x", np.linspace(110.0, 121.0, nx), {"units": "degrees_east"}),
    }
    labels = (np.arange(ny * nx).reshape(ny, nx) % 3 + 1).astype(np.int32)
    cube_path = _write(tmp / "cube.zarr", "sst", cube, ("time", "y", "x"), (3, 5, 6), coords)
    lab_path = _write(
        tmp / "regions.zarr",
        "regions",
        labels,
        ("y", "x"),
        (5, 6),
        {k: v for k, v in coords.items() if k != "time"},
    )
    rt = Runtime(store=tmp / "store", executor="local", memory_budget="1GiB")
    rt.register(_Reports(), name="webtest")
    out = rt.run_pipeline(PIPELINE, inputs={"cube": str(cube_path), "regions": str(lab_path)})
    ids = {step: res.id for step, res in out.results.items()}
    ids["ocean"] = rt.ingest(
        "ocean.netcdf", [_ocean_file(tmp / "ocean.nc", rng)], name="webtest/ocean-sst"
    ).id
    assert out.reports, "the pipeline's report wrote no quicklook"
    yield WebStore(
        root=tmp / "store",
        runtime=rt,
        ids=ids,
        cube=cube,
        report_dir=out.reports[0].parent.parent.name,
    )
    rt.close()

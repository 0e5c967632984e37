"""``minjiang demo``: the main job on the embedded default (local Ray, local store).

It writes a small synthetic sea-surface-temperature cube and a region raster as plain
Zarr groups, then runs one pipeline that uses every chunk pattern: ingest, a
Gaussian (map + halo), a time mean (reduce), a 90th percentile over time (full_axis,
over data stored in time slabs), and per-region statistics (aggregate → table). A second
run reuses every step from the catalog and says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["DEMO_PIPELINE", "make_demo_inputs", "synthetic_sst"]

DEMO_PIPELINE = """\
name: demo.sst_summary
version: "1"
description: Smooth a daily SST cube, then summarise it per pixel and per region.
inputs: [cube, regions]
steps:
  - id: sst
    reader: array.zarr
    paths: $cube
    name: demo/sst
  - id: zones
    reader: array.zarr
    paths: $regions
    name: demo/regions
  - id: smooth
    operator: array.gaussian
    inputs: {x: sst}
    params: {sigma: {time: 0, y: 1.5, x: 1.5}}
    name: demo/sst-smooth
  - id: mean
    operator: array.reduce
    inputs: {x: smooth}
    params: {dims: [time], stat: mean}
    name: demo/sst-mean
  - id: p90
    operator: array.quantile
    inputs: {x: smooth}
    params: {dim: time, q: 0.9}
    name: demo/sst-p90
  - id: by_region
    operator: array.label_stats
    inputs: {values: p90, labels: zones}
    name: demo/sst-p90-by-region
"""


def synthetic_sst(years: int = 3, ny: int = 48, nx: int = 64, seed: int = 0) -> Any:
    """A daily (time, y, x) float32 SST-like cube with a seasonal cycle, noise, a warm
    event and a land mask (NaN), as an :class:`xarray.Dataset` with CF coordinates."""
    import numpy as np
    import pandas as pd
    import xarray as xr

    rng = np.random.default_rng(seed)
    time = pd.date_range("2020-01-01", periods=int(365.25 * years), freq="D")
    lat = np.linspace(-30, 30, ny)
    lon = np.linspace(120, 180, nx, endpoint=False)
    doy = time.day_of_year.to_numpy()
    base = 20 + 8 * np.cos(np.deg2rad(lat))[:, None] + 0 * lon[None, :]
    season = (
        3
        * np.sin(2 * np.pi * (doy - 80) / 365.25)[:, None, None]
        * np.sign(lat + 1e-9)[None, :, None]
    )
    sst = base[None] + season + rng.normal(0, 0.6, (len(time), ny, nx))
    # a warm event: 40 days, centred in the domain, in the second year
    t0 = 365 + 150
    yy, xx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    blob = np.exp(-(((yy - ny / 2) / (ny / 6)) ** 2 + ((xx - nx / 2) / (nx / 6)) ** 2))
    sst[t0 : t0 + 40] += 2.5 * blob[None]
    land = (yy - ny * 0.8) ** 2 + (xx - nx * 0.15) ** 2 < (min(ny, nx) * 0.12) ** 2
    sst[:, land] = np.nan
    ds = xr.Dataset(
        {
            "sst": (
                ("time", "y", "x"),
                sst.astype(np.float32),
                {"units": "degC", "standard_name": "sea_surface_temperature"},
            )
        },
        coords={
            "time": ("time", time),
            "lat": ("y", lat, {"units": "degrees_north"}),
            "lon": ("x", lon, {"units": "degrees_east"}),
        },
        attrs={"title": "minjiang synthetic SST demo cube", "source": "synthetic"},
    )
    return ds


def make_demo_inputs(
    directory: str | Path, *, years: int = 3, ny: int = 48, nx: int = 64, seed: int = 0
) -> tuple[Path, Path]:
    """Write the demo cube (time-slab chunks) and region raster as Zarr v3 groups.

    Raises
    ------
    ParameterError
        For a size outside the demo's range (``years`` 1-100, ``ny``/``nx`` 4-4096) or
        a ``directory`` that cannot be created.
    """
    from minjiang.core.errors import ParameterError

    for what, value, low, high in (
        ("years", years, 1, 100),
        ("ny", ny, 4, 4096),
        ("nx", nx, 4, 4096),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ParameterError(
                f"demo {what} {value!r} must be a whole number from {low} to {high}"
            )
    import numpy as np
    import xarray as xr

    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as err:
        raise ParameterError(
            f"cannot create the demo data folder {str(directory)[:120]!r} "
            f"({type(err).__name__}: {getattr(err, 'strerror', None) or err}); give another --data"
        ) from None
    cube, regions = directory / "sst.zarr", directory / "regions.zarr"
    ds = synthetic_sst(years, ny, nx, seed)
    if not cube.exists():
        ds.to_zarr(
            cube,
            mode="w",
            zarr_format=3,
            consolidated=False,
            encoding={"sst": {"chunks": (30, ny, nx)}},
        )
    if not regions.exists():
        yy, xx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        zone = (1 + (yy >= ny // 2) * 2 + (xx >= nx // 2)).astype(np.int32)
        xr.Dataset(
            {"region": (("y", "x"), zone, {"long_name": "quadrant id 1..4"})},
            coords={"lat": ds.lat, "lon": ds.lon},
        ).to_zarr(
            regions,
            mode="w",
            zarr_format=3,
            consolidated=False,
            encoding={"region": {"chunks": (ny, nx)}},
        )
    return cube, regions

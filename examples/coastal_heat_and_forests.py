"""Coastal heat and forests: do marine heatwaves leave a mark on coastal forests?

A study across two disciplines on one store. The ocean plugin finds marine heatwaves in
daily sea-surface temperature on a 0.5° latitude/longitude grid; the forestry plugin
computes NDVI from monthly red and near-infrared composites on a UTM raster. The two
are brought onto one grid and one calendar by the generic alignment operators
(``array.resample_time``: months to years; ``array.regrid``: the UTM raster onto the
SST grid, area-weighted), and the lagged correlation between a coastal region's
heatwave days and its forests' NDVI is computed for three stretches of coast.

The inputs are synthetic but shaped like the real ones (a coast running south-west to
north-east, SST with a seasonal cycle, red noise and imposed summer heatwaves of
varying strength; forests whose NDVI drops the year after a strong heatwave summer
on two of the three stretches of coast). The report (``report.html`` and
``report.png`` in the output folder, beside the store unless ``--store`` names
another) links every number to the lineage of the datasets it was computed from: a
page per dataset with its ancestors, the operator or reader, parameters and plugin of
each step, and its W3C PROV-JSON.

    python examples/coastal_heat_and_forests.py                  # the small default
    python examples/coastal_heat_and_forests.py --years 30 --cell-km 2 --out study
"""

from __future__ import annotations

import argparse
import html
import json
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FIRST_YEAR = 1991
LAT = (24.0, 28.0)  # the SST grid's extent, degrees north
LON = (117.0, 122.0)  # degrees east
UTM = "EPSG:32650"  # WGS 84 / UTM zone 50N
LAGS = (0, 1, 2)  # years by which NDVI follows the heatwave season


@dataclass(frozen=True)
class Region:
    """A stretch of coast: a latitude band, cells within ``reach`` degrees of the coast."""

    name: str
    south: float
    north: float
    response: float  # NDVI lost the next year per imposed degree C of summer heat
    reach: float = 1.0


REGIONS = (
    Region("south (Xiamen)", 24.0, 25.5, response=0.030),
    Region("central (Minjiang estuary)", 25.5, 27.0, response=0.045),
    Region("north (Ningde)", 27.0, 28.0, response=0.0),  # forests that do not respond
)


def coast_lon(lat: Any) -> Any:
    """Longitude of the coastline at a latitude: land to the west, sea to the east."""
    return 117.8 + 0.7 * (np.asarray(lat) - 24.0) + 0.15 * np.sin(3.0 * np.asarray(lat))


def region_index(lat: Any, lon: Any) -> Any:
    """Index of the coastal region of each point (-1 outside every region)."""
    lat, lon = np.broadcast_arrays(np.asarray(lat, float), np.asarray(lon, float))
    out = np.full(lat.shape, -1, dtype=np.int32)
    near = np.abs(lon - coast_lon(lat)) <= REGIONS[0].reach
    for i, r in enumerate(REGIONS):
        out[near & (lat >= r.south) & (lat < r.north)] = i
    return out


def heat_schedule(years: int, seed: int) -> Any:
    """Imposed summer heat per region and year (degrees C; most years none)."""
    rng = np.random.default_rng(seed)
    strong = rng.random((len(REGIONS), years)) < 0.3
    return np.where(strong, rng.uniform(1.5, 3.0, (len(REGIONS), years)), 0.0)


def make_sst(path: Path, *, years: int, heat: Any, seed: int) -> Path:
    """Daily SST (time, lat, lon) on a 0.5° grid, NaN over land, as CF NetCDF."""
    import xarray as xr

    rng = np.random.default_rng(seed)
    t = np.arange(
        np.datetime64(f"{FIRST_YEAR}-01-01"),
        np.datetime64(f"{FIRST_YEAR + years}-01-01"),
        dtype="datetime64[D]",
    )
    year = t.astype("datetime64[Y]").astype(int) + 1970 - FIRST_YEAR
    doy = (t - t.astype("datetime64[Y]")).astype(np.int64) + 1
    lat = np.arange(LAT[0] + 0.25, LAT[1], 0.5)
    lon = np.arange(LON[0] + 0.25, LON[1], 0.5)
    glat, glon = np.meshgrid(lat, lon, indexing="ij")
    sea = glon > coast_lon(glat)
    seasonal = (
        27.0
        - 0.6 * (glat - 24.0)[None]
        + 3.5 * np.sin(2 * np.pi * (doy[:, None, None] - 120) / 365.25)
    )
    weather = np.zeros((t.size, *glat.shape))
    shocks = rng.normal(0.0, 0.2, weather.shape)
    for i in range(1, t.size):
        weather[i] = 0.9 * weather[i - 1] + shocks[i]
    sst = seasonal + weather
    summer = (doy >= 190) & (doy < 232)  # mid-July to mid-August
    region = region_index(glat, glon)
    for r in range(len(REGIONS)):
        cells = (region == r) & sea
        sst[:, cells] += (heat[r, year] * summer)[:, None]
    sst[:, ~sea] = np.nan
    ds = xr.Dataset(
        {
            "sst": (
                ("time", "lat", "lon"),
                sst.astype(np.float32),
                {"units": "degree_C", "standard_name": "sea_surface_temperature"},
            )
        },
        coords={
            "time": t.astype("datetime64[ns]"),
            "lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", lon, {"units": "degrees_east", "standard_name": "longitude"}),
        },
    )
    ds.time.encoding.update(units=f"days since {FIRST_YEAR}-01-01", calendar="standard")
    ds.to_netcdf(path)
    return path


def make_forest(
    folder: Path, *, years: int, heat: Any, cell_km: float, seed: int
) -> tuple[list[Path], list[Path], list[str]]:
    """Monthly red and NIR surface-reflectance composites (UTM 50N GeoTIFFs, nodata over
    the sea); returns the red files, the NIR files and their dates."""
    import rasterio
    from pyproj import Transformer
    from rasterio.transform import from_origin

    rng = np.random.default_rng(seed)
    to_utm = Transformer.from_crs("EPSG:4326", UTM, always_xy=True)
    to_geo = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
    x0, y0 = to_utm.transform(LON[0], LAT[0])
    x1, y1 = to_utm.transform(121.0, LAT[1])
    cell = cell_km * 1000.0
    nx, ny = int((x1 - x0) // cell), int((y1 - y0) // cell)
    transform = from_origin(x0, y0 + ny * cell, cell, cell)
    xs = x0 + (np.arange(nx) + 0.5) * cell
    ys = y0 + ny * cell - (np.arange(ny) + 0.5) * cell
    gx, gy = np.meshgrid(xs, ys)
    lon, lat = to_geo.transform(gx, gy)
    land = lon < coast_lon(lat)
    region = region_index(lat, lon)
    canopy = 0.62 + 0.08 * np.sin(lon * 2.1) * np.cos(lat * 1.7)  # a forest pattern
    # NDVI lost in a year: the response of its region to the previous summer's heat,
    # beside the year-to-year swings every forest has (rain, cloud in the composites)
    swing = rng.normal(0.0, 0.012, (len(REGIONS), years))
    loss = np.zeros((years, ny, nx))
    for r, reg in enumerate(REGIONS):
        cells = region == r
        for y in range(years):
            loss[y][cells] = swing[r, y] + (reg.response * heat[r, y - 1] if y else 0.0)
    red_files, nir_files, dates = [], [], []
    profile = {
        "driver": "GTiff",
        "height": ny,
        "width": nx,
        "count": 1,
        "dtype": "float32",
        "crs": UTM,
        "transform": transform,
        "nodata": -9999.0,
    }
    for y in range(years):
        for m in range(12):
            season = 0.12 * np.sin(2 * np.pi * (m - 3) / 12.0)
            ndvi = canopy + season - loss[y] + rng.normal(0.0, 0.015, (ny, nx))
            nir = 0.32 + 0.05 * rng.random((ny, nx))
            red = nir * (1 - ndvi) / (1 + ndvi)
            date = f"{FIRST_YEAR + y}-{m + 1:02d}-15"
            for band, values, files in (("red", red, red_files), ("nir", nir, nir_files)):
                path = folder / f"{band}_{date}.tif"
                with rasterio.open(path, "w", **profile) as dst:
                    dst.write(np.where(land, values, -9999.0).astype(np.float32), 1)
                files.append(path)
            dates.append(date)
    return red_files, nir_files, dates


def study_pipeline(dates: list[str]) -> dict[str, Any]:
    """The whole study as one pipeline: both disciplines and their alignment (``dates``:
    the date of each forest composite, in file order)."""
    return {
        "name": "coastal_heat_and_forests",
        "version": "1",
        "description": "Marine heatwave days and forest NDVI on one grid and calendar.",
        "inputs": ["sst", "red", "nir"],
        "steps": [
            {"id": "sst", "reader": "ocean.netcdf", "paths": "$sst"},
            {"id": "climatology", "operator": "ocean.climatology", "inputs": {"sst": "sst"}},
            {
                "id": "heatwaves",
                "operator": "ocean.marine_heatwaves",
                "inputs": {"sst": "sst", "seas": "climatology", "thresh": "climatology"},
            },
            {
                "id": "red",
                "reader": "forestry.raster",
                "paths": "$red",
                "params": {"bands": ["red"], "dates": dates},
            },
            {
                "id": "nir",
                "reader": "forestry.raster",
                "paths": "$nir",
                "params": {"bands": ["nir"], "dates": dates},
            },
            {
                "id": "ndvi",
                "operator": "forestry.spectral_index",
                "inputs": {"R": "red", "N": "nir"},
                "params": {"index": "NDVI", "output": "ndvi"},
            },
            {
                "id": "ndvi_yearly",
                "operator": "array.resample_time",
                "inputs": {"x": "ndvi"},
                "params": {"freq": "year", "how": "mean", "min_valid": 6},
            },
            {
                "id": "ndvi_on_sst_grid",
                "operator": "array.regrid",
                "inputs": {"x": "ndvi_yearly", "like": "sst"},
                "params": {"method": "conservative"},
            },
        ],
    }


def regional_series(heatwaves: Any, ndvi: Any) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """Per region: mean heatwave days per year over its sea cells, mean NDVI per year over
    its land cells (both area-weighted by cos(latitude)); the years both cover."""
    days = heatwaves["days"]
    veg = ndvi["ndvi"]
    years = np.intersect1d(days["year"].values, veg["time"].dt.year.values)
    days = days.sel(year=years)
    veg = veg.isel(time=np.isin(veg["time"].dt.year.values, years))
    glat, glon = np.meshgrid(days["lat"].values, days["lon"].values, indexing="ij")
    region = region_index(glat, glon)
    weight = np.cos(np.deg2rad(glat))
    heat_s, veg_s = {}, {}
    for i, r in enumerate(REGIONS):
        cells = region == i
        d = days.values[:, cells]
        v = veg.values[:, cells]
        w = weight[cells]
        heat_s[r.name] = _wmean(d, w)
        veg_s[r.name] = _wmean(v, w)
    return heat_s, veg_s, years


def _wmean(values: Any, weight: Any) -> Any:
    ok = np.isfinite(values)
    w = np.where(ok, weight[None, :], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, values, 0.0).sum(axis=1) * 1.0 / w.sum(axis=1)


def lagged_correlation(heat: Any, veg: Any, lag: int) -> float:
    """Pearson correlation of heatwave days in year t with NDVI in year t + lag."""
    h = heat[: heat.size - lag] if lag else heat
    v = veg[lag:]
    ok = np.isfinite(h) & np.isfinite(v)
    if ok.sum() < 3 or np.std(h[ok]) == 0 or np.std(v[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(h[ok], v[ok])[0, 1])


# ----------------------------------------------------------------------------- report
def _lineage_page(rt: Any, dataset_id: str, folder: Path) -> str:
    """Write the lineage page and PROV-JSON of one dataset; returns the page's name."""
    page = f"lineage-{dataset_id}.html"
    if (folder / page).exists():
        return page
    prov = f"prov-{dataset_id}.json"
    (folder / prov).write_text(json.dumps(rt.catalog.to_prov(dataset_id), indent=1))
    graph = rt.catalog.lineage(dataset_id, direction="up")
    rows = []
    for rid, rec in sorted(graph.nodes.items(), key=lambda kv: kv[1].created):
        producer = rec.producer
        what = producer.get("operator") or producer.get("reader") or rec.kind
        plugin = producer.get("plugin") or {}
        params = json.dumps(producer.get("params", {}), sort_keys=True)
        if len(params) > 240:  # a reader's list of dates: the PROV-JSON has it whole
            params = params[:240] + "…"
        parents = ", ".join(
            f"{k} ← <code>{html.escape(p)}</code>" for k, p in sorted(rec.inputs.items())
        )
        rows.append(
            f"<tr id='{rid}'><td><code>{rid}</code></td><td>{html.escape(', '.join(rec.names))}</td>"
            f"<td>{html.escape(str(what))}</td><td><code>{html.escape(params)}</code></td>"
            f"<td>{html.escape(str(plugin.get('name', '')))} ({html.escape(str(plugin.get('package', '')))} "
            f"{html.escape(str(plugin.get('version', '')))})</td>"
            f"<td>{parents}</td></tr>"
        )
    (folder / page).write_text(
        "<!doctype html><meta charset='utf-8'><title>lineage of "
        f"{dataset_id}</title><h1>Lineage of <code>{dataset_id}</code></h1>"
        f"<p><a href='{prov}'>W3C PROV-JSON</a> · open in the web catalog: "
        f"<code>minjiang serve --store {html.escape(str(rt.store.url))}</code>, then "
        f"<code>/datasets/{dataset_id}</code></p>"
        "<table border='1'><tr><th>dataset</th><th>names</th><th>made by</th><th>parameters</th>"
        "<th>plugin</th><th>inputs</th></tr>" + "".join(rows) + "</table>"
    )
    return page


def write_report(
    rt: Any,
    out: Path,
    results: Mapping[str, Any],
    heat: Mapping[str, Any],
    veg: Mapping[str, Any],
    years: Any,
    corr: Mapping[str, Mapping[int, float]],
) -> tuple[Path, Path]:
    """``report.html`` (every number links to its inputs' lineage) and ``report.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    hw, nd = results["heatwaves"].id, results["ndvi_on_sst_grid"].id
    hw_page = _lineage_page(rt, hw, out)
    nd_page = _lineage_page(rt, nd, out)
    both = f"lineage-{hw}-{nd}.html"
    (out / both).write_text(
        "<!doctype html><meta charset='utf-8'><title>inputs</title>"
        "<p>Computed from two datasets:</p><ul>"
        f"<li><a href='{hw_page}'>marine heatwave days <code>{hw}</code></a></li>"
        f"<li><a href='{nd_page}'>NDVI on the SST grid <code>{nd}</code></a></li></ul>"
    )

    fig, axes = plt.subplots(len(REGIONS), 2, figsize=(10, 2.6 * len(REGIONS)), squeeze=False)
    for row, r in zip(axes, REGIONS, strict=True):
        ax = row[0]
        ax.bar(years, heat[r.name], color="tab:red", alpha=0.6, label="MHW days")
        ax.set_ylabel("MHW days")
        ax2 = ax.twinx()
        ax2.plot(years, veg[r.name], color="tab:green", marker="o", label="NDVI")
        ax2.set_ylabel("NDVI")
        ax.set_title(r.name, fontsize=10)
        row[1].bar(
            [str(lag) for lag in LAGS], [corr[r.name][lag] for lag in LAGS], color="tab:blue"
        )
        row[1].axhline(0, color="k", lw=0.6)
        row[1].set_ylim(-1, 1)
        row[1].set_xlabel("lag (years)")
        row[1].set_ylabel("r")
    fig.tight_layout()
    png = out / "report.png"
    fig.savefig(png, dpi=90)
    plt.close(fig)

    def cell(value: float, page: str, digits: int = 2) -> str:
        text = "n/a" if not np.isfinite(value) else f"{value:.{digits}f}"
        return f"<td><a href='{page}'>{text}</a></td>"

    head = "".join(f"<th>r, lag {lag} y</th>" for lag in LAGS)
    rows = "".join(
        f"<tr><td>{html.escape(r.name)}</td>"
        + cell(float(np.nanmean(heat[r.name])), hw_page, 1)
        + cell(float(np.nanmean(veg[r.name])), nd_page, 3)
        + "".join(cell(corr[r.name][lag], both) for lag in LAGS)
        + "</tr>"
        for r in REGIONS
    )
    page = out / "report.html"
    page.write_text(
        "<!doctype html><meta charset='utf-8'><title>Coastal heat and forests</title>"
        "<h1>Coastal heat and forests</h1>"
        f"<p>{int(years[0])}–{int(years[-1])}: marine heatwave days per year (Hobday et al. "
        "2016) over each region's sea cells and NDVI per year over its land cells, on one "
        "0.5° grid. Each number links to the lineage of the datasets it comes from.</p>"
        f"<table border='1'><tr><th>region</th><th>MHW days / year</th><th>NDVI</th>{head}</tr>"
        f"{rows}</table><p><img src='{png.name}' alt='series and lagged correlations'></p>"
    )
    return page, png


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the study; returns a summary (also printed)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=12)
    parser.add_argument("--cell-km", type=float, default=8.0, help="forest raster cell size")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("coastal-study"), help="report folder")
    parser.add_argument("--store", type=Path, default=None, help="store (default: OUT/store)")
    parser.add_argument("--executor", choices=["local", "ray"], default="local")
    args = parser.parse_args(argv)
    if args.years < 5:
        parser.error("--years must be at least 5 (a climatology and lagged pairs need them)")

    import minjiang as mj

    t0 = time.perf_counter()
    heat_imposed = heat_schedule(args.years, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sst = make_sst(work / "sst.nc", years=args.years, heat=heat_imposed, seed=args.seed)
        red, nir, dates = make_forest(
            work, years=args.years, heat=heat_imposed, cell_km=args.cell_km, seed=args.seed + 1
        )
        store = args.store or args.out / "store"
        with mj.Runtime(store=store, executor=args.executor) as rt:
            run = rt.run_pipeline(
                study_pipeline(dates),
                inputs={
                    "sst": [str(sst)],
                    "red": [str(p) for p in red],
                    "nir": [str(p) for p in nir],
                },
            )
            heat, veg, years = regional_series(
                run.results["heatwaves"].to_xarray(), run.results["ndvi_on_sst_grid"].to_xarray()
            )
            corr = {
                r.name: {lag: lagged_correlation(heat[r.name], veg[r.name], lag) for lag in LAGS}
                for r in REGIONS
            }
            page, png = write_report(rt, args.out, run.results, heat, veg, years, corr)
            datasets = {step: result.id for step, result in run.results.items()}
    summary = {
        "years": [int(years[0]), int(years[-1])],
        "correlation": corr,
        "report": str(page),
        "figure": str(png),
        "datasets": datasets,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(f"lagged correlation of MHW days with NDVI, {summary['years'][0]}–{summary['years'][1]}:")
    for r in REGIONS:
        print(f"  {r.name:28s}" + "".join(f"  lag {lag}: {corr[r.name][lag]:+.2f}" for lag in LAGS))
    print(f"report: {page} ({summary['seconds']} s)")
    return summary


if __name__ == "__main__":
    main()

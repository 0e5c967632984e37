"""array.regrid through the runtime: weights reused per grid pair, the three kinds of
grid, real files of iris-sample-data (OSTIA's lat/lon SST, NEMO's curvilinear ORCA
grid) against pyresample and the sphere's area integral, and the plan-time errors."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
from minjiang.core import Pipeline, Runtime, Step
from minjiang.core.errors import ContractError, ParameterError
from minjiang.kernels.regrid import (
    apply_weights,
    cell_areas,
    curvilinear_grid,
    latlon_grid,
    lonlat_to_xyz,
    projected_grid,
    regrid_weights,
)

from tests._data import ingest_array, write_zarr


def sample(name: str) -> Path:
    spec = importlib.util.find_spec("iris_sample_data")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("iris-sample-data is not installed")
    return Path(next(iter(spec.submodule_search_locations)), "sample_data", name)


@pytest.fixture
def rt(tmp_path):
    runtime = Runtime(store=tmp_path / "store", executor="local")
    yield runtime
    runtime.close()


LAT = np.arange(-89.0, 90, 2.0)
LON = np.arange(1.0, 360, 2.0)
TARGET = {"lat": [-85.0, 85.0, 10.0], "lon": [-175.0, 175.0, 10.0]}


def _sst(rt, tmp_path, name, n_time, seed, chunks=(2, 45, 90)):
    rng = np.random.default_rng(seed)
    v = (
        15
        + 10 * np.cos(np.radians(LAT))[None, :, None]
        + rng.normal(size=(n_time, LAT.size, LON.size))
    )
    v[:, 40:45, 100:110] = np.nan  # an island
    coords = {"lat": LAT, "lon": LON, "time": np.arange(n_time)}
    return v, ingest_array(
        rt, tmp_path, name, v, ("time", "lat", "lon"), chunks, coords=coords, var="sst"
    )


def _steps(rt, x, params, **inputs):
    step = Step(id="run", operator="array.regrid", inputs={"x": x.id, **inputs}, params=params)
    return {s.step: s for s in rt.plan(Pipeline(steps=[step])).steps}


def test_weights_are_computed_once_per_grid_pair_and_reused(rt, tmp_path) -> None:
    v1, y1 = _sst(rt, tmp_path, "sst/2020", 6, 1)
    v2, y2 = _sst(rt, tmp_path, "sst/2021", 5, 2)  # another year: other values and length
    params = {"method": "conservative", **TARGET}
    first = _steps(rt, y1, params)
    assert not first["run__weights"].reused and first["run__weights"].hidden
    r1 = rt.run("array.regrid", inputs={"x": y1}, params=params)
    second = _steps(rt, y2, params)
    assert second["run__weights"].reused  # the same grids and method: the same weights
    assert second["run__weights"].dataset_id == first["run__weights"].dataset_id
    assert not second["run"].reused
    r2 = rt.run("array.regrid", inputs={"x": y2}, params=params)
    # another method is another weights dataset
    assert not _steps(rt, y2, {"method": "bilinear", **TARGET})["run__weights"].reused

    src = latlon_grid(LAT, LON)
    dst = latlon_grid(np.arange(-85.0, 86, 10.0), np.arange(-175.0, 176, 10.0))
    d, s, w = regrid_weights(src, dst, "conservative")
    for v, r in ((v1, r1), (v2, r2)):
        got = r.to_xarray()["sst"]
        assert got.dims == ("time", "lat", "lon") and got.shape == (v.shape[0], 18, 36)
        want = apply_weights(v.reshape(v.shape[0], -1), d, s, w, dst.size).reshape(got.shape)
        np.testing.assert_allclose(got.values, want, rtol=1e-12)
        np.testing.assert_array_equal(got["lat"].values, dst.lat_axis)
        assert got.attrs["regrid_method"] == "conservative"


def test_chunked_time_and_split_planes_give_the_same_result(rt, tmp_path) -> None:
    # storage chunks that split the planes: the apply step rechunks to whole planes
    _, x = _sst(rt, tmp_path, "sst/split", 4, 3, chunks=(1, 30, 60))
    got = rt.run("array.regrid", inputs={"x": x}, params={"method": "bilinear", **TARGET})
    _, y = _sst(rt, tmp_path, "sst/whole", 4, 3, chunks=(4, 90, 180))
    want = rt.run("array.regrid", inputs={"x": y}, params={"method": "bilinear", **TARGET})
    np.testing.assert_array_equal(got.to_xarray()["sst"].values, want.to_xarray()["sst"].values)


def test_nan_sources_are_left_out_up_to_min_valid_fraction(rt, tmp_path) -> None:
    lat, lon = np.arange(0.5, 4, 1.0), np.arange(0.5, 4, 1.0)
    v = np.arange(16, dtype=np.float64).reshape(1, 4, 4)
    v[0, 0, :3] = np.nan  # three of the four cells of the first 2x2 target cell are NaN
    x = ingest_array(
        rt, tmp_path, "t/nan", v, ("t", "lat", "lon"), (1, 4, 4), coords={"lat": lat, "lon": lon}
    )
    grid = {"lat": [1.0, 3.0, 2.0], "lon": [1.0, 3.0, 2.0]}
    out = {}
    for frac in (0.2, 0.5):
        r = rt.run(
            "array.regrid",
            inputs={"x": x},
            params={"method": "conservative", "min_valid_fraction": frac, **grid},
        )
        out[frac] = r.to_xarray()["data"].values[0]
    # cell (0, 0): only source (1, 0) = 4 and (1, 1) = 5 valid; (0, 1) = nan... two of four
    assert np.isnan(v[0, 0, 1]) and out[0.2][0, 0] == pytest.approx((4 + 5) / 2)
    # about half of that cell's area is valid: sin-weighted rows put it just under 0.5
    assert np.isnan(out[0.5][0, 0])
    np.testing.assert_allclose(out[0.5][1, 1], np.mean(v[0, 2:, 2:]), rtol=1e-3)


def _raster(rt, tmp_path, name, values, transform, crs="EPSG:32633"):
    import xarray as xr

    path = write_zarr(tmp_path / f"{name}.zarr", {"v": (("band", "y", "x"), values)})
    ds = xr.open_zarr(path, consolidated=False).load()
    ds["v"].attrs.update(crs=crs, transform=list(transform))
    ds.to_zarr(tmp_path / f"{name}-geo.zarr", mode="w", zarr_format=3, consolidated=False)
    return rt.ingest("array.zarr", [tmp_path / f"{name}-geo.zarr"], name=f"t/{name}")


def test_projected_raster_onto_lat_lon_and_back_onto_a_raster_grid(rt, tmp_path) -> None:
    t = (5000.0, 0.0, 300000.0, 0.0, -5000.0, 5500000.0)
    ras = projected_grid("EPSG:32633", t, (40, 50))
    f = 10 + np.sin(np.radians(3 * ras.lat)) * np.cos(np.radians(2 * ras.lon))
    values = np.stack([f, 2 * f]).reshape(2, 40, 50)
    x = _raster(rt, tmp_path, "utm", values, t)
    grid = {"lat": [46.0, 49.0, 0.1], "lon": [13.0, 17.0, 0.1]}
    r = rt.run("array.regrid", inputs={"x": x}, params={"method": "bilinear", **grid})
    out = r.to_xarray()["v"]
    assert out.dims == ("band", "lat", "lon") and "transform" not in out.attrs
    dst = latlon_grid(np.arange(46.0, 49.01, 0.1), np.arange(13.0, 17.01, 0.1))
    truth = (10 + np.sin(np.radians(3 * dst.lat)) * np.cos(np.radians(2 * dst.lon))).reshape(
        dst.shape
    )
    assert np.nanmax(np.abs(out.values[0] - truth)) < 1e-3
    np.testing.assert_allclose(out.values[1], 2 * out.values[0], rtol=1e-12)
    # and onto another raster's grid (a 'like' raster): the result shares its grid, so
    # a two-input step takes both
    t2 = (7000.0, 0.0, 320000.0, 0.0, -7000.0, 5480000.0)
    like = _raster(rt, tmp_path, "utm7", np.zeros((2, 20, 25)), t2)
    on = rt.run("array.regrid", inputs={"x": x, "like": like}, params={"method": "conservative"})
    da = on.to_xarray()["v"]
    assert da.attrs["transform"] == list(t2) and da.attrs["crs"] == "EPSG:32633"
    g2 = projected_grid("EPSG:32633", t2, (20, 25))
    d, s, w = regrid_weights(ras, g2, "conservative")
    want = apply_weights(values.reshape(2, -1), d, s, w, g2.size).reshape(2, 20, 25)
    np.testing.assert_allclose(da.values, want, rtol=1e-12)
    summed = rt.run(
        "array.band_math",
        inputs={"a": f"{on.id}:v", "b": like},
        params={"expression": "a + b"},
    )
    np.testing.assert_allclose(summed.to_xarray()["result"].values, want, rtol=1e-12)


def test_curvilinear_target_from_a_like_dataset(rt, tmp_path) -> None:
    j, i = np.meshgrid(np.arange(12) * 0.8, np.arange(15) * 0.8, indexing="ij")
    lat2, lon2 = 30 + j + 0.2 * i, 100 + i - 0.3 * j
    like = ingest_array(
        rt,
        tmp_path,
        "t/curv",
        np.zeros((12, 15)),
        ("nj", "ni"),
        (12, 15),
        coords={"lat": (("nj", "ni"), lat2), "lon": (("nj", "ni"), lon2)},
    )
    lat, lon = np.arange(25.25, 50, 0.5), np.arange(95.25, 125, 0.5)
    v = np.cos(np.radians(lat))[:, None] * np.ones(lon.size)
    x = ingest_array(
        rt,
        tmp_path,
        "t/ll",
        v[None],
        ("t", "lat", "lon"),
        (1, 50, 60),
        coords={"lat": lat, "lon": lon},
    )
    r = rt.run("array.regrid", inputs={"x": x, "like": like}, params={"method": "conservative"})
    out = r.to_xarray()
    assert out["data"].dims == ("t", "nj", "ni")
    np.testing.assert_allclose(out["lat"].values, lat2)
    src, dst = latlon_grid(lat, lon), curvilinear_grid(lat2, lon2)
    d, s, w = regrid_weights(src, dst, "conservative")
    want = apply_weights(v.reshape(1, -1), d, s, w, dst.size).reshape(1, 12, 15)
    np.testing.assert_allclose(out["data"].values, want, rtol=1e-12)


# ------------------------------------------------------------------ real files
def test_ostia_sst_onto_a_coarser_grid_conserves_its_area_integral(rt) -> None:
    import xarray as xr

    path = sample("ostia_monthly.nc")
    x = rt.ingest("array.netcdf", path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = xr.open_dataset(path)["surface_temperature"].load()
    # OSTIA here: 18 x 432 cells of 5/9 x 5/6 degree (-5 .. 4.4 N, all longitudes);
    # the target: 3 source rows a cell, 2.5 degrees of longitude
    start, step = -5 + 5 / 9, 5 / 3
    grid = {"lat": [start, start + 5 * step, step], "lon": [1.25, 358.75, 2.5]}
    r = rt.run(
        "array.regrid",
        inputs={"x": f"{x.id}:surface_temperature"},
        params={"method": "conservative", "min_valid_fraction": 0.0, **grid},
    )
    got = r.to_xarray()["surface_temperature"]
    assert got.dims == ("time", "lat", "lon") and got.shape == (54, 6, 144)
    src = latlon_grid(raw["latitude"].values, raw["longitude"].values)
    dst = latlon_grid(start + np.arange(6) * step, np.arange(144) * 2.5 + 1.25)
    vals = raw.values.astype(np.float64).reshape(raw.shape[0], -1)
    d, s, w = regrid_weights(src, dst, "conservative")
    want = apply_weights(vals, d, s, w, dst.size, min_valid_fraction=0.0)
    np.testing.assert_allclose(got.values.reshape(want.shape), want, rtol=2e-7)
    # the area of each source cell inside the target grid (all but a float32 sliver of
    # the top row: the file's latitudes are float32)
    covered = np.bincount(s, weights=w * cell_areas(dst)[d], minlength=src.size)
    np.testing.assert_allclose(covered, cell_areas(src), rtol=1e-4)
    for t in range(vals.shape[0]):
        ok = np.isfinite(vals[t])
        frac = np.bincount(d, weights=w * ok[s], minlength=dst.size)
        src_int = np.sum(vals[t][ok] * covered[ok])
        dst_int = np.nansum(want[t] * frac * cell_areas(dst))
        assert abs(dst_int - src_int) / abs(src_int) < 1e-10


def _nemo(rt):
    files = sorted(sample("NEMO").glob("*.nc"))
    if not files:
        pytest.skip("iris-sample-data has no NEMO files")
    return rt.ingest("ocean.netcdf", files, params={"variables": {"tos": "sst"}})


def test_nemo_curvilinear_sst_against_pyresample_and_the_sphere(rt) -> None:
    pr = pytest.importorskip("pyresample", reason="pyresample is in the validation extra")
    from pyresample.bilinear import NumpyBilinearResampler

    ds = _nemo(rt)
    src_ds = ds.to_xarray()
    lat2, lon2 = src_ds["lat"].values, src_ds["lon"].values
    sst = src_ds["sst"].values.astype(np.float64)
    grid = {"lat": [-79.0, 79.0, 2.0], "lon": [-179.0, 179.0, 2.0]}
    tlat, tlon = np.arange(-79.0, 80, 2.0), np.arange(-179.0, 180, 2.0)
    inputs = {"x": f"{ds.id}:sst", "lat": f"{ds.id}:lat", "lon": f"{ds.id}:lon"}
    got = {
        m: rt.run("array.regrid", inputs=inputs, params={"method": m, **grid})
        .to_xarray()["sst"]
        .values
        for m in ("nearest", "bilinear")
    }
    area = pr.geometry.AreaDefinition(
        "ll",
        "ll",
        "ll",
        {"proj": "longlat", "datum": "WGS84"},
        tlon.size,
        tlat.size,
        (-180, -80, 180, 80),
    )
    sw = pr.geometry.SwathDefinition(lons=np.where(lon2 > 180, lon2 - 360, lon2), lats=lat2)
    near = pr.kd_tree.resample_nearest(
        sw, sst[0], area, radius_of_influence=200e3, fill_value=np.nan
    )[::-1]
    from scipy.spatial import cKDTree

    tl, tn = np.meshgrid(tlat, tlon, indexing="ij")
    dist, _ = cKDTree(lonlat_to_xyz(lon2, lat2).reshape(-1, 3)).query(
        lonlat_to_xyz(tn, tl).reshape(-1, 3), k=2
    )
    clear = ((dist[:, 1] - dist[:, 0]) > 1e-9 * dist[:, 1]).reshape(tl.shape)
    both = clear & np.isfinite(near) & np.isfinite(got["nearest"][0])
    assert both.sum() > 2500
    np.testing.assert_array_equal(got["nearest"][0][both], near[both])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bil = NumpyBilinearResampler(sw, area, 200e3).resample(sst[0], fill_value=np.nan)[::-1]
    # real SST: the two agree in the bulk; where they differ most, pyresample's choice of
    # the four neighbours is at fault (below, on a smooth field on the same grid)
    ok = np.isfinite(bil) & np.isfinite(got["bilinear"][0]) & (np.abs(tl) < 50)
    diff = np.abs(bil[ok] - got["bilinear"][0][ok])
    assert ok.sum() > 4000 and np.median(diff) < 1e-3
    # a smooth field on NEMO's own grid, against its exact values
    src = curvilinear_grid(lat2, lon2)
    dst = latlon_grid(tlat, tlon)

    def field(la, lo):
        return 10 + np.sin(np.radians(3 * la)) * np.cos(np.radians(2 * lo))

    d, s, w = regrid_weights(src, dst, "bilinear")
    ours = apply_weights(field(src.lat, src.lon)[None], d, s, w, dst.size)[0]
    truth = field(dst.lat, dst.lon)
    assert np.isfinite(ours).mean() > 0.99
    assert np.nanmax(np.abs(ours - truth)) < 1e-3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = (
            NumpyBilinearResampler(sw, area, 200e3)
            .resample(field(lat2, lon2), fill_value=np.nan)[::-1]
            .ravel()
        )
    both = np.isfinite(theirs) & np.isfinite(ours)
    assert np.median(np.abs(theirs - ours)[both]) < 1e-4


@pytest.mark.slow
def test_nemo_conservative_onto_the_globe_keeps_the_area_integral(rt) -> None:
    ds = _nemo(rt)
    src_ds = ds.to_xarray()
    sst = src_ds["sst"].values.astype(np.float64)
    grid = {"lat": [-89.0, 89.0, 2.0], "lon": [-179.0, 179.0, 2.0], "min_valid_fraction": 0.0}
    inputs = {"x": f"{ds.id}:sst", "lat": f"{ds.id}:lat", "lon": f"{ds.id}:lon"}
    got = rt.run("array.regrid", inputs=inputs, params={"method": "conservative", **grid})
    y = got.to_xarray()["sst"].values.astype(np.float64)
    src = curvilinear_grid(src_ds["lat"].values, src_ds["lon"].values)
    dst = latlon_grid(np.arange(-89.0, 90, 2.0), np.arange(-179.0, 180, 2.0))
    d, s, w = regrid_weights(src, dst, "conservative")
    a_src, a_dst = cell_areas(src), cell_areas(dst, edges="great_circle")
    for t in range(sst.shape[0]):
        x = sst[t].ravel()
        valid = np.isfinite(x)
        frac = np.bincount(d, weights=w * valid[s], minlength=dst.size)
        src_int = np.sum(x[valid] * a_src[valid])
        dst_int = np.nansum(y[t].ravel() * frac * a_dst)
        # the result is stored as float32 like its source: 1e-7 relative per cell
        assert abs(dst_int - src_int) / src_int < 1e-6
        # in float64 through the same weights: the sphere's integral to 1e-10
        y64 = apply_weights(x[None], d, s, w, dst.size, min_valid_fraction=0.0)[0]
        assert abs(np.nansum(y64 * frac * a_dst) - src_int) / src_int < 1e-10


# ------------------------------------------------------------------ errors
def test_plan_time_errors_name_the_thing_and_the_fix(rt, tmp_path) -> None:
    _, x = _sst(rt, tmp_path, "sst/e", 2, 0)
    with pytest.raises(ContractError, match="exactly one"):
        rt.run("array.regrid", inputs={"x": x}, params={"method": "nearest"})
    with pytest.raises(ContractError, match="exactly one"):
        rt.run("array.regrid", inputs={"x": x, "like": x}, params={"method": "nearest", **TARGET})
    with pytest.raises(ParameterError, match="give both 'lat' and 'lon'"):
        rt.run("array.regrid", inputs={"x": x}, params={"method": "nearest", "lat": [0, 10, 1]})
    with pytest.raises(ParameterError, match="whole number"):
        rt.run(
            "array.regrid",
            inputs={"x": x},
            params={"method": "nearest", "lat": [0, 10, 3], "lon": [0, 10, 1]},
        )
    with pytest.raises(ParameterError, match="more than 360"):
        rt.run(
            "array.regrid",
            inputs={"x": x},
            params={"method": "nearest", "lat": [0, 10, 1], "lon": [0, 400, 1]},
        )
    with pytest.raises(ParameterError, match="method"):
        rt.run("array.regrid", inputs={"x": x}, params={"method": "cubic", **TARGET})
    with pytest.raises(ParameterError, match="Extra inputs are not permitted"):
        rt.run("array.regrid", inputs={"x": x}, params={"method": "nearest", "grid": 1, **TARGET})
    plain = ingest_array(rt, tmp_path, "t/plain", np.zeros((3, 4)), ("a", "b"), (3, 4))
    with pytest.raises(ContractError, match="no grid over its last two dims"):
        rt.run("array.regrid", inputs={"x": plain}, params={"method": "nearest", **TARGET})
    with pytest.raises(ContractError, match="give both 'lat' and 'lon'"):
        rt.run(
            "array.regrid",
            inputs={"x": plain, "lat": plain},
            params={"method": "nearest", **TARGET},
        )
    flipped = ingest_array(
        rt,
        tmp_path,
        "t/flip",
        np.zeros((4, 3)),
        ("lon", "lat"),
        (4, 3),
        coords={"lat": [0.0, 1, 2], "lon": [0.0, 1, 2, 3]},
    )
    with pytest.raises(ContractError, match="transpose it"):
        rt.run("array.regrid", inputs={"x": flipped}, params={"method": "nearest", **TARGET})
    bad = _raster(rt, tmp_path, "nocrs", np.zeros((1, 3, 3)), (1, 0, 0, 0, -1, 0), crs="")
    with pytest.raises(ContractError, match="no 'crs'"):
        rt.run("array.regrid", inputs={"x": bad}, params={"method": "nearest", **TARGET})


def test_the_grid_contract_names_array_regrid(rt, tmp_path) -> None:
    values = ingest_array(
        rt,
        tmp_path,
        "t/v",
        np.zeros((4, 4)),
        ("lat", "lon"),
        (4, 4),
        coords={"lat": np.arange(4.0), "lon": np.arange(4.0)},
    )
    labels = ingest_array(
        rt,
        tmp_path,
        "t/l",
        np.ones((4, 4), dtype=np.int32),
        ("lat", "lon"),
        (4, 4),
        coords={"lat": np.arange(50.0, 54), "lon": np.arange(4.0)},
    )
    with pytest.raises(ContractError, match=r"array\.regrid"):
        rt.run("array.label_stats", inputs={"values": values, "labels": labels})


@pytest.mark.ray
def test_regrid_on_ray_matches_the_kernels(ray_runtime, tmp_path) -> None:
    j, i = np.meshgrid(np.arange(30) * 0.5, np.arange(40) * 0.5, indexing="ij")
    lat2, lon2 = 20 + j + 0.2 * i, 100 + i - 0.3 * j
    v = np.random.default_rng(0).normal(size=(12, 30, 40))
    v[3, 5:9, 5:9] = np.nan
    coords = {"lat": (("nj", "ni"), lat2), "lon": (("nj", "ni"), lon2)}
    x = ingest_array(
        ray_runtime, tmp_path, "t/ray", v, ("time", "nj", "ni"), (2, 10, 10), coords=coords
    )
    grid = {"lat": [20.0, 40.0, 1.0], "lon": [95.0, 125.0, 1.0]}
    got = ray_runtime.run(
        "array.regrid", inputs={"x": x}, params={"method": "conservative", **grid}
    )
    src = curvilinear_grid(lat2, lon2)
    dst = latlon_grid(np.arange(20.0, 40.1, 1.0), np.arange(95.0, 125.1, 1.0))
    d, s, w = regrid_weights(src, dst, "conservative")
    want = apply_weights(v.reshape(12, -1), d, s, w, dst.size).reshape(12, *dst.shape)
    np.testing.assert_allclose(got.to_xarray()["data"].values, want, rtol=1e-12)

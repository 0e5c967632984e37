"""forestry.raster: values, georeferencing (read back by rioxarray), masks, scale/offset,
tile-aligned chunks, stacks; the grid check and forestry.resample against rasterio."""

from __future__ import annotations

import numpy as np
import pytest
from minjiang.core.errors import ContractError, ReaderError

from .conftest import gdal_reproject, lidar_dem, sentinel2, write_geotiff

rasterio = pytest.importorskip("rasterio")


def _write(path, data, *, nodata=None, scale=1.0, offset=0.0, tiled=True, crs="EPSG:32633"):
    from rasterio.transform import from_origin

    count = data.shape[0]
    profile = {
        "driver": "GTiff",
        "width": data.shape[2],
        "height": data.shape[1],
        "count": count,
        "dtype": data.dtype.name,
        "crs": crs,
        "transform": from_origin(500000.0, 4000000.0, 30.0, 30.0),
        "nodata": nodata,
    }
    if tiled:
        profile.update(tiled=True, blockxsize=16, blockysize=16)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.scales = (scale,) * count
        dst.offsets = (offset,) * count
        dst.descriptions = tuple(f"b{i}" for i in range(count))
    return path


def test_dem_values_and_georeferencing(rt):
    rioxarray = pytest.importorskip("rioxarray")
    path = lidar_dem()
    res = rt.ingest("forestry.raster", path, params={"chunks": {"y": 128, "x": 128}})
    ds = res.to_xarray()
    ref = rioxarray.open_rasterio(path, masked=True).squeeze("band", drop=True)
    got = ds["band_1"]
    np.testing.assert_array_equal(got.values, ref.values)
    assert got.rio.crs == ref.rio.crs
    assert tuple(got.rio.transform())[:6] == pytest.approx(tuple(ref.rio.transform())[:6])
    np.testing.assert_allclose(ds["x"].values, ref["x"].values)
    np.testing.assert_allclose(ds["y"].values, ref["y"].values)
    assert got.attrs["units"] == ""
    assert got.attrs["nodata_masked"] is True


def test_chunks_are_whole_tiles(rt, tmp_path):
    data = np.arange(3 * 40 * 50, dtype=np.uint16).reshape(3, 40, 50)
    path = _write(tmp_path / "t.tif", data)
    ds = rt.ingest("forestry.raster", path).to_xarray()
    assert sorted(ds.data_vars) == ["b0", "b1", "b2"]
    enc = ds["b1"].encoding.get("chunks") or ds["b1"].data.chunksize
    assert all(c % 16 == 0 or c == n for c, n in zip(enc, (40, 50), strict=True))
    # no nodata, no scale: the integers are kept as they are
    assert ds["b1"].dtype == np.uint16
    np.testing.assert_array_equal(ds["b2"].values, data[2])


def test_nodata_is_a_mask_and_scale_offset_applied(rt, tmp_path):
    rng = np.random.default_rng(1)
    data = rng.integers(7000, 20000, size=(2, 33, 35), dtype=np.uint16)
    data[0, 3:5, 7:9] = 0
    data[1, 10, :] = 0
    path = _write(tmp_path / "s.tif", data, nodata=0, scale=2.75e-05, offset=-0.2)
    ds = rt.ingest("forestry.raster", path, params={"bands": ["red", "nir"]}).to_xarray()
    for i, name in enumerate(["red", "nir"]):
        got = ds[name].values
        assert got.dtype == np.float32
        np.testing.assert_array_equal(np.isnan(got), data[i] == 0)
        want = data[i].astype(np.float32) * np.float32(2.75e-05) + np.float32(-0.2)
        np.testing.assert_array_equal(got[data[i] != 0], want[data[i] != 0])
        assert ds[name].attrs["source_scale"] == 2.75e-05
        assert ds[name].attrs["scale_applied"] is True
    raw = rt.ingest("forestry.raster", path, params={"apply_scale": False, "mask_nodata": False})
    np.testing.assert_array_equal(raw.to_xarray()["b0"].values, data[0])


def test_stack_of_dates_and_refusals(rt, tmp_path):
    a = _write(tmp_path / "a.tif", np.ones((1, 20, 20), np.float32))
    b = _write(tmp_path / "b.tif", 2 * np.ones((1, 20, 20), np.float32))
    ds = rt.ingest(
        "forestry.raster", [a, b], params={"dates": ["2021-06-01", "2021-09-01"]}
    ).to_xarray()
    assert ds["b0"].dims == ("time", "y", "x")
    np.testing.assert_array_equal(ds["b0"].values[:, 0, 0], [1, 2])
    with pytest.raises(ReaderError, match="one date"):
        rt.ingest("forestry.raster", [a, b])
    c = _write(tmp_path / "c.tif", np.ones((1, 21, 20), np.float32))
    with pytest.raises(ReaderError, match=r"20 x 20 cells.*21 x 20 cells"):
        rt.ingest("forestry.raster", [a, c], params={"dates": ["2021-06-01", "2021-09-01"]})
    with pytest.raises(ReaderError, match="one name per band"):
        rt.ingest("forestry.raster", a, params={"bands": ["x", "y"]})


def _s2(rt, band):
    return rt.ingest("forestry.raster", sentinel2(band), params={"bands": [band]})


def _write_like(path, values, transform):
    return write_geotiff(path, values, transform, "EPSG:32719")


def test_10m_20m_pair_is_refused_naming_both_grids(rt, tmp_path):
    from minjiang.plugins.forestry.resample import resample

    nir, red = _s2(rt, "nir"), _s2(rt, "red")
    src = nir.to_xarray()["nir"]
    t = src.attrs["transform"]
    t20 = (20.0, 0.0, t[2], 0.0, -20.0, t[5])
    nir20 = resample(src.values, t, t20, (100, 150), "average")
    p20 = _write_like(tmp_path / "nir20.tif", nir20, t20)
    n20 = rt.ingest("forestry.raster", p20, params={"bands": ["nir"]})
    with pytest.raises(ContractError) as err:
        rt.run("forestry.spectral_index", inputs={"N": n20, "R": red}, params={"index": "NDVI"})
    msg = str(err.value)
    assert "different grids (shape differs)" in msg
    assert "100 x 150 cells of 20 x 20 in EPSG:32719" in msg
    assert "200 x 300 cells of 10 x 10 in EPSG:32719" in msg
    # resampled explicitly onto one grid, they combine
    red20 = resample(red.to_xarray()["red"].values, t, t20, (100, 150), "average")
    r20 = rt.ingest(
        "forestry.raster",
        _write_like(tmp_path / "red20.tif", red20, t20),
        params={"bands": ["red"]},
    )
    out = rt.run("forestry.spectral_index", inputs={"N": n20, "R": r20}, params={"index": "NDVI"})
    assert out.to_xarray()["NDVI"].shape == (100, 150)


def test_crs_difference_is_refused(rt, tmp_path):
    a = _write(tmp_path / "a.tif", np.ones((1, 20, 20), np.float32))
    b = _write(tmp_path / "b.tif", np.ones((1, 20, 20), np.float32), crs="EPSG:32634")
    ra = rt.ingest("forestry.raster", a, params={"bands": ["nir"]})
    rb = rt.ingest("forestry.raster", b, params={"bands": ["red"]})
    with pytest.raises(ContractError, match=r"CRS differs.*EPSG:32633.*EPSG:32634"):
        rt.run("forestry.spectral_index", inputs={"N": ra, "R": rb}, params={"index": "NDVI"})
    with pytest.raises(ContractError, match="different grids"):
        rt.run("forestry.dnbr", inputs={"pre": ra, "post": rb})


@pytest.mark.parametrize(
    ("method", "res"),
    # bilinear upsampling only: GDAL widens the bilinear kernel when downsampling
    [("nearest", 20.0), ("nearest", 5.0), ("average", 20.0), ("average", 5.0), ("bilinear", 5.0)],
)
def test_resample_matches_rasterio(method, res):
    from minjiang.plugins.forestry.resample import resample

    with rasterio.open(sentinel2("nir")) as src:
        x = src.read(1).astype(np.float64)
        t = tuple(src.transform)[:6]
    if method != "bilinear":  # nodata left out as GDAL does (bilinear: see the docs)
        x[50:53, 60:64] = np.nan
    shape = (int(200 * 10 / res), int(300 * 10 / res))
    dt = (res, 0.0, t[2], 0.0, -res, t[5])
    got = resample(x, t, dt, shape, method)
    want = gdal_reproject(x, t, dt, shape, method)
    if method == "bilinear":  # GDAL treats the outer half cell differently; compare inside
        got, want = got[2:-2, 2:-2], want[2:-2, 2:-2]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize("method", ["nearest", "bilinear", "average"])
def test_resample_cpu_matches_reference(method):
    from minjiang.plugins.forestry.resample import resample

    rng = np.random.default_rng(3)
    x = rng.random((2, 23, 31))
    x[0, 4, 5] = np.nan
    st = (10.0, 0.0, 0.0, 0.0, -10.0, 0.0)
    for dt, shape in [
        ((25.0, 0.0, 3.0, 0.0, -25.0, -2.0), (9, 12)),
        ((3.0, 0, 0, 0, -3.0, 0), (70, 99)),
    ]:
        a = resample(x, st, dt, shape, method, backend="reference")
        b = resample(x, st, dt, shape, method, backend="cpu")
        # the reference sums by weight matrices, the kernel cell by cell
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15, equal_nan=True)

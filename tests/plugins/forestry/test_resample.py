"""forestry.resample: the operator against rasterio's warp on the shipped Sentinel-2
band, the 10 m / 20 m pair combined once resampled, and its refusals."""

from __future__ import annotations

import numpy as np
import pytest
from minjiang.core.errors import ContractError, ParameterError

from .conftest import gdal_reproject, sentinel2, write_geotiff

rasterio = pytest.importorskip("rasterio")


def _ingest_s2(rt, band):
    return rt.ingest("forestry.raster", sentinel2(band), params={"bands": [band]})


@pytest.mark.parametrize(
    ("method", "res"), [("average", 20.0), ("nearest", 20.0), ("bilinear", 5.0)]
)
def test_the_operator_matches_rasterio_warp_on_the_sentinel2_band(rt, method, res):
    nir = _ingest_s2(rt, "nir")
    src = nir.to_xarray()["nir"]
    out = rt.run(
        "forestry.resample", inputs={"raster": nir}, params={"method": method, "resolution": res}
    )
    got = out.to_xarray()["nir"]
    t = tuple(src.attrs["transform"])
    shape = (int(src.shape[0] * 10 / res), int(src.shape[1] * 10 / res))
    dt = (res, 0.0, t[2], 0.0, -res, t[5])
    assert got.shape == shape and tuple(got.attrs["transform"]) == dt
    assert got.attrs["resampling"] == method
    want = gdal_reproject(src.values, t, dt, shape, method)
    g, w = got.values.astype(np.float64), want
    if method == "bilinear":  # GDAL treats the outer half cell differently; compare inside
        g, w = g[2:-2, 2:-2], w[2:-2, 2:-2]
    np.testing.assert_array_equal(np.isnan(g), np.isnan(w))
    np.testing.assert_allclose(g, w, rtol=1e-6, equal_nan=True)
    # the georeferencing reads back with rioxarray: new transform, same CRS, centres
    rio = pytest.importorskip("rioxarray")
    assert rio is not None
    da = out.to_xarray()["nir"]
    assert tuple(da.rio.transform())[:6] == dt
    assert da.rio.crs.to_epsg() == 32719
    np.testing.assert_allclose(da["x"].values[:2], [t[2] + res / 2, t[2] + 1.5 * res])


def test_the_10m_20m_pair_combines_once_resampled_onto_one_grid(rt):
    nir, red = _ingest_s2(rt, "nir"), _ingest_s2(rt, "red")
    nir20 = rt.run(
        "forestry.resample", inputs={"raster": nir}, params={"method": "average", "resolution": 20}
    )
    with pytest.raises(ContractError, match="different grids"):
        rt.run("forestry.spectral_index", inputs={"N": nir20, "R": red}, params={"index": "NDVI"})
    red20 = rt.run(
        "forestry.resample", inputs={"raster": red, "like": nir20}, params={"method": "average"}
    )
    ndvi = rt.run(
        "forestry.spectral_index", inputs={"N": nir20, "R": red20}, params={"index": "NDVI"}
    )
    n, r = nir20.to_xarray()["nir"].values, red20.to_xarray()["red"].values
    np.testing.assert_allclose(ndvi.to_xarray()["NDVI"].values, (n - r) / (n + r), rtol=1e-6)
    # and back onto the 10 m grid of the red band, by 'like'
    back = rt.run(
        "forestry.resample", inputs={"raster": ndvi, "like": red}, params={"method": "nearest"}
    )
    assert back.to_xarray()["NDVI"].shape == red.to_xarray()["red"].shape


def test_a_stack_is_resampled_plane_by_plane_in_several_tasks(tmp_path):
    import minjiang as mj

    rng = np.random.default_rng(7)
    x = rng.random((3, 40, 30)).astype(np.float32)
    paths = []
    for k in range(3):
        transform = (10, 0, 500000, 0, -10, 4000000)
        paths.append(write_geotiff(tmp_path / f"d{k}.tif", x[k], transform))
    with mj.Runtime(store=tmp_path / "s", executor="local", memory_budget="100KiB") as rt:
        stack = rt.ingest(
            "forestry.raster",
            paths,
            params={
                "bands": ["v"],
                "dates": ["2024-01-01", "2024-02-01", "2024-03-01"],
                "chunks": {"y": 16, "x": 16},
            },
        )
        pipe = {
            "steps": [
                {
                    "id": "r",
                    "operator": "forestry.resample",
                    "inputs": {"raster": stack.id},
                    "params": {"method": "average", "resolution": 20},
                }
            ]
        }
        tasks = [
            t for s in rt.plan(pipe).steps[-1].stages if s.name == "full_axis" for t in s.tasks
        ]
        got = rt.run_pipeline(pipe).output.to_xarray()["v"].values
    assert len(tasks) > 1
    want = x.reshape(3, 20, 2, 15, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_bad_targets_are_refused_before_any_work(rt, tmp_path):
    nir = _ingest_s2(rt, "nir")
    with pytest.raises(ContractError, match="exactly one of them"):
        rt.run("forestry.resample", inputs={"raster": nir})
    with pytest.raises(ContractError, match="exactly one of them"):
        rt.run("forestry.resample", inputs={"raster": nir, "like": nir}, params={"resolution": 20})
    with pytest.raises(ParameterError, match="resolution"):
        rt.run("forestry.resample", inputs={"raster": nir}, params={"resolution": -5})
    other = write_geotiff(
        tmp_path / "o.tif", np.ones((4, 4), np.float32), (0.1, 0, 10, 0, -0.1, 50), "EPSG:4326"
    )
    geo = rt.ingest("forestry.raster", other, params={"bands": ["g"]})
    with pytest.raises(ContractError, match="different CRS"):
        rt.run("forestry.resample", inputs={"raster": nir, "like": geo})

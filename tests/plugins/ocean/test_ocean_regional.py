"""Area-weighted regional means on iris-sample-data files.

* OSTIA monthly SST (regular grid) against xarray's own ``weighted(cos(lat)).mean``;
* NEMO ORCA (curvilinear) against areas from the cell-corner bounds computed here
  independently (L'Huilier's theorem on great-circle triangles, from side lengths).
"""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import package_dir

BOXES = [
    "nino34",
    {"name": "dateline", "lat_min": -5, "lat_max": 5, "lon_min": 170, "lon_max": -170},
    {"name": "greenwich", "lat_min": -5, "lat_max": 5, "lon_min": -10, "lon_max": 10},
    "global",
]
EXPECT = [(-5, 5, 190, 240), (-5, 5, 170, 190), (-5, 5, 350, 10), (-90, 90, 0, 360)]


def _xarray_box(da, lat_min, lat_max, lon_min, lon_max):  # type: ignore[no-untyped-def]
    lon = da["lon"] % 360
    in_lon = (
        (lon >= lon_min) & (lon <= lon_max)
        if lon_min <= lon_max
        else (lon >= lon_min) | (lon <= lon_max)
    )
    if lon_max - lon_min == 360:
        in_lon = lon == lon
    return da.where((da["lat"] >= lat_min) & (da["lat"] <= lat_max) & in_lon)


def test_ostia_boxes_match_xarray_weighted_mean(runtime) -> None:  # type: ignore[no-untyped-def]
    path = package_dir("iris_sample_data") / "sample_data" / "ostia_monthly.nc"
    ds = runtime.ingest(
        "ocean.netcdf", [path], params={"variables": {"surface_temperature": "sst"}}
    )
    res = runtime.run(
        "ocean.regional_mean", inputs={"sst": ds}, params={"regions": BOXES, "weights": "cos_lat"}
    )
    out = res.to_xarray()
    assert out["mean"].attrs["regions"] == ["nino34", "dateline", "greenwich", "global"]
    da = ds.to_xarray()["sst"].load()
    w = np.cos(np.deg2rad(da["lat"]))
    for r, box in enumerate(EXPECT):
        expected = _xarray_box(da, *box).weighted(w).mean(("lat", "lon")).values
        np.testing.assert_allclose(out["mean"].isel(region=r).values, expected, rtol=1e-12)
    # 'area' without a cell_area input falls back to cos(lat): identical on this grid
    res2 = runtime.run("ocean.regional_mean", inputs={"sst": ds}, params={"regions": ["nino34"]})
    np.testing.assert_allclose(
        res2.to_xarray()["mean"].values[0], out["mean"].values[0], rtol=1e-12
    )


def _lhuilier_area(lat_b: np.ndarray, lon_b: np.ndarray, radius: float = 6_371_000.0) -> np.ndarray:
    lat, lon = np.deg2rad(lat_b), np.deg2rad(lon_b)

    def side(i: int, j: int) -> np.ndarray:  # haversine central angle
        dlat, dlon = lat[..., j] - lat[..., i], lon[..., j] - lon[..., i]
        h = (
            np.sin(dlat / 2) ** 2
            + np.cos(lat[..., i]) * np.cos(lat[..., j]) * np.sin(dlon / 2) ** 2
        )
        return 2 * np.arcsin(np.sqrt(np.clip(h, 0, 1)))

    total = np.zeros(lat.shape[:-1])
    for k in (1, 2):  # triangles (0, 1, 2) and (0, 2, 3)
        a, b, c = side(0, k), side(k, k + 1), side(k + 1, 0)
        s = (a + b + c) / 2
        t = np.tan(s / 2) * np.tan((s - a) / 2) * np.tan((s - b) / 2) * np.tan((s - c) / 2)
        total += 4 * np.arctan(np.sqrt(np.clip(t, 0, None)))
    return total * radius**2


def test_nemo_curvilinear_area_weighted_means(runtime) -> None:  # type: ignore[no-untyped-def]
    import netCDF4

    files = sorted((package_dir("iris_sample_data") / "sample_data" / "NEMO").glob("*.nc"))
    ds = runtime.ingest("ocean.netcdf", files, params={"variables": {"tos": "sst"}})
    regions = [
        "global",
        "nino34",
        {"name": "dateline", "lat_min": -30, "lat_max": 30, "lon_min": 160, "lon_max": -160},
    ]
    res = runtime.run(
        "ocean.regional_mean",
        inputs={"sst": ds, "cell_area": ds, "lat": ds, "lon": ds},
        params={"regions": regions},
    )
    mean = res.to_xarray()["mean"].values
    with netCDF4.Dataset(files[0]) as nc:
        lat_b, lon_b = nc["bounds_lat"][:].filled(np.nan), nc["bounds_lon"][:].filled(np.nan)
        lat, lon = nc["nav_lat"][:].filled(np.nan), nc["nav_lon"][:].filled(np.nan)
    area = _lhuilier_area(lat_b.astype(np.float64), lon_b.astype(np.float64))
    np.testing.assert_allclose(ds.to_xarray()["cell_area"].values, area, rtol=1e-6)
    lon360 = np.mod(lon, 360)
    masks = [
        np.ones_like(lat, bool),
        (np.abs(lat) <= 5) & (lon360 >= 190) & (lon360 <= 240),
        (np.abs(lat) <= 30) & (lon360 >= 160) & (lon360 <= 200),
    ]
    for t, f in enumerate(files):
        with netCDF4.Dataset(f) as nc:
            tos = nc["tos"][0].filled(np.nan).astype(np.float64)
        for r, m in enumerate(masks):
            ok = m & np.isfinite(tos)
            expected = np.sum(area[ok] * tos[ok]) / np.sum(area[ok])
            np.testing.assert_allclose(mean[r, t], expected, rtol=1e-9)
    assert res.to_xarray()["mean"].attrs["units"] == "degree_C"


def test_regional_mean_errors(runtime, sst_case: dict) -> None:  # type: ignore[no-untyped-def]
    from minjiang.core.errors import ParameterError

    ds = runtime.ingest("ocean.netcdf", [sst_case["path"]])
    with pytest.raises(ParameterError, match="unknown region 'nino5'"):
        runtime.run("ocean.regional_mean", inputs={"sst": ds}, params={"regions": ["nino5"]})
    with pytest.raises(ParameterError, match="lat_min"):
        runtime.run(
            "ocean.regional_mean",
            inputs={"sst": ds},
            params={
                "regions": [{"name": "b", "lat_min": 5, "lat_max": -5, "lon_min": 0, "lon_max": 1}]
            },
        )

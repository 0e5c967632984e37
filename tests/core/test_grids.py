"""The grid contract: a step's aligned inputs share coordinates, calendar and
georeferencing, not only sizes."""

from __future__ import annotations

import numpy as np
import pytest
from minjiang.core.errors import ContractError

from tests._data import ingest_array


def _field(rt, tmp_path, name, values, lat, *, var="data", lat_dtype=np.float64):
    return ingest_array(
        rt,
        tmp_path,
        name,
        values,
        ("lat", "lon"),
        values.shape,
        coords={
            "lat": np.asarray(lat, dtype=lat_dtype),
            "lon": np.arange(values.shape[1], dtype=np.float64),
        },
        var=var,
    )


def test_labels_on_other_latitudes_are_refused_naming_both_grids(runtime, tmp_path, rng):
    values = _field(runtime, tmp_path, "t/v", rng.normal(size=(10, 4)), np.arange(0.0, 10.0))
    labels = _field(
        runtime,
        tmp_path,
        "t/l",
        rng.integers(1, 3, size=(10, 4)).astype(np.int32),
        np.arange(50.0, 60.0),
        var="labels",
    )
    with pytest.raises(ContractError) as err:
        runtime.run("array.label_stats", inputs={"values": values, "labels": labels})
    msg = str(err.value)
    assert "inputs 'values' and 'labels' are on different grids" in msg
    assert (
        "coordinate 'lat' differs (0 .. 9 step 1, 10 values against 50 .. 59 step 1, 10 values)"
        in msg
    )
    assert "Bring one onto the other's grid first" in msg
    assert runtime.catalog.list() and all(r.kind == "ingested" for r in runtime.catalog.list())


def test_the_same_grid_in_float32_and_float64_is_one_grid(runtime, tmp_path, rng):
    lat = np.arange(-89.875, 90, 0.25)[:12]
    a = _field(runtime, tmp_path, "t/a", rng.normal(size=(12, 3)), lat)
    b = _field(runtime, tmp_path, "t/b", rng.normal(size=(12, 3)), lat, lat_dtype=np.float32)
    out = runtime.run("array.band_math", inputs={"a": a, "b": b}, params={"expression": "a - b"})
    want = a.to_xarray()["data"].values - b.to_xarray()["data"].values
    np.testing.assert_allclose(out.to_xarray()["result"].values, want)
    # a shift of a tenth of a cell is another grid
    c = _field(runtime, tmp_path, "t/c", rng.normal(size=(12, 3)), lat + 0.025)
    with pytest.raises(ContractError, match="coordinate 'lat' differs"):
        runtime.run("array.band_math", inputs={"a": a, "b": c}, params={"expression": "a - b"})


def _series(rt, tmp_path, name, calendar, rng):
    from tests._data import write_zarr

    path = write_zarr(
        tmp_path / f"{name.replace('/', '_')}.zarr",
        {"data": (("time",), rng.normal(size=6))},
        coords={
            "time": (
                "time",
                np.arange(6) * 30,
                {"units": "days since 2000-01-01", "calendar": calendar},
            )
        },
    )
    return rt.ingest("array.zarr", [path], name=name)


def test_times_on_calendars_of_different_families_are_refused(runtime, tmp_path, rng):
    a = _series(runtime, tmp_path, "t/std", "standard", rng)
    b = _series(runtime, tmp_path, "t/pg", "proleptic_gregorian", rng)
    c = _series(runtime, tmp_path, "t/360", "360_day", rng)
    runtime.run("array.band_math", inputs={"a": a, "b": b}, params={"expression": "a + b"})
    with pytest.raises(ContractError, match="calendar"):
        runtime.run("array.band_math", inputs={"a": a, "b": c}, params={"expression": "a + b"})


def test_rasters_with_other_transforms_are_refused_and_the_aligner_is_named(runtime, tmp_path, rng):
    import xarray as xr

    from tests._data import write_zarr

    def raster(name, transform):
        path = write_zarr(tmp_path / f"{name}.zarr", {"v": (("y", "x"), rng.normal(size=(5, 6)))})
        ds = xr.open_zarr(path, consolidated=False)
        ds["v"].attrs.update(crs="EPSG:32633", transform=list(transform))
        ds.load().to_zarr(tmp_path / f"{name}2.zarr", mode="w", zarr_format=3, consolidated=False)
        return runtime.ingest("array.zarr", [tmp_path / f"{name}2.zarr"], name=f"t/{name}")

    a = raster("a", (10, 0, 500000, 0, -10, 4000000))
    b = raster("b", (10, 0, 500020, 0, -10, 4000000))
    with pytest.raises(ContractError) as err:
        runtime.run("array.band_math", inputs={"a": a, "b": b}, params={"expression": "a + b"})
    assert "transform [10.0, 0.0, 500000.0" in str(err.value)
    assert "forestry.resample" in str(err.value)  # the registered alignment operator

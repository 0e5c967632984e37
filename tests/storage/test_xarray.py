"""Interop: datasets open with plain xarray and pyarrow; write_xarray ingests lazily."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from minjiang.storage import (
    DatasetWriter,
    Store,
    open_dataset_info,
    read_array,
    read_coord_values,
    read_table,
    verify_dataset,
    write_xarray,
)
from minjiang.storage import _dataset as dataset_module


def _curvilinear(rng: np.random.Generator) -> xr.Dataset:
    ny, nx, nt = 6, 8, 5
    yy, xx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    lat = 40.0 + 0.5 * yy + 0.1 * xx
    lon = -70.0 + 0.5 * xx - 0.1 * yy
    time = pd.date_range("2020-01-01", periods=nt, freq="D").values
    sst = rng.standard_normal((nt, ny, nx)).astype("float32")
    sst[0, 0, 0] = np.nan
    return xr.Dataset(
        {
            "sst": (
                ("time", "y", "x"),
                sst,
                {"units": "degC", "standard_name": "sea_surface_temperature"},
            )
        },
        coords={
            "time": ("time", time, {"standard_name": "time"}),
            "lat": (("y", "x"), lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": (("y", "x"), lon, {"units": "degrees_east", "standard_name": "longitude"}),
            "depth": ((), 0.5, {"units": "m"}),
        },
        attrs={"title": "synthetic", "Conventions": "CF-1.8"},
    )


def _write_by_hand(
    store: Store, ds: xr.Dataset, did: str, *, coords_first: bool
) -> dict[str, dict[str, str]]:
    w = DatasetWriter(store, did)
    w.create(dict(ds.attrs))
    sums: dict[str, dict[str, str]] = {}

    def coords() -> None:
        for name, c in ds.coords.items():
            sums[str(name)] = w.write_coord(str(name), c.values, dims=c.dims, attrs=c.attrs)

    if coords_first:
        coords()
    v = ds.sst
    w.create_array(
        "sst", shape=v.shape, dtype=v.dtype, chunks=(2, 3, 8), dims=v.dims, attrs=v.attrs
    )
    sums["sst"] = {}
    for t0 in range(0, 5, 2):
        for y0 in (0, 3):
            region = (slice(t0, min(t0 + 2, 5)), slice(y0, y0 + 3), slice(0, 8))
            sums["sst"].update(w.write_region("sst", region, v.values[region]))
    if not coords_first:
        coords()
    w.consolidate()
    return sums


@pytest.mark.parametrize("coords_first", [True, False])
def test_plain_xarray_opens_cf_time_and_curvilinear(
    store: Store, rng: np.random.Generator, coords_first: bool
) -> None:
    ds = _curvilinear(rng)
    sums = _write_by_hand(store, ds, "curv", coords_first=coords_first)
    assert verify_dataset(store, "curv", sums).ok
    path = store.local_path("datasets/curv/arrays.zarr")
    got = xr.open_zarr(path)
    assert set(got.data_vars) == {"sst"}
    assert set(got.coords) == {"time", "lat", "lon", "depth"}
    assert got.time.dtype.kind == "M"
    np.testing.assert_array_equal(got.time.values, ds.time.values)
    assert got.time.encoding["units"].startswith("days since 2020-01-01")
    np.testing.assert_array_equal(got.lat.values, ds.lat.values)
    assert got.lat.dims == ("y", "x")
    assert float(got.depth) == 0.5
    np.testing.assert_array_equal(got.sst.values, ds.sst.values)  # NaN included
    assert got.sst.attrs == ds.sst.attrs
    assert got.attrs == ds.attrs
    assert got.sst.encoding["chunks"] == (2, 3, 8)

    info = open_dataset_info(store, "curv")
    assert set(info.arrays) == {"sst"}
    assert set(info.coords) == {"time", "lat", "lon", "depth"}
    assert set(info.arrays["sst"].attrs["coordinates"].split()) == {"depth", "lat", "lon"}
    assert set(info.attrs["coordinates"].split()) == {"depth", "lat", "lon"}
    np.testing.assert_array_equal(read_coord_values(store, info.coords["time"]), ds.time.values)
    assert read_array(store, info.coords["time"]).dtype == np.int64  # stored the CF way
    np.testing.assert_array_equal(read_coord_values(store, info.coords["lon"]), ds.lon.values)


def test_cftime_calendar_coordinate(store: Store) -> None:
    cftime = pytest.importorskip("cftime")
    times = np.array(
        [cftime.DatetimeNoLeap(2001, 2, 28) + np.timedelta64(i, "D") for i in range(3)],
        dtype=object,
    )
    w = DatasetWriter(store, "noleap")
    w.write_coord("time", times, dims=("time",))
    w.consolidate()
    info = open_dataset_info(store, "noleap")
    assert info.coords["time"].attrs["calendar"] == "noleap"
    decoded = read_coord_values(store, info.coords["time"])
    assert list(decoded) == list(times)  # Feb 28 + 1 day is Mar 1 in a no-leap calendar
    coder = xr.coders.CFDatetimeCoder(use_cftime=True)
    got = xr.open_zarr(store.local_path("datasets/noleap/arrays.zarr"), decode_times=coder)
    assert list(got.time.values) == list(times)


def test_nat_time_coordinate(store: Store) -> None:
    times = np.array(["2020-01-01", "NaT", "2020-01-03"], dtype="datetime64[ns]")
    w = DatasetWriter(store, "nat")
    w.write_coord("when", times, dims=("event",))
    w.consolidate()
    info = open_dataset_info(store, "nat")
    np.testing.assert_array_equal(read_coord_values(store, info.coords["when"]), times)
    got = xr.open_zarr(store.local_path("datasets/nat/arrays.zarr"))
    np.testing.assert_array_equal(got.when.values, times)


def _netcdf_engine() -> str:
    # h5netcdf writes through h5py; where h5py is absent netCDF4 writes the same file.
    try:
        import h5py  # noqa: F401

        return "h5netcdf"
    except ImportError:
        pytest.importorskip("netCDF4", reason="writing NetCDF needs h5py (for h5netcdf) or netCDF4")
        return "netcdf4"


def _netcdf(tmp_path: Path, rng: np.random.Generator) -> Path:
    nt, ny, nx = 20, 16, 16
    ds = xr.Dataset(
        {
            "sst": (
                ("time", "lat", "lon"),
                rng.uniform(-2, 30, (nt, ny, nx)).astype("float32"),
                {"units": "degC", "long_name": "sea surface temperature"},
            ),
            "mask": (
                ("lat", "lon"),
                (rng.random((ny, nx)) > 0.3).astype("int8"),
                {"flag_values": [0, 1]},
            ),
            "when": (("time",), pd.date_range("2020-01-01", periods=nt, freq="6h").values),
        },
        coords={
            "time": pd.date_range("2020-01-01", periods=nt, freq="D").values,
            "lat": np.linspace(-10, 10, ny),
            "lon": np.linspace(100, 130, nx),
        },
        attrs={"source": "test", "history": "made in a test"},
    )
    ds.sst.values[3, 4, 5] = np.nan
    path = tmp_path / "sst.nc"
    # packed the way real products are: int16 with scale, offset and a fill value
    ds.to_netcdf(
        path,
        engine=_netcdf_engine(),
        encoding={
            "sst": {"dtype": "int16", "scale_factor": 0.01, "add_offset": 0.0, "_FillValue": -32768}
        },
    )
    return path


def test_write_xarray_from_lazy_netcdf_in_bounded_blocks(
    store: Store, tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _netcdf(tmp_path, rng)
    blocks: list[tuple[str, int]] = []
    original = dataset_module.DatasetWriter.write_region

    def spy(
        self: DatasetWriter, name: str, region: tuple[slice, ...], data: np.ndarray
    ) -> dict[str, str]:
        blocks.append((name, np.asarray(data).nbytes))
        return original(self, name, region, data)

    monkeypatch.setattr(dataset_module.DatasetWriter, "write_region", spy)
    limit = 4096
    with xr.open_dataset(path, engine=_netcdf_engine()) as src:  # lazy: no dask, nothing loaded
        summary = write_xarray(
            store, "ingest1", src, chunks={"time": 2, "lat": 8, "lon": 8}, max_block_bytes=limit
        )
        assert not src.sst.variable._in_memory  # never loaded whole
        expected = src.load()

    sst_blocks = [n for name, n in blocks if name == "sst"]
    assert len(sst_blocks) >= expected.sst.nbytes // limit
    assert max(sst_blocks) <= limit
    assert summary.bytes_written > 0
    assert set(summary.checksums) == {"sst", "mask", "when", "time", "lat", "lon"}
    assert len(summary.checksums["sst"]) == 10 * 2 * 2
    assert summary.schema["arrays"]["sst"]["chunks"] == [2, 8, 8]
    assert summary.schema["arrays"]["sst"]["dtype"] == str(expected.sst.dtype)  # stored decoded
    assert json.loads(json.dumps(summary.schema)) == summary.schema
    assert verify_dataset(store, "ingest1", summary.checksums).ok

    got = xr.open_zarr(store.local_path("datasets/ingest1/arrays.zarr"))
    xr.testing.assert_identical(got.load(), expected)


def test_write_xarray_default_chunks_and_dask_input(store: Store, rng: np.random.Generator) -> None:
    pytest.importorskip("dask")
    ds = xr.Dataset({"v": (("band", "y", "x"), rng.random((3, 50, 40)))}).chunk({"y": 7})
    summary = write_xarray(store, "dd", ds)
    assert summary.schema["arrays"]["v"]["chunks"] == [3, 50, 40]  # small: one chunk
    got = xr.open_zarr(store.local_path("datasets/dd/arrays.zarr"))
    np.testing.assert_array_equal(got.v.values, ds.v.values)


def test_write_xarray_rejects(store: Store) -> None:
    ds = xr.Dataset({"v": (("x",), np.arange(10.0))})
    with pytest.raises(ValueError, match="more than max_block_bytes"):
        write_xarray(store, "big", ds, chunks={"x": 10}, max_block_bytes=16)
    with pytest.raises(ValueError, match="dims are"):
        write_xarray(store, "big", ds, chunks={"nope": 1})
    with pytest.raises(ValueError, match="dtype"):
        write_xarray(store, "str", xr.Dataset({"s": (("x",), np.array(["a", "b"]))}))


def test_write_xarray_rerun_is_idempotent(store: Store, rng: np.random.Generator) -> None:
    ds = _curvilinear(rng)
    first = write_xarray(store, "again", ds)
    second = write_xarray(store, "again", ds)
    assert first.checksums == second.checksums
    assert first.schema == second.schema


def test_the_order_of_coordinates_does_not_change_what_is_stored(
    store: Store, rng: np.random.Generator
) -> None:
    """xarray's order of coordinates depends on the process (open_zarr decodes them
    through sets): the same dataset must store the same metadata in any order."""
    ds = _curvilinear(rng)
    reordered = xr.Dataset(
        {k: v.variable for k, v in ds.data_vars.items()},
        coords={k: ds.coords[k].variable for k in reversed(list(ds.coords))},
        attrs=ds.attrs,
    )
    assert list(reordered.coords) != list(ds.coords)
    first = write_xarray(store, "a", ds)
    second = write_xarray(store, "b", reordered)
    assert first.checksums == second.checksums
    for key in store.list("datasets/a"):
        if key.endswith("zarr.json"):
            assert store.read_bytes(key) == store.read_bytes(key.replace("/a/", "/b/", 1)), key


def test_plain_readers_without_minjiang(store: Store, rng: np.random.Generator) -> None:
    ds = _curvilinear(rng)
    write_xarray(store, "plain", ds)
    w = DatasetWriter(store, "plain")
    w.write_table_part("events", "0000", pd.DataFrame({"id": [1, 2], "peak": [1.5, 2.5]}))
    w.write_table_part("events", "0001", pd.DataFrame({"id": [3], "peak": [0.5]}))
    root = store.local_path("")
    assert root is not None
    code = f"""
import sys, json
import xarray as xr, pyarrow.parquet as pq
ds = xr.open_zarr({str(root / "datasets/plain/arrays.zarr")!r})
t = pq.read_table({str(root / "datasets/plain/tables/events")!r})
print(json.dumps({{
    "vars": sorted(ds.data_vars), "coords": sorted(ds.coords), "time": str(ds.time.dtype),
    "sst": float(ds.sst.sum()), "ids": sorted(t.column("id").to_pylist()),
    "minjiang": sorted(m for m in sys.modules if m.startswith("minjiang")),
}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    got = json.loads(out.stdout)
    assert got["minjiang"] == []
    assert got["vars"] == ["sst"]
    assert got["coords"] == ["depth", "lat", "lon", "time"]
    assert got["time"] == "datetime64[ns]"
    assert got["sst"] == pytest.approx(float(ds.sst.sum()), rel=1e-5)
    assert got["ids"] == [1, 2, 3]
    assert read_table(store, "plain", "events").num_rows == 3


def test_write_xarray_on_s3(s3_store: Store, rng: np.random.Generator) -> None:
    ds = _curvilinear(rng)
    summary = write_xarray(s3_store, "ons3", ds)
    assert verify_dataset(s3_store, "ons3", summary.checksums).ok
    info = open_dataset_info(s3_store, "ons3")
    np.testing.assert_array_equal(read_coord_values(s3_store, info.coords["time"]), ds.time.values)
    got = xr.open_zarr(s3_store.zarr_store("datasets/ons3/arrays.zarr", read_only=True))
    xr.testing.assert_identical(got.load(), ds)

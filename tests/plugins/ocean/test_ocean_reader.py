"""``ocean.netcdf`` on files shipped in iris-sample-data and on files written here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from minjiang.core.errors import ParameterError, ReaderError
from minjiang.plugins.ocean._reader import NetCDFParams, NetCDFReader, cell_area_from_bounds

from .conftest import package_dir, synthetic_sst, write_sst


@pytest.fixture
def reader() -> NetCDFReader:
    return NetCDFReader()


def _sample(name: str) -> Path:
    return package_dir("iris_sample_data") / "sample_data" / name


def test_ostia_regular_grid(reader: NetCDFReader) -> None:
    path = _sample("ostia_monthly.nc")
    ds = reader.open(reader.source_files([path]), NetCDFParams())
    assert dict(ds.sizes) == {"time": 54, "lat": 18, "lon": 432}
    var = ds["surface_temperature"]
    assert var.dims == ("time", "lat", "lon") and var.attrs["units"] == "K"
    assert np.isnan(var.values).sum() > 0  # _FillValue 1e20 over land became NaN
    assert np.nanmax(var.values) < 320.0
    assert ds.time.dtype.kind == "M" and ds.attrs["time_coverage_start"].startswith("2006-04-16")
    assert reader.chunks(ds, None) == {"time": 54, "lat": 18, "lon": 432}  # short series: slabs


def test_nemo_curvilinear_files_along_time(reader: NetCDFReader) -> None:
    files = sorted((_sample("NEMO")).glob("*.nc"))[::-1]  # given out of order on purpose
    ds = reader.open(reader.source_files(files), NetCDFParams(variables={"tos": "sst"}))
    assert dict(ds.sizes) == {"time": 3, "y": 330, "x": 360}
    assert [t.month for t in ds.time.values] == [1, 2, 3]
    assert type(ds.time.values[0]).__name__ == "Datetime360Day"  # model calendar kept via cftime
    assert ds["lat"].dims == ("y", "x") and ds["cell_area"].attrs["units"] == "m2"
    # the cells of this global grid tile (part of) the sphere: total area below 4πR²
    total = float(ds["cell_area"].sum())
    assert 0.5 * 4 * np.pi * 6.371e6**2 < total < 4 * np.pi * 6.371e6**2 * 1.001


def test_netcdf3_scale_offset_fill_and_noleap(tmp_path: Path, reader: NetCDFReader) -> None:
    import cftime
    import xarray as xr

    time = [cftime.DatetimeNoLeap(2001, 1, 1) + np.timedelta64(i, "D") for i in range(400)]
    raw = np.arange(400 * 6, dtype=np.int16).reshape(400, 2, 3) % 1000
    raw[5, 1, 1] = -999
    ds = xr.Dataset(
        {
            "analysed_sst": (
                ("time", "latitude", "longitude"),
                raw,
                {
                    "scale_factor": 0.01,
                    "add_offset": 273.15,
                    "_FillValue": np.int16(-999),
                    "units": "K",
                },
            )
        },
        coords={
            "time": ("time", time),
            "latitude": ("latitude", [1.0, 2.0], {"units": "degrees_north"}),
            "longitude": ("longitude", [3.0, 4.0, 5.0], {"units": "degrees_east"}),
        },
    )
    path = tmp_path / "classic.nc"
    ds.to_netcdf(
        path, engine="scipy", format="NETCDF3_64BIT", encoding={"analysed_sst": {"dtype": "int16"}}
    )
    out = reader.open([path], reader.validate_params({"variables": {"analysed_sst": "sst"}}))
    sst = out["sst"].values
    assert np.isnan(sst[5, 1, 1])
    np.testing.assert_allclose(sst[0, 0, 0], 273.15, rtol=1e-6)
    np.testing.assert_allclose(sst[1, 0, 0], 273.15 + 6 * 0.01, rtol=1e-6)
    assert out["time"].values[0].calendar == "noleap"
    assert reader.chunks(out, None)["time"] == 400  # a year or more: pencils


def test_files_concatenate_and_overlaps_fail(tmp_path: Path, reader: NetCDFReader) -> None:
    time, sst = synthetic_sst("2000-01-01", "2001-12-31", ny=2, nx=2)
    a = write_sst(tmp_path / "a.nc", time[:400], sst[:400])
    b = write_sst(tmp_path / "b.nc", time[400:], sst[400:], engine="netcdf4", fmt="NETCDF4_CLASSIC")
    ds = reader.open(reader.source_files([b, a]), None)
    assert ds.sizes["time"] == time.size
    np.testing.assert_array_equal(ds["sst"].values, sst)
    c = write_sst(tmp_path / "c.nc", time[390:410], sst[390:410])
    with pytest.raises(ReaderError, match="more than once"):
        reader.open([a, b, c], None)


def test_bad_inputs_give_reader_errors(tmp_path: Path, reader: NetCDFReader) -> None:
    junk = tmp_path / "junk.nc"
    junk.write_bytes(b"CDF\x01 this is not a NetCDF file")
    with pytest.raises(ReaderError, match=r"junk\.nc") as err:
        reader.open([junk], None)
    assert "ncdump" in str(err.value)
    with pytest.raises(ReaderError, match="does not exist"):
        reader.source_files([tmp_path / "missing.nc"])
    with pytest.raises(ParameterError, match="chunkin"):
        reader.validate_params({"chunkin": "slabs"})
    time, sst = synthetic_sst("2000-01-01", "2000-02-01", ny=2, nx=2)
    path = write_sst(tmp_path / "ok.nc", time, sst)
    with pytest.raises(ReaderError, match="no data variables"):
        reader.open([path], NetCDFParams(variables=["tos"]))
    assert reader.guess_can_open(path) and not reader.guess_can_open(tmp_path / "x.tif")


def test_cell_area_of_a_lat_lon_cell_is_exact() -> None:
    # a 1° × 1° cell on the equator: R² Δλ (sin φ2 − sin φ1), edges along meridians and
    # great circles differ by < 1e-5 relative for so small a cell
    lat = np.array([[0.0, 0.0, 1.0, 1.0]])
    lon = np.array([[0.0, 1.0, 1.0, 0.0]])
    exact = 6.371e6**2 * np.deg2rad(1.0) * np.sin(np.deg2rad(1.0))
    np.testing.assert_allclose(cell_area_from_bounds(lat, lon), exact, rtol=1e-4)

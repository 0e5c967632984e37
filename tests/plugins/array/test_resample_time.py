"""array.resample_time against xarray's resample on real series shipped in
iris-sample-data, and on a 360-day calendar."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from minjiang.core.errors import ContractError

from tests._data import write_zarr


def sample(name: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec("iris_sample_data")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("iris-sample-data is not installed")
    return Path(next(iter(spec.submodule_search_locations)), "sample_data", name)


def _xr(path, var):
    import xarray as xr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xr.open_dataset(path)[var].load()


XR_FREQ = {"month": "MS", "season": "QS-DEC", "year": "YS"}


def _want(da, freq, how):
    r = da.resample(time=XR_FREQ[freq])
    if how == "sum":
        return r.sum(min_count=1)
    return getattr(r, how)()


@pytest.fixture(scope="module")
def soi(tmp_path_factory):
    """The SOI series ingested once for the module, with its runtime."""
    from minjiang.core import Runtime

    rt = Runtime(store=tmp_path_factory.mktemp("soi") / "store", executor="local")
    yield rt, rt.ingest("array.netcdf", sample("SOI_Darwin.nc"))
    rt.close()


@pytest.mark.parametrize(("freq", "how"), [("season", "mean"), ("year", "sum"), ("year", "count")])
def test_the_soi_series_matches_xarray(soi, freq, how):
    runtime, src = soi
    path = sample("SOI_Darwin.nc")
    out = runtime.run("array.resample_time", inputs={"x": src}, params={"freq": freq, "how": how})
    got = out.to_xarray()["SOI_Darwin"]
    # float32 data: ours sums in float64 and rounds once, as xarray on float64 values
    want = _want(_xr(path, "SOI_Darwin").astype(np.float64), freq, how)
    np.testing.assert_array_equal(got["time"].values, want["time"].values)
    np.testing.assert_array_equal(np.isnan(got.values), np.isnan(want.values))
    np.testing.assert_allclose(got.values, want.values.astype(got.dtype), rtol=1e-6, equal_nan=True)
    assert got.attrs["cell_methods"].startswith("time: ")


def test_the_ostia_field_split_over_space_matches_xarray(minjiang_store, tmp_path):
    from minjiang.core import Runtime

    path = sample("ostia_monthly.nc")
    da = _xr(path, "surface_temperature")
    # stored in blocks of latitude bands, so that tasks split the field
    zpath = write_zarr(
        tmp_path / "ostia.zarr",
        {"surface_temperature": (da.dims, da.values)},
        chunks={"surface_temperature": (54, 3, 432)},
        coords={d: da[d].values for d in da.dims},
    )
    with Runtime(store=minjiang_store, executor="local", memory_budget="6MiB") as rt:
        src = rt.ingest("array.zarr", [zpath])
        pipe = {
            "steps": [
                {
                    "id": "s",
                    "operator": "array.resample_time",
                    "inputs": {"x": f"{src.id}:surface_temperature"},
                    "params": {"freq": "season", "how": "max", "min_valid": 2},
                }
            ]
        }
        stages = rt.plan(pipe).steps[-1].stages
        got = rt.run_pipeline(pipe).output.to_xarray()["surface_temperature"]
    assert sum(len(s.tasks) for s in stages if s.name == "full_axis") > 1
    r = da.resample(time="QS-DEC")
    want = r.max().where(r.count() >= 2)
    np.testing.assert_array_equal(got["time"].values, want["time"].values)
    np.testing.assert_allclose(got.values, want.values, rtol=1e-6, equal_nan=True)


def test_a_360_day_calendar_keeps_its_calendar(runtime, tmp_path):
    import cftime
    import xarray as xr

    rng = np.random.default_rng(4)
    days = np.arange(360 * 2)  # two years of 360-day days: 24 months of 30 days
    x = rng.normal(size=(days.size, 3))
    x[rng.random(x.shape) < 0.1] = np.nan
    path = write_zarr(
        tmp_path / "d360.zarr",
        {"t2m": (("time", "site"), x)},
        coords={"time": ("time", days, {"units": "days since 2001-01-01", "calendar": "360_day"})},
    )
    src = runtime.ingest("array.zarr", [path])
    out = runtime.run(
        "array.resample_time", inputs={"x": src}, params={"freq": "month", "how": "mean"}
    )
    got = out.to_xarray()["t2m"]
    assert got.sizes["time"] == 24
    assert isinstance(got["time"].values[0], cftime.Datetime360Day)
    times = xr.date_range(
        "2001-01-01", periods=days.size, freq="D", calendar="360_day", use_cftime=True
    )
    want = xr.DataArray(x, dims=("time", "site"), coords={"time": times}).resample(time="MS").mean()
    np.testing.assert_allclose(got.values, want.values, rtol=1e-12, equal_nan=True)
    assert [t.month for t in got["time"].values[:3]] == [1, 2, 3]


def test_refusals(runtime, tmp_path):
    no_time = write_zarr(tmp_path / "n.zarr", {"v": (("y",), np.ones(3))})
    src = runtime.ingest("array.zarr", [no_time])
    with pytest.raises(ContractError, match=r"needs whole dims \['time'\]"):
        runtime.run(
            "array.resample_time", inputs={"x": src}, params={"freq": "year", "how": "mean"}
        )
    times = np.array(["2020-03-01", "2020-01-01"], dtype="datetime64[ns]")
    back = write_zarr(tmp_path / "b.zarr", {"v": (("time",), np.ones(2))}, coords={"time": times})
    src = runtime.ingest("array.zarr", [back])
    with pytest.raises(ContractError, match="not in increasing order"):
        runtime.run(
            "array.resample_time", inputs={"x": src}, params={"freq": "month", "how": "sum"}
        )

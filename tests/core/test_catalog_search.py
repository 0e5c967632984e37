"""Data-quality summaries at commit, the producing plugin in the record, and catalog
search across domains from the index kept at commit time."""

from __future__ import annotations

import json

import numpy as np
import pytest
from minjiang.core.cli import app
from typer.testing import CliRunner

from tests._data import write_zarr

runner = CliRunner(env={"COLUMNS": "240"})


@pytest.fixture(scope="module")
def shared_runtime(tmp_path_factory):
    from minjiang.core import Runtime

    rt = Runtime(store=tmp_path_factory.mktemp("search") / "store", executor="local")
    yield rt
    rt.close()


@pytest.fixture(scope="module")
def shared(shared_runtime, tmp_path_factory):
    """An ocean-like lat/lon series in 2020, a UTM raster, and one derived dataset
    (made once for the module; a test that damages the store works on a copy)."""
    runtime, tmp_path = shared_runtime, tmp_path_factory.mktemp("search-data")
    rng = np.random.default_rng(5)
    sst = rng.normal(20, 2, size=(6, 4, 5))
    sst[0, 0, :3] = np.nan
    ocean = write_zarr(
        tmp_path / "sst.zarr",
        {"sst": (("time", "lat", "lon"), sst)},
        coords={
            "time": np.array("2020-01-01", dtype="datetime64[ns]")
            + np.arange(6) * np.timedelta64(1, "D"),
            "lat": np.array([10.0, 11.0, 12.0, 13.0]),
            "lon": np.array([110.0, 111.0, 112.0, 113.0, 114.0]),
        },
    )
    import xarray as xr

    ds = xr.open_zarr(ocean, consolidated=False).load()
    ds["sst"].attrs.update(standard_name="sea_surface_temperature", units="degC")
    ds.to_zarr(tmp_path / "sst2.zarr", mode="w", zarr_format=3, consolidated=False)
    sst_res = runtime.ingest("array.zarr", [tmp_path / "sst2.zarr"], name="ocean/sst")
    raster = xr.Dataset({"ndvi": (("y", "x"), rng.random((3, 4)))})
    raster["ndvi"].attrs.update(
        crs="EPSG:32650", transform=[10.0, 0, 500000.0, 0, -10.0, 2000000.0]
    )
    raster.to_zarr(tmp_path / "ndvi.zarr", mode="w", zarr_format=3, consolidated=False)
    ndvi_res = runtime.ingest("array.zarr", [tmp_path / "ndvi.zarr"], name="forest/ndvi")
    smooth = runtime.run(
        "array.gaussian", inputs={"x": sst_res}, params={"sigma": 1}, name="ocean/smooth"
    )
    return sst_res, ndvi_res, smooth, sst


def test_a_commit_records_what_each_array_holds(shared):
    sst_res, _, smooth, sst = shared
    s = sst_res.record.schema_["arrays"]["sst"]["summary"]
    assert s["cells"] == sst.size and s["nan"] == 3 and s["valid"] == sst.size - 3
    assert s["valid_fraction"] == pytest.approx((sst.size - 3) / sst.size, abs=1e-6)
    assert s["min"] == pytest.approx(np.nanmin(sst)) and s["max"] == pytest.approx(np.nanmax(sst))
    assert s["mean"] == pytest.approx(np.nanmean(sst))
    t = sst_res.record.schema_["coords"]["time"]["summary"]
    assert t["min"].startswith("2020-01-01") and t["max"].startswith("2020-01-06")
    # computed datasets: folded from the tasks' block summaries
    got = smooth.to_xarray()["sst"].values
    s2 = smooth.record.schema_["arrays"]["sst"]["summary"]
    assert s2["nan"] == int(np.isnan(got).sum())
    assert s2["max"] == pytest.approx(np.nanmax(got))
    # shown by `catalog show`, first
    out = runner.invoke(
        app, ["catalog", "show", "ocean/sst", "--store", str(sst_res.runtime.store.root)]
    )
    assert out.exit_code == 0, out.output
    shown = json.loads(out.output)
    assert list(shown)[:2] == ["id", "quality"] and shown["quality"]["sst"]["nan"] == 3


def test_the_record_names_the_producing_plugin_and_its_version(shared):
    from importlib.metadata import version

    _, _, smooth, _ = shared
    plugin = smooth.record.producer["plugin"]
    assert plugin["module"] == "minjiang.plugins.array" and plugin["package"] == "minjiang"
    assert smooth.record.software["minjiang"] == version("minjiang") == plugin["version"]
    stac = smooth.runtime.catalog.to_stac(smooth.id)
    assert stac["properties"]["processing:software"]["minjiang"] == version("minjiang")


def test_search_filters_across_domains_from_the_index(shared):
    sst_res, ndvi_res, smooth, _ = shared
    cat = sst_res.runtime.catalog

    def ids(**kw):
        return {r.id for r in cat.search(**kw)}

    assert ids(variable="sea_surface_temperature") == {sst_res.id, smooth.id}
    assert ids(bbox=(109, 9, 111, 10.5)) == {sst_res.id, smooth.id}
    # the UTM 50N raster near (117 E, 18 N) is found by its transformed extent
    assert ids(bbox=(116.9, 18.0, 117.1, 18.2)) == {ndvi_res.id}
    assert ids(start="2020-01-05", end="2020-02-01") == {sst_res.id, smooth.id}
    assert ids(start="2021-01-01") == set()
    assert ids(operator="array.gaussian") == {smooth.id}
    assert ids(producer="minjiang.plugins.array") == {sst_res.id, ndvi_res.id, smooth.id}
    assert ids(ancestor_of="ocean/smooth") == {sst_res.id}
    assert ids(descendant_of="ocean/sst") == {smooth.id}
    assert ids(text="ndvi") == {ndvi_res.id}
    assert ids(text="ndvi", domain="ocean") == set()
    with pytest.raises(ValueError, match="not an ISO date"):
        cat.search(start="yesterday")
    with pytest.raises(ValueError, match="west, south, east, north"):
        cat.search(bbox=(0, 10, 1, 5))


def test_search_reads_the_index_not_the_data(shared, tmp_path):
    import shutil

    from minjiang.storage import Catalog, open_store

    sst_res, _, smooth, _ = shared
    shutil.copytree(sst_res.runtime.store.root, tmp_path / "copy")
    store = open_store(tmp_path / "copy")
    catalog = Catalog(store)
    # with the data gone, the index still answers
    store.delete_prefix(f"datasets/{sst_res.id}/arrays.zarr")
    assert {r.id for r in catalog.search(variable="sst")} == {sst_res.id, smooth.id}
    # a record with no index entry (older store, killed writer) is indexed from its record
    store.delete(f"catalog/index/{smooth.id}.json")
    assert smooth.id in {r.id for r in catalog.search(bbox=(110, 10, 114, 13))}


def test_cli_search(shared):
    sst_res, _, smooth, _ = shared
    store = str(sst_res.runtime.store.root)
    out = runner.invoke(
        app, ["catalog", "search", "--variable", "sea_surface_temperature", "--store", store]
    )
    assert out.exit_code == 0, out.output
    assert "2 found" in out.output and sst_res.id in out.output and smooth.id in out.output
    out = runner.invoke(app, ["catalog", "search", "--bbox", "1,2,3", "--store", store])
    assert out.exit_code != 0 and "four numbers" in out.output

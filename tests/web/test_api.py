"""The web catalog's JSON API and pages, through FastAPI's TestClient, on a real store."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

pytest.importorskip("httpx2", reason="starlette's TestClient needs httpx2 (the dev extra has it)")


@pytest.fixture(scope="module")
def client(web_store):
    from fastapi.testclient import TestClient
    from minjiang.web import create_app

    app = create_app(web_store.root, max_download_bytes=64 * 1024)
    with TestClient(app) as c:
        yield c


def test_openapi_describes_the_api(client) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["info"]["title"] == "minjiang catalog"
    paths = doc["paths"]
    for path in (
        "/api/datasets",
        "/api/datasets/{ref}",
        "/api/datasets/{ref}/lineage",
        "/api/datasets/{ref}/stac",
        "/api/datasets/{ref}/prov",
        "/api/datasets/{ref}/tables/{table}",
        "/api/datasets/{ref}/arrays/{array}/subset",
        "/api/datasets/{ref}/quicklooks/{pipeline}/{file}",
        "/api/names/{name}",
    ):
        assert "get" in paths[path], path
    params = {p["name"] for p in paths["/api/datasets"]["get"]["parameters"]}
    assert {"text", "domain", "variable", "bbox", "start", "end", "operator", "producer"} <= params
    assert {"ancestor", "descendant", "hidden"} <= params
    assert not any(p.startswith("/datasets") for p in paths)  # pages are not API


def test_listing_and_search_filters(client, web_store) -> None:
    ids = web_store.ids
    everything = client.get("/api/datasets").json()
    listed = {d["id"] for d in everything["datasets"]}
    assert set(ids.values()) <= listed and everything["count"] == len(listed)

    def found(**params):
        r = client.get("/api/datasets", params=params)
        assert r.status_code == 200, r.text
        return {d["id"] for d in r.json()["datasets"]}

    assert found(variable="sea_surface_temperature") == {ids["sst"], ids["smooth"], ids["ocean"]}
    assert found(variable="sea_surface_temperature", domain="array") == {ids["sst"], ids["smooth"]}
    assert found(domain="ocean") == {ids["ocean"]}
    assert found(bbox="12,-38,13,-37") == {ids["ocean"]}
    assert found(operator="array.gaussian") == {ids["smooth"]}
    assert found(text="ocean-sst") == {ids["ocean"]}
    # the cube covers lat 10..19, lon 110..121; its products keep the grid
    inside = found(bbox="115,12,118,15")
    assert {ids["sst"], ids["smooth"], ids["mean"]} <= inside and ids["ocean"] not in inside
    assert found(bbox="-10,-10,0,0") == set()
    assert found(start="2021-03-04", end="2021-03-05") == {ids["sst"], ids["smooth"]}
    assert found(start="2022-01-01") == {ids["ocean"]}
    assert found(start="2023-01-01") == set()
    assert found(ancestor=ids["by_region"]) == {
        ids["sst"],
        ids["zones"],
        ids["smooth"],
        ids["mean"],
    }
    assert found(descendant=ids["smooth"]) == {ids["mean"], ids["by_region"]}
    assert found(descendant="webtest/sst", operator="array.reduce") == {ids["mean"]}


def test_bad_search_input_is_a_400_naming_the_field(client) -> None:
    r = client.get("/api/datasets", params={"bbox": "1,2,3"})
    assert r.status_code == 400 and "bbox" in r.json()["detail"]
    r = client.get("/api/datasets", params={"start": "not-a-date"})
    assert r.status_code == 400 and "start" in r.json()["detail"]
    r = client.get("/api/datasets", params={"ancestor": "webtest/nothing-here"})
    assert r.status_code == 404 and "webtest/nothing-here" in r.json()["detail"]
    r = client.get("/api/datasets", params={"text": "x" * 500})
    assert r.status_code == 400 and "limit is 200" in r.json()["detail"]


def test_one_dataset_record_quality_and_quicklooks(client, web_store) -> None:
    rid = web_store.ids["sst"]
    data = client.get(f"/api/datasets/{rid}").json()
    assert data["id"] == rid and data["names"] == ["webtest/sst"]
    summary = data["schema"]["arrays"]["sst"]["summary"]
    assert summary["nan"] == web_store.cube.shape[0]  # the land cell at every time
    assert summary["max"] == pytest.approx(float(np.nanmax(web_store.cube)))
    assert all(isinstance(v, int) for v in data["checksums"].values())
    full = client.get(f"/api/datasets/{rid}", params={"checksums": "true"}).json()
    assert all(isinstance(v, dict) for v in full["checksums"].values())
    # a name (no '/') or a unique id prefix resolves too
    assert client.get(f"/api/datasets/{rid[:10]}").json()["id"] == rid

    mean = client.get(f"/api/datasets/{web_store.ids['by_region']}").json()
    assert len(mean["quicklooks"]) == 1
    png = client.get(mean["quicklooks"][0])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")


def test_names_with_slashes_redirect_to_their_dataset(client, web_store) -> None:
    r = client.get("/api/names/webtest/sst-smooth", follow_redirects=False)
    assert r.status_code == 307
    assert r.headers["location"] == f"/api/datasets/{web_store.ids['smooth']}"
    assert client.get("/api/names/webtest/sst-smooth").json()["id"] == web_store.ids["smooth"]
    r = client.get("/api/names/webtest/none-such")
    assert r.status_code == 404 and "webtest/none-such" in r.json()["detail"]
    assert client.get("/api/names/webtest/../etc").status_code in (400, 404)


def test_lineage_graph_columns_are_capped() -> None:
    from minjiang.web._data import cap_columns

    columns = {-1: ["a", "b", "c"], 0: ["root"], 1: [f"c{i}" for i in range(30)]}
    kept, more = cap_columns(columns, 20)
    assert kept[-1] == ["a", "b", "c"] and kept[0] == ["root"]
    assert kept[1] == [f"c{i}" for i in range(20)] and more == {1: 10}
    assert cap_columns({0: ["r"] * 3}, 1) == ({0: ["r"] * 3}, {})


def test_unknown_and_invalid_references(client) -> None:
    r = client.get("/api/datasets/0123456789abcdef")
    assert r.status_code == 404 and "0123456789abcdef" in r.json()["detail"]
    r = client.get("/api/datasets/..%2F..%2Fetc")
    assert r.status_code in (400, 404)
    r = client.get("/datasets/0123456789abcdef")
    assert r.status_code == 404 and "no dataset" in r.text
    r = client.get("/api/datasets/bad name!")
    assert r.status_code == 400 and "name" in r.json()["detail"]


def test_quicklook_paths_stay_in_the_store(client, web_store) -> None:
    rid = web_store.ids["by_region"]
    for pipeline, file in (
        ("..", "x.png"),
        (web_store.report_dir, "..%2F..%2Fminjiang.json"),
        (web_store.report_dir, "minjiang.json"),
        (web_store.report_dir, "missing.png"),
    ):
        r = client.get(f"/api/datasets/{rid}/quicklooks/{pipeline}/{file}")
        assert r.status_code in (400, 404), (pipeline, file, r.status_code)


def test_lineage_stac_and_prov(client, web_store) -> None:
    ids = web_store.ids
    up = client.get(f"/api/datasets/{ids['mean']}/lineage").json()
    assert {n["id"] for n in up["nodes"]} == {ids["mean"], ids["smooth"], ids["sst"]}
    assert {"parent": ids["smooth"], "child": ids["mean"], "input": "x"} in up["edges"]
    down = client.get(
        f"/api/datasets/{ids['sst']}/lineage", params={"direction": "down", "depth": 1}
    ).json()
    assert {n["id"] for n in down["nodes"]} == {ids["sst"], ids["smooth"]}
    assert client.get(f"/api/datasets/{ids['sst']}/lineage?direction=sideways").status_code == 422

    stac = client.get(f"/api/datasets/{ids['mean']}/stac")
    assert stac.headers["content-type"].startswith("application/geo+json")
    item = stac.json()
    assert item["type"] == "Feature" and item["id"] == ids["mean"]
    assert item["properties"]["processing:software"]["minjiang"]
    prov = client.get(f"/api/datasets/{ids['mean']}/prov").json()
    assert f"mjdata:{ids['sst']}" in prov["entity"]


def test_table_downloads_round_trip(client, web_store) -> None:
    import pandas as pd
    import pyarrow.parquet as pq

    rid = web_store.ids["by_region"]
    expected = web_store.runtime.result(rid).table("stats")
    r = client.get(f"/api/datasets/{rid}/tables/stats", params={"format": "parquet"})
    assert r.status_code == 200 and "stats.parquet" in r.headers["content-disposition"]
    assert pq.read_table(io.BytesIO(r.content)).equals(expected)
    r = client.get(f"/api/datasets/{rid}/tables/stats", params={"format": "csv"})
    assert r.headers["content-type"].startswith("text/csv")
    pd.testing.assert_frame_equal(
        pd.read_csv(io.BytesIO(r.content)), expected.to_pandas(), check_dtype=False
    )
    r = client.get(f"/api/datasets/{rid}/tables/nope")
    assert r.status_code == 404 and "stats" in r.json()["detail"]
    assert client.get(f"/api/datasets/{rid}/tables/stats?format=xlsx").status_code == 422


def test_array_subsets_round_trip(client, web_store, tmp_path) -> None:
    import xarray as xr
    import zarr

    rid = web_store.ids["sst"]
    expected = web_store.runtime.open(rid)["sst"].isel(time=slice(1, 4), y=slice(2, 7)).load()
    np.testing.assert_array_equal(expected.values, web_store.cube[1:4, 2:7, :])
    r = client.get(f"/api/datasets/{rid}/arrays/sst/subset", params={"region": "time=1:4,y=2:7"})
    assert r.status_code == 200, r.text
    path = tmp_path / "subset.nc"
    path.write_bytes(r.content)
    with xr.open_dataset(path, engine="netcdf4") as got:
        xr.testing.assert_identical(got["sst"].load().drop_attrs(), expected.drop_attrs())
        assert got["sst"].attrs["standard_name"] == "sea_surface_temperature"
        assert got.attrs["minjiang_region"] == "time=1:4,y=2:7,x=0:12"

    r = client.get(
        f"/api/datasets/{rid}/arrays/sst/subset",
        params={"region": "time=1:4,y=2:7", "format": "zarr"},
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    (tmp_path / "subset.zarr.zip").write_bytes(r.content)
    assert "zarr.json" in zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    store = zarr.storage.ZipStore(tmp_path / "subset.zarr.zip", mode="r")
    got = xr.open_zarr(store, zarr_format=3, consolidated=False)["sst"].load()
    xr.testing.assert_equal(got, expected)
    store.close()


def test_downloads_over_the_limit_are_refused_with_the_fix(web_store) -> None:
    from fastapi.testclient import TestClient
    from minjiang.web import create_app

    rid = web_store.ids["sst"]
    # 3 x 10 x 12 float32 values (1440 bytes) and their coordinates pass a 2 KiB limit;
    # the whole 6 x 10 x 12 cube (2880 bytes and more) does not
    with TestClient(create_app(web_store.root, max_download_bytes=2048)) as small:
        url = f"/api/datasets/{rid}/arrays/sst/subset"
        assert small.get(url, params={"region": "time=0:3"}).status_code == 200
        r = small.get(url)
        assert r.status_code == 400
        detail = r.json()["detail"]
        assert r.json()["error"] == "DownloadTooLargeError"
        assert "download limit of 2.0 KiB" in detail and "6x10x12" in detail
        assert "select fewer indices" in detail and "--max-download-mib" in detail
        r = small.get(url, params={"format": "zarr"})
        assert r.status_code == 400 and "download limit" in r.json()["detail"]
    with TestClient(create_app(web_store.root, max_download_bytes=16)) as tiny:
        r = tiny.get(f"/api/datasets/{web_store.ids['by_region']}/tables/stats")
        assert r.status_code == 400 and "download limit of 16 bytes" in r.json()["detail"]


def test_subset_refusals_name_the_range_and_the_fix(client, web_store) -> None:
    rid = web_store.ids["sst"]
    url = f"/api/datasets/{rid}/arrays/sst/subset"
    for region, words in (
        ("time=0:7", "0 <= START < STOP <= 6"),
        ("time=3:3", "START < STOP"),
        ("depth=0:1", "DIM one of ['time', 'y', 'x']"),
        ("time=0:2,time=2:4", "twice"),
        ("time=a:b", "START:STOP"),
    ):
        r = client.get(url, params={"region": region})
        assert r.status_code == 400 and words in r.json()["detail"], (region, r.text)
    r = client.get(f"/api/datasets/{rid}/arrays/nope/subset")
    assert r.status_code == 404 and "sst" in r.json()["detail"]


def test_a_dataset_reused_under_a_second_name_shows_both(runtime) -> None:
    # a store of its own: the package's store keeps one name per dataset
    from fastapi.testclient import TestClient
    from minjiang.core.testing import make_dataset
    from minjiang.web import create_app

    first = make_dataset(runtime, {"v": (("y", "x"), np.arange(12.0).reshape(3, 4))}, name="a/one")
    again = make_dataset(runtime, {"v": (("y", "x"), np.arange(12.0).reshape(3, 4))}, name="b/two")
    assert again.id == first.id
    client = TestClient(create_app(runtime.store.url))
    (row,) = client.get("/api/datasets").json()["datasets"]
    assert row["names"] == ["a/one", "b/two"]
    assert client.get(f"/api/datasets/{first.id}").json()["names"] == ["a/one", "b/two"]
    nodes = client.get(f"/api/datasets/{first.id}/lineage").json()["nodes"]
    assert [n["names"] for n in nodes] == [["a/one", "b/two"]]
    assert "b/two" in client.get(f"/datasets/{first.id}").text

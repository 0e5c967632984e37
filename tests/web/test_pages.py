"""The web catalog's HTML pages through FastAPI's TestClient (no browser)."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("httpx2", reason="starlette's TestClient needs httpx2 (the dev extra has it)")


@pytest.fixture(scope="module")
def client(web_store):
    from fastapi.testclient import TestClient
    from minjiang.web import create_app

    with TestClient(create_app(web_store.root)) as c:
        yield c


def _row_ids(html: str) -> set[str]:
    return set(re.findall(r'<tr data-id="([0-9a-f]+)"', html))


def test_index_lists_and_the_form_filters(client, web_store) -> None:
    ids = web_store.ids
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert set(ids.values()) <= _row_ids(page.text)
    assert 'href="/static/style.css"' in page.text
    assert '<option value="ocean">ocean</option>' in page.text  # every domain offered
    narrowed = client.get("/", params={"variable": "sea_surface_temperature", "domain": ""})
    assert _row_ids(narrowed.text) == {ids["sst"], ids["smooth"], ids["ocean"]}
    assert "3 datasets" in narrowed.text
    narrowed = client.get("/", params={"variable": "sea_surface_temperature", "domain": "ocean"})
    assert _row_ids(narrowed.text) == {ids["ocean"]}
    assert _row_ids(client.get("/", params={"text": "nothing-matches-this"}).text) == set()
    bad = client.get("/", params={"bbox": "1,2"})
    assert bad.status_code == 400 and "bbox" in bad.text and "west,south,east,north" in bad.text


def test_dataset_page_shows_schema_quality_lineage_and_downloads(client, web_store) -> None:
    ids = web_store.ids
    html = client.get(f"/datasets/{ids['smooth']}").text
    assert "webtest/sst-smooth" in html and "array.gaussian" in html
    # quality table: the land cell is NaN at each of the 6 times
    quality = html.split('id="quality"')[1].split("</section>")[0]
    assert "<td>sst</td>" in quality and "<td>6</td>" in quality and "degC" in quality
    # lineage: the parent and the child are links, also inside the SVG
    assert f'class="parent-link" href="/datasets/{ids["sst"]}"' in html
    assert f'class="child-link" href="/datasets/{ids["mean"]}"' in html
    svg = html.split("<svg", 1)[1].split("</svg>", 1)[0]
    for rid in (ids["sst"], ids["smooth"], ids["mean"], ids["by_region"]):
        assert f'href="/datasets/{rid}"' in svg
    assert f"/api/datasets/{ids['smooth']}/stac" in html and "/prov" in html
    # the subset form: one field per dim, prefilled with the whole range
    assert 'name="time" value="0:6"' in html and 'name="x" value="0:12"' in html
    # an ingested dataset keeps its source's group attributes
    source = client.get(f"/datasets/{ids['sst']}").text
    assert "<dt>title</dt><dd>web catalog test sst</dd>" in source
    assert "<script>" not in source and "&lt;script&gt;alert(" in source  # text, not markup


def test_pipeline_quicklook_and_table_links_on_the_last_dataset(client, web_store) -> None:
    rid = web_store.ids["by_region"]
    html = client.get(f"/datasets/{rid}").text
    src = re.search(r'<img src="([^"]+)"', html).group(1)
    assert src == f"/api/datasets/{rid}/quicklooks/{web_store.report_dir}/mean-sst.png"
    assert client.get(src).content.startswith(b"\x89PNG")
    assert f"/api/datasets/{rid}/tables/stats?format=csv" in html
    # a dataset whose folder holds no report shows none
    assert "<img" not in client.get(f"/datasets/{web_store.ids['sst']}").text


def test_subset_form_redirects_to_the_api(client, web_store) -> None:
    rid = web_store.ids["sst"]
    r = client.get(
        f"/datasets/{rid}/subset",
        params={"array": "sst", "format": "zarr", "time": "1:3", "y": "", "x": "0:4"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers["location"] == (
        f"/api/datasets/{rid}/arrays/sst/subset?format=zarr&region=time%3D1%3A3%2Cx%3D0%3A4"
    )
    r = client.get(f"/datasets/{rid}/subset", params={"array": "nope"})
    assert r.status_code == 404 and "sst" in r.text


def test_names_redirect_and_unknown_pages(client, web_store) -> None:
    r = client.get("/names/webtest/sst-mean", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == f"/datasets/{web_store.ids['mean']}"
    r = client.get("/names/webtest/none-such")
    assert r.status_code == 404 and "webtest/none-such" in r.text
    assert client.get("/datasets/zzzz").status_code == 404

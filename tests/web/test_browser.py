"""The web catalog end to end in headless Chromium (selenium), against ``minjiang serve``
started here in a subprocess on a free loopback port: pages render, a search filter narrows the list,
lineage links resolve, table and subset downloads round-trip, and the browser logs no
severe console errors. Screenshots are kept as test artefacts (the folder is printed):
``$MINJIANG_TEST_ARTEFACTS/web-catalog`` when that variable is set, else a pytest
temporary folder.

Skips, saying why, where Chromium or chromedriver is not installed
(Debian: ``apt-get install chromium chromium-driver``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("uvicorn", reason="the web extra is not installed (pip install minjiang[web])")
pytest.importorskip("selenium", reason="selenium is not installed (the dev extra has it)")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.slow,  # a browser, a server and a pipeline run: about 35 s alone
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason=f"headless browser test needs chromium and chromedriver on PATH (found chromium="
        f"{CHROMIUM}, chromedriver={CHROMEDRIVER}); on Debian: apt-get install chromium "
        "chromium-driver",
    ),
]

WAIT_S = 30  # the longest any page, file or server start is waited for (not a timing check)


@pytest.fixture(scope="module")
def server(web_store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``minjiang serve`` in a subprocess on a free loopback port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path_factory.mktemp("web-server") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from minjiang.core.cli import main; main()",
                "serve",
                "--store",
                str(web_store.root),
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, f"minjiang serve exited: {log.read_text()}"
        try:
            with urllib.request.urlopen(url + "/openapi.json", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        _wait(up, f"minjiang serve on port {port}")
        yield url
    finally:
        proc.terminate()
        proc.wait(WAIT_S)
    assert "authentication" not in log.read_text()  # loopback: no warning


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = os.environ.get("MINJIANG_TEST_ARTEFACTS")
    folder = Path(base) / "web-catalog" if base else tmp_path_factory.mktemp("web-catalog")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nweb catalog screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path_factory.mktemp("web-downloads")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM  # type: ignore[assignment]
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        opts.add_argument(arg)
    opts.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(downloads),
            "download.prompt_for_download": False,
            "safebrowsing.enabled": False,
        },
    )
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(executable_path=CHROMEDRIVER))
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    driver.downloads = downloads  # type: ignore[attr-defined]
    yield driver
    driver.quit()


def _wait(condition: Any, what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def _downloaded(folder: Path, name: str) -> bytes:
    path = folder / name
    _wait(
        lambda: path.exists() and not list(folder.glob("*.crdownload")),
        f"the download {name} in {folder}",
    )
    return path.read_bytes()


def _open(driver: Any, url: str) -> None:
    driver.get(url)
    _wait(lambda: driver.execute_script("return document.readyState") == "complete", url)


def _row_ids(driver: Any) -> set[str]:
    from selenium.webdriver.common.by import By

    return {
        tr.get_attribute("data-id")
        for tr in driver.find_elements(By.CSS_SELECTOR, "#datasets tbody tr[data-id]")
    }


def _shown_id(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, "dataset-id").text


def _severe(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_catalog_in_a_real_browser(server, browser, artefacts, web_store, tmp_path) -> None:
    import io

    import pandas as pd
    import pyarrow.parquet as pq
    import xarray as xr
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    ids = web_store.ids
    driver = browser
    find = driver.find_element

    # the listing renders every dataset, styled by the static CSS
    _open(driver, server + "/")
    assert driver.title == "minjiang catalog"
    assert set(ids.values()) <= _row_ids(driver)
    header = find(By.CSS_SELECTOR, "header.top")
    assert header.value_of_css_property("background-color") == "rgba(18, 52, 77, 1)"
    driver.save_screenshot(str(artefacts / "01-datasets.png"))

    # a search filter narrows the list
    box = find(By.NAME, "variable")
    box.send_keys("sea_surface_temperature")
    find(By.ID, "search-button").click()
    _wait(lambda: "variable=sea_surface_temperature" in driver.current_url, "the search")
    assert _row_ids(driver) == {ids["sst"], ids["smooth"], ids["ocean"]}
    assert find(By.ID, "count").text == "3 datasets"
    driver.save_screenshot(str(artefacts / "02-search.png"))
    # across domains: the ocean reader's dataset, then the array operators' results
    Select(find(By.NAME, "domain")).select_by_value("ocean")
    find(By.ID, "search-button").click()
    _wait(lambda: "domain=ocean" in driver.current_url, "the domain search")
    assert _row_ids(driver) == {ids["ocean"]}
    Select(find(By.NAME, "domain")).select_by_value("array")
    find(By.NAME, "operator").send_keys("array.gaussian")
    find(By.ID, "search-button").click()
    _wait(lambda: "operator=array.gaussian" in driver.current_url, "the operator search")
    assert _row_ids(driver) == {ids["smooth"]}

    # lineage links resolve: parent -> child -> grandchild, back to the parent, and a
    # node of the SVG graph
    find(By.CSS_SELECTOR, f'tr[data-id="{ids["smooth"]}"] a.dataset-link').click()
    _wait(lambda: _shown_id(driver) == ids["smooth"], "the smoothed dataset's page")
    find(By.CSS_SELECTOR, "#parents a.parent-link").click()
    _wait(lambda: _shown_id(driver) == ids["sst"], "the parent's page")
    driver.save_screenshot(str(artefacts / "03-source-dataset.png"))
    find(By.CSS_SELECTOR, "#children a.child-link").click()
    _wait(lambda: _shown_id(driver) == ids["smooth"], "the child's page")
    find(By.CSS_SELECTOR, "#children a.child-link").click()
    _wait(lambda: _shown_id(driver) == ids["mean"], "the grandchild's page")
    find(By.CSS_SELECTOR, f'svg.lineage a[data-id="{ids["by_region"]}"]').click()
    _wait(lambda: _shown_id(driver) == ids["by_region"], "the page of an SVG lineage node")

    # the pipeline's quicklook is shown (decoded by the browser)
    img = find(By.CSS_SELECTOR, "#quicklooks img")
    _wait(lambda: driver.execute_script("return arguments[0].naturalWidth", img) > 0, "the PNG")
    driver.save_screenshot(str(artefacts / "04-table-dataset.png"))

    # table downloads round-trip
    expected = web_store.runtime.result(ids["by_region"]).table("stats")
    stem = ids["by_region"][:16]
    find(By.CSS_SELECTOR, '#tables a[data-format="parquet"]').click()
    got = pq.read_table(io.BytesIO(_downloaded(driver.downloads, f"{stem}-stats.parquet")))
    assert got.equals(expected)
    find(By.CSS_SELECTOR, '#tables a[data-format="csv"]').click()
    csv = _downloaded(driver.downloads, f"{stem}-stats.csv")
    pd.testing.assert_frame_equal(
        pd.read_csv(io.BytesIO(csv)), expected.to_pandas(), check_dtype=False
    )

    # an array subset downloads as NetCDF and equals the slice
    _open(driver, f"{server}/datasets/{ids['sst']}")
    form = find(By.CSS_SELECTOR, 'form.subset[data-array="sst"]')
    for dim, rng in (("time", "1:4"), ("y", "2:7"), ("x", "3:12")):
        field = form.find_element(By.NAME, dim)
        field.clear()
        field.send_keys(rng)
    Select(form.find_element(By.NAME, "format")).select_by_value("netcdf")
    driver.save_screenshot(str(artefacts / "05-subset-form.png"))
    form.find_element(By.CSS_SELECTOR, "button").click()
    nc = tmp_path / "subset.nc"
    nc.write_bytes(_downloaded(driver.downloads, f"{ids['sst'][:16]}-sst.nc"))
    with xr.open_dataset(nc, engine="netcdf4") as ds:
        np.testing.assert_array_equal(ds["sst"].values, web_store.cube[1:4, 2:7, 3:12])
        want = web_store.runtime.open(ids["sst"])["sst"].isel(
            time=slice(1, 4), y=slice(2, 7), x=slice(3, 12)
        )
        xr.testing.assert_equal(ds["sst"].load(), want.load())

    # an error page for an unknown id, still without console errors of our making
    _open(driver, f"{server}/datasets/0123456789abcdef")
    assert "no dataset '0123456789abcdef'" in find(By.ID, "error-message").text
    logs = driver.get_log("browser")
    # the only severe entry allowed is the 404 of the page just asked for
    unexpected = [
        e for e in logs if e["level"] == "SEVERE" and "0123456789abcdef" not in e["message"]
    ]
    assert unexpected == [], unexpected
    assert _severe(driver) == []

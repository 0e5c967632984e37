"""examples/coastal_heat_and_forests.py runs at its small default size (smoke test), finds
the coupling built into its synthetic inputs, and writes a report whose numbers link to
the lineage of the datasets they come from."""

from __future__ import annotations

import json
import re
import runpy
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "coastal_heat_and_forests.py"


def test_coastal_heat_and_forests(tmp_path) -> None:
    module = runpy.run_path(str(EXAMPLE))
    out = tmp_path / "report"
    summary = module["main"](["--out", str(out), "--store", str(tmp_path / "store")])

    # the inputs couple NDVI to the previous summer's heat on two stretches of coast:
    # the study finds it at a lag of one year there, and not at lag 0
    corr = summary["correlation"]
    coupled = [r.name for r in module["REGIONS"] if r.response > 0]
    (uncoupled,) = [r.name for r in module["REGIONS"] if r.response == 0]
    for name in coupled:
        assert corr[name][1] < -0.5, (name, corr[name])
        assert corr[name][1] < corr[name][0], (name, corr[name])
        assert abs(corr[uncoupled][1]) < abs(corr[name][1]), corr
    assert summary["years"] == [1991, 2002]

    page = (out / "report.html").read_text()
    assert (out / "report.png").stat().st_size > 10_000
    links = re.findall(r"<td><a href='([^']+)'>([^<]+)</a></td>", page)
    # every number of the table (3 regions x (2 means + 3 lags)) is a link
    assert len(links) == 3 * (2 + len(module["LAGS"]))
    for href, _ in links:
        assert (out / href).is_file(), href

    # the lineage page of the regridded NDVI reaches back to both forest readers and
    # names every step's operator and plugin; its PROV-JSON is beside it
    from minjiang.storage import Catalog, open_store, open_xarray

    catalog = Catalog(open_store(str(tmp_path / "store")))
    ndvi = catalog.get(summary["datasets"]["ndvi_on_sst_grid"])
    lineage = (out / f"lineage-{ndvi.id}.html").read_text()
    for made_by in (
        "array.regrid",
        "array.resample_time",
        "forestry.spectral_index",
        "forestry.raster",
    ):
        assert made_by in lineage, made_by
    prov = json.loads((out / f"prov-{ndvi.id}.json").read_text())
    assert any(ndvi.id in key for key in prov["entity"])

    # aligned: the regridded NDVI sits exactly on the SST grid
    a = open_xarray(catalog.store, ndvi.id)
    b = open_xarray(catalog.store, summary["datasets"]["sst"])
    np.testing.assert_array_equal(a["lat"].values, b["lat"].values)
    np.testing.assert_array_equal(a["lon"].values, b["lon"].values)

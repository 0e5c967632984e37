"""Forestry quick-look reports: the spectral-index map of a user pipeline on the
xarray-spatial Sentinel-2 bands, and the CHM report's contract."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import sentinel2


def test_index_quicklook_from_a_pipeline(rt):
    pytest.importorskip("rasterio")
    from matplotlib.image import imread

    red, nir = sentinel2("red"), sentinel2("nir")
    out = rt.run_pipeline(
        {
            "name": "ndvi_map",
            "inputs": ["red", "nir"],
            "steps": [
                {
                    "id": "red",
                    "reader": "forestry.raster",
                    "paths": "$red",
                    "params": {"bands": ["red"]},
                },
                {
                    "id": "nir",
                    "reader": "forestry.raster",
                    "paths": "$nir",
                    "params": {"bands": ["nir"]},
                },
                {
                    "id": "ndvi",
                    "operator": "forestry.spectral_index",
                    "inputs": {"N": "nir", "R": "red"},
                    "params": {"index": "NDVI"},
                },
            ],
            "report": "forestry.index_quicklook",
        },
        inputs={"red": str(red), "nir": str(nir)},
    )
    assert [p.name for p in out.reports] == ["index.png"]
    img = imread(out.reports[0])
    assert img.shape[0] > 300 and img.shape[1] > 400
    # a map, not a blank canvas: many distinct colours
    assert len(np.unique(img.reshape(-1, img.shape[-1]), axis=0)) > 100


def test_quicklooks_draw_nothing_without_their_arrays(tmp_path):
    from minjiang.plugins.forestry._report import chm_quicklook, index_quicklook

    class Table:  # a result with no arrays
        def to_xarray(self):
            raise ValueError("no arrays")

        def table(self, name):
            raise KeyError(name)

    assert chm_quicklook({"t": Table()}, tmp_path) == []
    assert index_quicklook({"t": Table()}, tmp_path) == []
    assert not list(tmp_path.iterdir())

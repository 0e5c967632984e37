"""examples/forestry_burn_severity.py runs at a small size (smoke test)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "forestry_burn_severity.py"


def test_forestry_burn_severity_example(tmp_path):
    pytest.importorskip("rasterio")
    pytest.importorskip("fiona")
    main = runpy.run_path(str(EXAMPLE))["main"]
    out = main(tmp_path, size=96)
    assert out["high"] > 0 and out["unburned"] > 0
    assert out["nodata"] == 3 * 96  # the nodata strip stays a mask
    assert out["stands"] == 9
    assert out["reports"] == 1
    assert (tmp_path / "store").exists()


CANOPY = EXAMPLE.parent / "forestry_canopy.py"


@pytest.mark.slow
def test_forestry_canopy_example(tmp_path, autzen):
    pytest.importorskip("laspy")
    main = runpy.run_path(str(CANOPY))["main"]
    out = main(tmp_path, laz=autzen, cell=6.0, buffer=16)
    assert out["cells"] == 94 * 197  # autzen at 6 ft: the header box, rounded outwards
    assert out["ground_cells"] > 10_000
    assert 30 < out["chm_max_ft"] < 150  # trees and buildings of a suburb
    assert out["tree_tops"] > 50
    assert out["tallest_top_ft"] <= out["chm_pitfree_max_ft"]
    assert out["coarse_dsm_max_ft"] == out["dsm_max_ft"]  # re-gridded from the table
    assert out["reports"] == 1
    assert (tmp_path / "store").exists()

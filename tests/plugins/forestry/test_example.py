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

"""The medicine example runs at small size and finds the phantom's lesions."""

from __future__ import annotations

import runpy
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "medicine_volumetry.py"


def test_example_runs_small(tmp_path):
    main = runpy.run_path(str(EXAMPLE))["main"]
    out = main(tmp_path)  # the default size: 20 x 48 x 48
    assert out["lesions"] >= 1
    assert out["reports"] == 1
    assert 100 < out["mean_hu"] < 260  # lesions are 220 HU, smoothed into their rims
    assert (tmp_path / "store").is_dir()

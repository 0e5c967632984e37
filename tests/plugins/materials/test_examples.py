"""The materials examples run at small size and give physical answers."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def test_water_example(tmp_path):
    pytest.importorskip("MDAnalysisTests")
    main = runpy.run_path(str(EXAMPLES / "materials_water.py"))["main"]
    out = main(tmp_path)
    assert 2.6 < out["peak_r"] < 3.0  # the O-O first shell of liquid water
    assert out["peak_g"] > 2.0
    assert 3.0 < out["coordination_at_first_minimum"] < 7.0
    assert out["frames"] == 10
    assert out["msd_last"] > 0
    assert (tmp_path / "store").is_dir()


def test_microstructure_example(tmp_path):
    main = runpy.run_path(str(EXAMPLES / "materials_microstructure.py"))["main"]
    out = main(tmp_path)
    assert out["s2_at_zero"] == pytest.approx(out["porosity"])
    assert out["s2_far"] == pytest.approx(out["phi_squared"], abs=0.02)
    assert out["max_model_difference_beyond_first_bin"] < 0.02

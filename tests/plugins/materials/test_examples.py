"""The materials examples run at small size and give physical answers."""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
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
    # the pore space in one step: the same porosity, a pore phase that percolates, and a
    # largest pore as large as the largest ball inscribed in it (scipy's EDT)
    from scipy import ndimage

    assert out["porosity_table"] == out["porosity"]
    assert 0.9 * out["porosity"] < out["percolating_porosity"] <= out["porosity"]
    ex = runpy.run_path(str(EXAMPLES / "materials_microstructure.py"))
    count = round(float(-np.log(0.7) * 48**3 / (4 / 3 * np.pi * 4.0**3)))
    dt = ndimage.distance_transform_edt(ex["spheres"](48, 4.0, count))
    assert out["largest_pore_radius"] == np.floor(dt.max())
    assert 1 <= out["median_pore_radius"] <= out["largest_pore_radius"]


def test_benchmark_script_runs_at_a_tiny_size(tmp_path):
    # benchmarks/materials.py end to end (generate, ingest, g(r), freud, MDAnalysis) on a
    # tiny trajectory, so that the script the figures come from keeps working
    pytest.importorskip("MDAnalysis")
    pytest.importorskip("freud")
    import json
    import subprocess
    import sys

    script = EXAMPLES.parent / "benchmarks" / "materials.py"
    args = ["--atoms", "600", "--frames", "3", "--r-max", "4", "--bins", "20"]
    args += ["--mdanalysis-frames", "2", "--results", str(tmp_path), "--name", "tiny"]
    proc = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads((tmp_path / "tiny.json").read_text())
    assert out["atoms"] == 600 and out["frames"] == 3 and out["mdanalysis_frames"] == 2
    # the same frames through three codes: g(r) agrees after converting normalisations
    assert out["freud_max_abs_dg"] < 5e-3 and out["mdanalysis_max_abs_dg"] < 5e-3
    assert out["mdanalysis_s_scaled"] == pytest.approx(out["mdanalysis_s_per_frame"] * 3)

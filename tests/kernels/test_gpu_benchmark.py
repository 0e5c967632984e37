"""``benchmarks/_gpu.py --dry-run`` runs on machines without a GPU, so it cannot rot.

The dry run executes everything but the CuPy parts: every kernel case on small blocks
through the numba CPU path and the NumPy reference (compared with each other), the
report writing, and the end-to-end run through the runtime on the ``cpu`` backend.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_benchmark_dry_run(tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("OUT", None)
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks._gpu", "--dry-run", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "gpu-all.json").read_text())
    assert report["environment"]["dry_run"] is True
    assert report["device_bandwidth"] == {"skipped": "dry run: no device"}
    assert len(report["kernels"]) >= 10
    for row in report["kernels"]:
        variants = row["variants"]
        assert variants["cpu"]["seconds"] > 0, row["kernel"]
        assert variants["gpu"] == {"device": "gpu", "skipped": "dry run: no CuPy"}
        # the CPU kernel agrees with the NumPy reference on every case
        assert variants["reference"]["max_rel_difference_from_cpu"] <= 1e-6, row["kernel"]
    runs = report["end_to_end"]["runs"]
    assert runs["gpu-pinned"] == runs["gpu-zarr"] == {"skipped": "dry run: no CuPy"}
    for operator in ("array.gaussian", "array.band_math"):
        assert runs["cpu"][operator]["backend"] == "cpu"
        assert runs["cpu"][operator]["timings"]["tasks"] >= 1

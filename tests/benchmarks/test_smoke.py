"""The benchmark harness runs end to end at a tiny size and records every figure.

It runs ``python -m benchmarks`` from the repository root (as ``make bench`` does)
with the in-process minjiang executor, xarray + dask and the I/O floor only: no Ray.
No timing is asserted; the test checks that each figure exists and that every
engine's output was validated against the reference.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENGINES = ("minjiang-local", "xarray-dask", "io-floor")
WORKLOADS = ("w1_band_math", "w2_mean", "w4_gaussian", "w5_label_stats")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    if not (REPO / "benchmarks" / "__main__.py").exists():
        pytest.skip("no benchmarks/ folder in this checkout")
    tmp = tmp_path_factory.mktemp("bench")
    cmd = [
        sys.executable,
        "-m",
        "benchmarks",
        "--size",
        "tiny",
        "--suite",
        "all",
        "--name",
        "smoke",
        "--results",
        str(tmp / "results"),
        "--data-dir",
        str(tmp / "data"),
        "--engines",
        ",".join(ENGINES),
        "--workloads",
        ",".join(WORKLOADS),
        "--chunkings",
        "pencil",
        "--scaling-workloads",
        "w2_mean",
        "--scaling-engines",
        ",".join(ENGINES),
        "--scaling-factors",
        "1,2",
    ]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    path = tmp / "results" / "smoke.json"
    return json.loads(path.read_text()), tmp / "results"


def test_machine_and_versions_recorded(results: tuple[dict, Path]) -> None:
    res, _ = results
    m = res["machine"]
    for key in ("cpu_model", "logical_cores", "ram_bytes", "os"):
        assert m[key], key
    assert res["versions"]["numpy"] and res["versions"]["zarr"]
    assert res["codec"]["source"]
    assert res["stream"]["start"]["numba_triad_gbs"] > 0


def test_every_engine_ran_and_validated(results: tuple[dict, Path]) -> None:
    res, _ = results
    runs = [r for r in res["runs"] if r["suite"] == "workloads"]
    for wl in WORKLOADS:
        for eng in ENGINES:
            mine = [r for r in runs if r["workload"] == wl and r["engine"] == eng]
            assert mine, (wl, eng, res["engines"].get(eng))
            for r in mine:
                assert r["ok"], (wl, eng, r.get("error"), r.get("validation"))
                if eng != "io-floor":
                    assert r["validation"]["ok"] is True, (wl, eng, r["validation"])
    orders = {
        tuple(r["engine"] for r in runs if r["workload"] == "w1_band_math" and r["rep"] == k)
        for k in (0, 1)
    }
    assert len(orders) == 2, "engine order is rotated between repetitions"


def test_summary_has_the_figures(results: tuple[dict, Path]) -> None:
    res, _ = results
    rows = [r for r in res["summary"] if r["suite"] == "workloads"]
    assert {(r["workload"], r["engine"]) for r in rows} == {
        (w, e) for w in WORKLOADS for e in ENGINES
    }
    for r in rows:
        for key in (
            "wall_min_s",
            "wall_median_s",
            "throughput_gbs",
            "cpu_median_s",
            "peak_pss_bytes",
        ):
            assert r[key] is not None and r[key] >= 0, (r["workload"], r["engine"], key)
        assert r["peak_pss_bytes"] > 0
        assert r["x_floor"] is not None and r["x_floor"] > 0  # times the I/O floor
        if r["engine"] != "io-floor":
            assert r["valid"] is True
    mj = [r for r in rows if r["engine"] == "minjiang-local"]
    assert all(r["x_xarray"] is not None for r in mj)
    assert res["headline"] and res["overhead"] and res["scaling"]
    assert {r["factor"] for r in res["scaling"]} == {1, 2}
    assert any(k.get("ok") for k in res["kernels"]), res["kernels"]


def test_the_io_path_is_priced_against_the_floor(results: tuple[dict, Path]) -> None:
    res, out = results
    rows = {
        p["workload"]: p
        for p in res["io_price"]
        if p["engine"] == "minjiang-local" and p["suite"] == "workloads"
    }
    assert set(rows) == set(WORKLOADS)
    for wl, p in rows.items():
        assert p["floor_read_cpu_s_per_gb"] > 0 and p["floor_write_cpu_s_per_gb"] > 0, wl
        assert p["read_cpu_s_per_gb"] > 0 and p["read_x_floor"] > 0, wl
        assert p["decode_amplification"] >= 1.0, wl
    for wl in ("w1_band_math", "w4_gaussian"):  # array outputs: an encode + write price
        assert rows[wl]["write_cpu_s_per_gb"] > 0 and rows[wl]["write_x_floor"] > 0
    steps = [st for o in res["overhead"] for st in o["steps_io"]]
    assert steps and all(st["stages"] for st in steps)
    assert "The I/O path against the floor's price" in (out / "smoke.md").read_text()


def test_report_and_plots_written(results: tuple[dict, Path]) -> None:
    _, out = results
    md = (out / "smoke.md").read_text()
    assert "| W1 |" in md and "I/O floor" in md
    assert (out / "smoke-time-memory.png").stat().st_size > 0
    assert (out / "smoke-scaling.png").exists()


@pytest.mark.ray
@pytest.mark.slow
def test_the_ray_engine_runs_on_a_local_ray_of_its_own(tmp_path: Path) -> None:
    """The minjiang-ray engine starts its own local Ray before the first measured run
    (the executor otherwise connects only on the first task), and its runs validate."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["MINJIANG_CLUSTER_DIR"] = str(tmp_path / "no-cluster")  # never a recorded one
    cmd = [sys.executable, "-m", "benchmarks", "--size", "tiny", "--suite", "workloads"]
    cmd += ["--name", "ray", "--results", str(tmp_path / "results")]
    cmd += ["--data-dir", str(tmp_path / "data"), "--engines", "minjiang-ray", "--no-plots"]
    cmd += ["--workloads", "w2_mean", "--chunkings", "pencil", "--reps", "1", "--cores", "1"]
    proc = subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads((tmp_path / "results" / "ray.json").read_text())
    runs = [r for r in res["runs"] if r["engine"] == "minjiang-ray"]
    assert runs and all(r["ok"] and r["validation"]["ok"] is True for r in runs), runs
    assert res["engines"]["minjiang-ray"]["info"]["cluster"]["nodes"] == 1

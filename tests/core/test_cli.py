"""The command line, through typer's runner (same process, real store)."""

from __future__ import annotations

import json

from minjiang.core.cli import app
from typer.testing import CliRunner

runner = CliRunner(env={"COLUMNS": "200"})


def test_plugins_lists_the_builtin_plugins(tmp_path) -> None:
    out = runner.invoke(app, ["plugins", "--store", str(tmp_path / "s")])
    assert out.exit_code == 0, out.output
    for name in ("medicine", "forestry", "ocean", "materials", "array"):
        assert name in out.output


def test_demo_runs_then_reuses_everything(tmp_path) -> None:
    store, data = str(tmp_path / "store"), str(tmp_path / "data")
    args = ["demo", "--store", store, "--executor", "local", "--years", "2", "--data", data]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "computed" in first.output and "by region" in first.output
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert "steps reused from the catalog" in second.output
    ls = runner.invoke(app, ["catalog", "ls", "--store", store])
    assert "demo/sst-p90" in ls.output
    show = runner.invoke(app, ["catalog", "show", "demo/sst-p90", "--store", store])
    assert json.loads(show.output)["producer"]["operator"] == "array.quantile"
    lineage = runner.invoke(app, ["catalog", "lineage", "demo/sst-p90-by-region", "--store", store])
    assert "demo/sst-p90" in lineage.output and "demo/regions" in lineage.output
    verify = runner.invoke(app, ["verify", "demo/sst-mean", "--store", store])
    assert verify.exit_code == 0 and "ok" in verify.output


def test_plan_shows_tasks_and_reuse(tmp_path) -> None:
    from minjiang.core._demo import DEMO_PIPELINE, make_demo_inputs

    cube, regions = make_demo_inputs(tmp_path / "data", years=1, ny=16, nx=16)
    pipe = tmp_path / "demo.yaml"
    pipe.write_text(DEMO_PIPELINE)
    out = runner.invoke(
        app,
        [
            "plan",
            str(pipe),
            "--store",
            str(tmp_path / "s"),
            "-i",
            f"cube={cube}",
            "-i",
            f"regions={regions}",
        ],
    )
    assert out.exit_code == 0, out.output
    assert "array.quantile" in out.output and "rechunk" in out.output


def test_verify_detects_a_corrupted_chunk(tmp_path) -> None:
    store = tmp_path / "store"
    args = [
        "demo",
        "--store",
        str(store),
        "--executor",
        "local",
        "--years",
        "1",
        "--data",
        str(tmp_path / "d"),
    ]
    assert runner.invoke(app, args).exit_code == 0
    from minjiang.storage import Catalog, open_store

    rec = Catalog(open_store(store)).get("demo/sst-mean")
    array, chunks = next((a, c) for a, c in rec.checksums.items() if a == "mean")
    chunk = store / rec.prefix / "arrays.zarr" / array / next(iter(chunks))
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    out = runner.invoke(app, ["verify", "demo/sst-mean", "--store", str(store)])
    assert out.exit_code == 1
    assert "mismatch" in out.output and rec.id in out.output


def test_typed_errors_are_one_message(tmp_path) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "minjiang.core.cli",
            "catalog",
            "show",
            "nope/none",
            "--store",
            str(tmp_path / "s"),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert "error:" in out.stderr and "Traceback" not in out.stderr

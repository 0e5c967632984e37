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

    # tables are verified too: one byte of a Parquet part of the per-region table
    table = Catalog(open_store(store)).get("demo/sst-p90-by-region")
    assert runner.invoke(app, ["verify", table.id, "--store", str(store)]).exit_code == 0
    part_key = next(iter(next(iter(table.tables.values()))))
    part = store / part_key
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    out = runner.invoke(app, ["verify", table.id, "--store", str(store)])
    assert out.exit_code == 1
    assert "mismatch" in out.output and "part" in out.output

    # and so is the record itself: an edited record is a verification failure
    regions = Catalog(open_store(store)).get("demo/regions")
    record_file = next((store / "catalog" / "records").glob(f"{regions.id}.json"))
    edited = json.loads(record_file.read_text())
    edited["names"] = ["demo/someone-else"]
    record_file.write_text(json.dumps(edited))
    out = runner.invoke(app, ["verify", regions.id, "--store", str(store)])
    assert out.exit_code == 1, out.output
    assert regions.id in out.output


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


# ---------------------------------------------------------------- typed errors: one red line, exit 2
import pytest  # noqa: E402
from minjiang.core.cli import main  # noqa: E402


def _refused(capsys, args: list[str]) -> str:
    with pytest.raises(SystemExit) as stop:
        main(args)
    err = capsys.readouterr().err
    assert stop.value.code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["plan", "missing.yaml"], "does not exist"),
        (["plan", "x" * 300 + ".yaml"], "cannot be read|does not exist"),
        (["plan", "nope.pipeline"], "no pipeline named"),
        (["run", "missing.yaml", "--memory-budget", "0"], "memory"),
        (["run", "missing.yaml", "--memory-budget", "-1"], "memory"),
        (["run", "missing.yaml", "--memory-budget", "NaN"], "memory"),
        (["run", "missing.yaml", "--memory-budget", "12XB"], "units"),
        (["plan", "missing.yaml", "--executor", "dask"], "--executor"),
        (["run", "missing.yaml", "--num-cpus", "0"], "--num-cpus"),
        (["plan", "missing.yaml", "-i", "novalue"], "key=value"),
        (["plan", "missing.yaml", "-i", "x=[unclosed"], "cannot read the value"),
        (["plan", "missing.yaml", "-i", "x=&a [1]"], "anchors"),
        (["plan", "missing.yaml", "-i", "x=1", "-i", "x=2"], "given twice"),
        (["plan", "missing.yaml", "-i", "x={a: 1}"], "must be a path"),
        (["catalog", "show", "--", "[red]x[/] ../../etc"], r"\[red\]x\[/\]"),
        (["catalog", "show", "--", "a" * 3000], "invalid dataset name"),
        (["ingest", "nothing-here.txt"], "no reader recognises"),
        (["ingest", "--reader", "array.zarr", "nothing-here"], "'nothing-here' does not exist"),
        (["ingest", "array.zarr", "a.zarr", "--name", "../x"], "invalid dataset name"),
        (["ingest", "x.zarr", "-p", "a=1", "-p", "a=2"], "given twice"),
        (["demo", "--years", "0", "--executor", "local"], "years"),
        (["demo", "--executor", "local", "--num-cpus", "-3"], "--num-cpus"),
    ],
)
def test_bad_input_is_one_red_line_and_exit_2(tmp_path, monkeypatch, capsys, args, match) -> None:
    import re

    monkeypatch.chdir(tmp_path)
    err = _refused(
        capsys,
        [*args, "--store", str(tmp_path / "s")]
        if "--" not in args
        else [*args[: args.index("--")], "--store", str(tmp_path / "s"), *args[args.index("--") :]],
    )
    assert re.search(match, err), err


def test_an_unknown_report_fails_before_anything_runs(tmp_path, capsys) -> None:
    pipe = tmp_path / "p.yaml"
    pipe.write_text(
        "report: os:system\nsteps:\n  - {id: s, operator: array.reduce, inputs: {x: a}}\n"
    )
    err = _refused(capsys, ["plan", str(pipe), "--store", str(tmp_path / "s")])
    assert "import paths are not accepted" in err


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--memory-budget", "0"], "memory budget"),
        (["--memory-budget", "lots"], "memory size"),
        (["--runtime-env", "{not json"], "not valid JSON"),
        (["--runtime-env", "[1, 2]"], "JSON object"),
        (["--backend", "tpu"], "backend"),
    ],
)
def test_submit_checks_everything_before_contacting_the_cluster(
    tmp_path, monkeypatch, capsys, extra, match
) -> None:
    from minjiang.core import _jobs

    def no_cluster(address: str):
        raise AssertionError("the cluster was contacted")

    monkeypatch.setattr(_jobs, "job_client", no_cluster)
    pipe = tmp_path / "p.yaml"
    pipe.write_text("steps:\n  - {id: s, operator: array.reduce, inputs: {x: a}}\n")
    args = ["submit", str(pipe), "--address", "http://head:8265", "--store", str(tmp_path / "s")]
    assert match in _refused(capsys, [*args, *extra])


@pytest.mark.parametrize(
    "address", ["ftp://head:8265", "head:8265", "http://", "http://h:99999", "http://a b"]
)
def test_submit_refuses_a_bad_address(tmp_path, capsys, address) -> None:
    pipe = tmp_path / "p.yaml"
    pipe.write_text("steps:\n  - {id: s, operator: array.reduce, inputs: {x: a}}\n")
    err = _refused(
        capsys, ["submit", str(pipe), "--address", address, "--store", str(tmp_path / "s")]
    )
    assert "--address" in err


def test_plugins_lists_reports(tmp_path) -> None:
    out = runner.invoke(app, ["plugins", "--store", str(tmp_path / "s")])
    assert out.exit_code == 0, out.output
    assert "ocean.mhw_quicklook" in out.output and "medicine.lesion_quicklook" in out.output


def test_ingest_guesses_the_reader_or_takes_the_named_one(tmp_path, capsys) -> None:
    from minjiang.core._demo import make_demo_inputs

    cube, _ = make_demo_inputs(tmp_path / "data", years=1, ny=8, nx=8)
    store = str(tmp_path / "s")
    # a .zarr folder is claimed by array.zarr and materials.image: name one
    err = _refused(capsys, ["ingest", str(cube), "--store", store])
    assert "several readers" in err and "array.zarr" in err and "materials.image" in err
    named = runner.invoke(
        app, ["ingest", "array.zarr", str(cube), "--name", "t/c", "--store", store]
    )
    assert named.exit_code == 0 and "ingested" in named.output, named.output
    option = runner.invoke(app, ["ingest", "--reader", "array.zarr", str(cube), "--store", store])
    assert option.exit_code == 0 and "reused" in option.output, option.output


def test_plugins_shows_a_reader_and_a_pipeline(tmp_path) -> None:
    store = str(tmp_path / "s")
    out = runner.invoke(app, ["plugins", "--reader", "array.netcdf", "--store", store])
    assert out.exit_code == 0, out.output
    assert "array.netcdf v1 · reader" in out.output and "from plugin array" in out.output
    assert "files ending .nc" in out.output
    out = runner.invoke(app, ["plugins", "--reader", "medicine.nifti", "--store", store])
    assert out.exit_code == 0, out.output
    schema = json.loads(out.output[out.output.index("{") :])
    assert schema["additionalProperties"] is False and schema["properties"]
    out = runner.invoke(app, ["plugins", "--pipeline", "forestry.burn_severity", "--store", store])
    assert out.exit_code == 0, out.output
    pipe = json.loads(out.output[out.output.index("{") :])
    assert pipe["report"] == "forestry.severity_quicklook" and pipe["steps"]
    out = runner.invoke(app, ["plugins", "--pipeline", "nope", "--store", store])
    assert out.exit_code != 0 and "no pipeline named 'nope'" in str(out.exception)

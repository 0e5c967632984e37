"""The ocean plugin as the runtime sees it: registration, contracts, pipeline, example."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from minjiang.core.errors import ContractError, ParameterError

OPERATORS = {
    "ocean.climatology",
    "ocean.anomaly",
    "ocean.marine_heatwaves",
    "ocean.regional_mean",
    "ocean.running_mean",
    "ocean.eof",
    "ocean.eof_gram",
    "ocean.eof_project",
}
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "ocean_marine_heatwaves.py"


def test_plugin_module_is_light() -> None:
    code = (
        "import sys, minjiang.plugins.ocean as o\n"
        "heavy = [m for m in ('numba', 'xarray', 'zarr', 'dask', 'pyarrow', 'netCDF4', 'h5netcdf') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_registered_through_entry_points(runtime) -> None:  # type: ignore[no-untyped-def]
    assert OPERATORS <= set(runtime.operators)
    assert "ocean.netcdf" in runtime.readers
    assert "ocean.mhw_report" in runtime.pipelines
    for name in OPERATORS:
        op = runtime.operators[name]
        assert op.description and op.params is not None
        schema = op.json_schema()
        assert schema["type"] == "object", name
        # every parameter is described to users (`minjiang plugins --operator NAME`)
        assert set(schema["properties"]) == set(op.params.model_fields), name
        for field, spec in schema["properties"].items():
            assert spec.get("description"), f"{name}: parameter {field!r} has no description"


def test_parameters_are_validated(runtime) -> None:  # type: ignore[no-untyped-def]
    clim = runtime.operators["ocean.climatology"]
    with pytest.raises(ParameterError, match="smooth_percentile_width"):
        clim.validate_params({"smooth_percentile_width": 30})
    with pytest.raises(ParameterError, match="windowHalfWidth"):
        clim.validate_params({"windowHalfWidth": 5})
    with pytest.raises(ParameterError, match="frequency"):
        clim.validate_params({"frequency": "weekly"})


def test_contract_errors_name_the_problem(runtime, sst_case: dict) -> None:  # type: ignore[no-untyped-def]
    ds = runtime.ingest("ocean.netcdf", [sst_case["path"]])
    monthly = runtime.run("ocean.climatology", inputs={"sst": ds}, params={"frequency": "monthly"})
    with pytest.raises(ContractError, match="daily climatology"):
        runtime.run(
            "ocean.marine_heatwaves", inputs={"sst": ds, "seas": monthly, "thresh": monthly}
        )
    with pytest.raises(ContractError, match="outside the data"):
        runtime.run(
            "ocean.climatology", inputs={"sst": ds}, params={"climatology_period": [1950, 1980]}
        )
    with pytest.raises(ContractError, match="'thresh'"):
        runtime.run(
            "ocean.anomaly", inputs={"sst": ds, "seas": monthly}, params={"reference": "thresh"}
        )


def test_heatwaves_through_the_runtime_match_heatwave3(runtime, sst_case: dict) -> None:  # type: ignore[no-untyped-def]
    hw = pytest.importorskip("heatwave3")
    stem = sst_case["folder"] / "rt"
    hw.detect3(
        str(sst_case["path"]),
        str(stem),
        ("1983-01-01", "2012-12-31"),
        roundClm=False,
        roundRes=0,
        n_threads=1,
        quiet=True,
    )
    ref = hw.hw3_export(f"{stem}_events.nc")
    ds = runtime.ingest(
        "ocean.netcdf", [sst_case["path"]], params={"chunking": "slabs", "chunk_mib": 0.05}
    )
    clim = runtime.run(
        "ocean.climatology",
        inputs={"sst": ds},
        params={"climatology_period": [1983, 2012], "convention": "heatwaveR"},
    )
    res = runtime.run("ocean.marine_heatwaves", inputs={"sst": ds, "seas": clim, "thresh": clim})
    ev = res.table("events").to_pandas()
    assert len(ev) == len(ref)
    ours = set(
        zip(ev["lat"].round(6), ev["lon"].round(6), ev["date_start"], ev["date_end"], strict=True)
    )
    theirs = set(
        zip(
            ref["lat"].round(6),
            ref["lon"].round(6),
            ref["date_start"].dt.strftime("%Y-%m-%d"),
            ref["date_end"].dt.strftime("%Y-%m-%d"),
            strict=True,
        )
    )
    assert ours == theirs
    grids = res.to_xarray()
    assert grids["count"].dims == ("year", "lat", "lon") and grids.sizes["year"] == 34
    assert int(grids["count"].sum()) == len(ev)
    assert np.nansum(grids["days"].values) == ev["duration"].sum()  # every event day in one year
    one = ev[(ev["y"] == 1) & (ev["x"] == 2)]
    assert one["event_no"].tolist() == list(range(1, len(one) + 1))


def test_mhw_report_pipeline(runtime, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(EXAMPLE.parent))
    try:
        import ocean_marine_heatwaves as example
    finally:
        sys.path.pop(0)
    path = example.make_sst(tmp_path / "sst.nc", ny=2, nx=3, years=12)
    out = runtime.run_pipeline("ocean.mhw_report", inputs={"files": [str(path)]})
    assert set(out.results) == {"ingest", "climatology", "anomaly", "heatwaves", "index"}
    assert len(out.reports) == 1 and out.reports[0].stat().st_size > 10_000
    assert out.reports[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    index = out.results["index"].to_xarray()["mean"]
    assert index.dims == ("region", "time") and index.attrs["regions"] == ["global"]
    assert abs(float(index.mean())) < 0.2  # anomalies from the same years average near zero
    events = out.results["heatwaves"].table("events").to_pandas()
    assert (events["duration"] >= 5).all() and set(events["category"]) <= {1, 2, 3, 4}


def test_example_runs(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE),
            "--ny",
            "2",
            "--nx",
            "3",
            "--years",
            "10",
            "--store",
            str(tmp_path / "store"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "marine heatwaves in 6 cells" in out.stdout and "quicklook.png" in out.stdout

"""End to end on the local executor: memoization, lineage, interop, composites."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from minjiang.core.errors import ContractError, DatasetNotFoundError, MemoryBudgetError

from tests._data import ingest_array


@pytest.fixture
def cube(runtime, tmp_path, rng):
    x = rng.normal(size=(20, 12, 10)).astype(np.float32)
    return x, ingest_array(runtime, tmp_path, "test/cube", x, ("time", "y", "x"), (5, 12, 10))


def test_run_twice_reuses(runtime, cube) -> None:
    x, src = cube
    first = runtime.run(
        "array.reduce", inputs={"x": src}, params={"dims": ["time"], "stat": "max"}, name="test/max"
    )
    assert not first.reused
    second = runtime.run(
        "array.reduce", inputs={"x": "test/cube"}, params={"dims": ["time"], "stat": "max"}
    )
    assert second.reused and second.id == first.id
    kinds = [e.kind for e in runtime.last_run_events]
    assert "step_reused" in kinds and "task_finished" not in kinds
    np.testing.assert_array_equal(first.to_xarray()["max"].values, x.max(axis=0))


def test_ingest_is_content_addressed(runtime, tmp_path, rng) -> None:
    x = rng.normal(size=(4, 4))
    a = ingest_array(runtime, tmp_path, "test/a", x, ("y", "x"), (2, 2))
    b = ingest_array(runtime, tmp_path / "..", "test/b", x, ("y", "x"), (2, 2))
    assert a.id == b.id  # same bytes, same dataset
    c = ingest_array(runtime, tmp_path, "test/c", x + 1, ("y", "x"), (2, 2))
    assert c.id != a.id


def test_lineage_up_and_down(runtime, cube) -> None:
    _, src = cube
    sm = runtime.run("array.gaussian", inputs={"x": src}, params={"sigma": 1.0})
    mean = runtime.run("array.reduce", inputs={"x": sm}, params={"dims": ["time"]})
    up = runtime.catalog.lineage(mean.id, direction="up")
    assert {src.id, sm.id, mean.id} <= set(up.nodes)
    assert (sm.id, mean.id, "x") in up.edges
    down = runtime.catalog.lineage(src.id, direction="down")
    assert mean.id in down.nodes
    rec = mean.record
    assert rec.producer["operator"] == "array.reduce" and rec.inputs == {"x": sm.id}
    assert rec.software["minjiang"] and rec.host["hostname"] and rec.timings["tasks"] >= 1
    prov = runtime.catalog.to_prov(mean.id)
    assert prov and "entity" in prov


def test_results_open_without_minjiang(runtime, cube, tmp_path) -> None:
    _, src = cube
    labels = np.repeat(np.arange(1, 4), 40)[: 12 * 10].reshape(12, 10).astype(np.int32)
    lab = ingest_array(runtime, tmp_path, "test/labels", labels, ("y", "x"), (6, 5), var="labels")
    mean = runtime.run("array.reduce", inputs={"x": src}, params={"dims": ["time"]})
    stats = runtime.run("array.label_stats", inputs={"values": mean, "labels": lab})
    root = runtime.store.local_path("")
    code = (
        "import sys, xarray as xr, pyarrow.parquet as pq\n"
        f"ds = xr.open_zarr({str(root / mean.record.prefix / 'arrays.zarr')!r})\n"
        "assert ds['mean'].shape == (12, 10), ds\n"
        f"t = pq.read_table({str(root / stats.record.prefix / 'tables' / 'stats')!r})\n"
        "assert t.num_rows == 3 and 'mean' in t.column_names\n"
        "assert not any(m.startswith('minjiang') for m in sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_doy_climatology_and_anomaly(runtime, tmp_path, rng) -> None:
    import pandas as pd

    time = pd.date_range("2019-12-25", periods=800, freq="D")
    x = rng.normal(size=(800, 3, 4)).astype(np.float32)
    src = ingest_array(
        runtime,
        tmp_path,
        "test/daily",
        x,
        ("time", "y", "x"),
        (100, 3, 4),
        coords={"time": ("time", time)},
    )
    clim = runtime.run("array.doy_climatology", inputs={"x": src})
    anom = runtime.run("array.doy_anomaly", inputs={"x": src, "climatology": clim})
    doy = time.day_of_year.to_numpy()
    want = np.stack(
        [
            np.nanmean(x[doy == d], axis=0) if (doy == d).any() else np.full((3, 4), np.nan)
            for d in range(1, 367)
        ]
    )
    np.testing.assert_allclose(
        clim.to_xarray()["climatology"].values, want, rtol=1e-5, equal_nan=True
    )
    np.testing.assert_allclose(
        anom.to_xarray()["anomaly"].values, x - want[doy - 1], rtol=1e-5, atol=1e-5
    )
    # one pass, no stored climatology: the same bits as the two steps
    fused = runtime.run("array.deseason", inputs={"x": src})
    np.testing.assert_array_equal(
        fused.to_xarray()["anomaly"].values, anom.to_xarray()["anomaly"].values
    )
    # and against xarray's own groupby, independently
    import xarray as xr

    da = xr.DataArray(x, dims=("time", "y", "x"), coords={"time": time})
    ref = da.groupby("time.dayofyear") - da.groupby("time.dayofyear").mean("time")
    np.testing.assert_allclose(fused.to_xarray()["anomaly"].values, ref.values, atol=1e-5)


def test_band_math(runtime, tmp_path, rng) -> None:
    a = rng.random((6, 8)).astype(np.float32) + 0.1
    b = rng.random((6, 8)).astype(np.float32) + 0.1
    ra = ingest_array(runtime, tmp_path, "test/a", a, ("y", "x"), (3, 4))
    rb = ingest_array(runtime, tmp_path, "test/b", b, ("y", "x"), (2, 8))
    res = runtime.run(
        "array.band_math", inputs={"a": ra, "b": rb}, params={"expression": "(a - b) / (a + b)"}
    )
    np.testing.assert_allclose(res.to_xarray()["result"].values, (a - b) / (a + b), rtol=1e-6)
    with pytest.raises(ContractError, match="c"):
        runtime.plan(
            {
                "steps": [
                    {
                        "id": "s",
                        "operator": "array.band_math",
                        "inputs": {"a": ra.id},
                        "params": {"expression": "a + c"},
                    }
                ]
            }
        )


def test_over_budget_plan_fails_before_running(runtime, cube) -> None:
    from minjiang.core._runtime import Runtime

    _, src = cube
    tiny = Runtime(store=runtime.store.url, executor="local", memory_budget="1KiB")
    with pytest.raises(MemoryBudgetError, match=r"KiB.*--memory-budget"):
        tiny.plan(
            {
                "steps": [
                    {
                        "id": "g",
                        "operator": "array.gaussian",
                        "inputs": {"x": src.id},
                        "params": {"sigma": 1},
                    }
                ]
            }
        )


def test_unknown_dataset_is_a_typed_error(runtime) -> None:
    with pytest.raises(DatasetNotFoundError, match="nope"):
        runtime.run("array.reduce", inputs={"x": "test/nope"}, params={"dims": ["time"]})


def test_reuse_false_recomputes_every_time(runtime, cube) -> None:
    _, src = cube
    params = {"dims": ["time"], "stat": "mean"}
    first = runtime.run("array.reduce", inputs={"x": src}, params=params)
    for _ in range(2):
        again = runtime.run("array.reduce", inputs={"x": src}, params=params, reuse=False)
        kinds = [e.kind for e in runtime.last_run_events]
        assert again.id == first.id and not again.reused
        assert kinds.count("task_finished") >= 1 and "task_skipped" not in kinds
    assert not runtime.store.list(f"datasets/{first.id}/_tasks")


def test_gaussian_keeps_the_array_name(runtime, cube) -> None:
    _, src = cube
    res = runtime.run("array.gaussian", inputs={"x": src}, params={"sigma": 1})
    assert list(res.to_xarray().data_vars) == ["data"]


def test_netcdf_ingest_concatenates_and_rejects_broken_files(runtime, tmp_path, rng) -> None:
    import pandas as pd
    import xarray as xr
    from minjiang.core.errors import ReaderError

    files = []
    for year in (2020, 2021):
        time = pd.date_range(f"{year}-01-01", periods=10, freq="D")
        ds = xr.Dataset(
            {
                "sst": (
                    ("time", "lat", "lon"),
                    rng.normal(size=(10, 3, 4)).astype(np.float32),
                    {"units": "degC"},
                )
            },
            coords={"time": time, "lat": [0.0, 1, 2], "lon": [0.0, 1, 2, 3]},
        )
        files.append(tmp_path / f"sst_{year}.nc")
        ds.to_netcdf(files[-1], engine="netcdf4")
    res = runtime.ingest("array.netcdf", files, name="test/sst")
    out = res.to_xarray()
    assert out.sizes["time"] == 20 and out["sst"].attrs["units"] == "degC"
    assert str(out.time.values[10])[:10] == "2021-01-01"
    assert res.record.producer["sources"][0]["name"] == "sst_2020.nc"
    broken = tmp_path / "broken.nc"
    broken.write_bytes(files[0].read_bytes()[:200])
    with pytest.raises(ReaderError, match=r"broken\.nc"):
        runtime.ingest("array.netcdf", [broken])


def test_open_by_name(runtime, cube) -> None:
    import minjiang as mj

    x, _ = cube
    ds = mj.open("test/cube", store=runtime.store.url)
    np.testing.assert_array_equal(ds["data"].values, x)


def test_gpu_task_over_free_device_memory_fails_before_running(runtime, cube, monkeypatch) -> None:
    from minjiang.core._devices import DeviceReport
    from minjiang.core._executors import LocalExecutor

    _, src = cube
    device = DeviceReport(node="n1", model="a device with 1 KiB free", memory_free=1024)
    monkeypatch.setattr(LocalExecutor, "gpus", lambda self: 1.0)
    monkeypatch.setattr(LocalExecutor, "gpu_devices", lambda self: [device])
    events = []
    runtime.subscribe(events.append)
    with pytest.raises(MemoryBudgetError, match=r"GPU memory.*1\.0 KiB free"):
        runtime.run("array.gaussian", inputs={"x": src}, params={"sigma": 1}, backend="gpu")
    assert not [e for e in events if e.kind == "task_finished"]


@pytest.mark.parametrize(("free", "share"), [(64 << 30, 0.25), (0, 1.0)])
def test_small_gpu_tasks_share_a_device(runtime, cube, monkeypatch, free, share) -> None:
    """A GPU step's tasks ask for 1/n of a GPU when n of them fit the device's free
    memory (at most 4), a whole GPU when the free memory is unknown."""
    from minjiang.core._devices import DeviceReport
    from minjiang.core._executors import LocalExecutor

    _, src = cube
    device = DeviceReport(node="n1", model="a test device", memory_free=free)
    monkeypatch.setattr(LocalExecutor, "gpus", lambda self: 1.0)
    monkeypatch.setattr(LocalExecutor, "gpu_devices", lambda self: [device])
    pipe = {"steps": [{"id": "s", "operator": "array.gaussian", "inputs": {"x": src.id}}]}
    pipe["steps"][0]["params"] = {"sigma": 1}
    pipe["backend"] = "gpu"
    plan = runtime.plan(pipe)
    tasks = [t for s in plan.steps[-1].stages for t in s.tasks]
    assert plan.steps[-1].backend == "gpu"
    assert tasks and {t.gpus for t in tasks} == {share}


@pytest.mark.parametrize(
    ("budget", "note"), [("1GiB", "without rechunking"), ("160KiB", "through an intermediate Zarr")]
)
def test_full_axis_reads_directly_or_rechunks(runtime, tmp_path, rng, budget, note) -> None:
    from minjiang.core._runtime import Runtime

    x = rng.normal(size=(60, 12, 16))
    rt = Runtime(store=runtime.store.url, executor="local", memory_budget=budget)
    src = ingest_array(rt, tmp_path, "test/slabs", x, ("time", "y", "x"), (5, 12, 16))
    res = rt.run("array.quantile", inputs={"x": src}, params={"dim": "time", "q": 0.25})
    assert any(note in n for n in res.record.producer["notes"]), res.record.producer["notes"]
    np.testing.assert_allclose(
        res.to_xarray()["quantile"].values, np.quantile(x, 0.25, axis=0), rtol=1e-12
    )


def test_demo_plan_has_one_writer_per_chunk(runtime, tmp_path) -> None:
    """Every pattern of the demo (map + halo, reduce, full_axis, aggregate), split into
    many tasks by a small budget, writes each output chunk from one task."""
    from minjiang.core._demo import DEMO_PIPELINE, make_demo_inputs
    from minjiang.core._runtime import Runtime
    from minjiang.core.testing import assert_one_writer_per_chunk

    cube, regions = make_demo_inputs(tmp_path / "data", years=2, ny=24, nx=24)
    pipe = tmp_path / "demo.yaml"
    pipe.write_text(DEMO_PIPELINE)
    with Runtime(store=runtime.store.url, executor="local", memory_budget="1MiB") as rt:
        plan = rt.plan(pipe, inputs={"cube": str(cube), "regions": str(regions)})
        split = [s.step for s in plan.steps if getattr(s, "n_tasks", 0) > 2]
        assert split == ["smooth", "mean", "p90"], split  # map, reduce, rechunked full_axis
        assert_one_writer_per_chunk(plan)


def test_a_costly_kernel_is_planned_over_both_workers(runtime, tmp_path, monkeypatch) -> None:
    """array.gaussian projects its kernel time, so on two workers the planner splits a
    pencil cube although each task then decodes neighbouring chunks for its halo."""
    from minjiang.core._executors import LocalExecutor

    x = np.zeros((365, 96, 160), dtype=np.float32)  # 22 MB: big enough to be worth splitting
    src = ingest_array(runtime, tmp_path, "test/pencils", x, ("time", "y", "x"), (365, 32, 32))
    monkeypatch.setattr(LocalExecutor, "workers", lambda self: 2)
    step = {
        "id": "g",
        "operator": "array.gaussian",
        "inputs": {"x": src.id},
        "params": {"sigma": 2},
    }
    plan = runtime.plan({"steps": [step]})
    (g,) = plan.steps
    assert g.n_tasks >= 2
    assert g.block.decode_amplification > 1.0  # the halo decode it accepted for that


@pytest.mark.parametrize("op", ["array.doy_climatology", "array.deseason"])
def test_day_of_year_operators_need_time_first(runtime, tmp_path, rng, op) -> None:
    from minjiang.core.errors import ContractError

    x = rng.normal(size=(3, 4, 5)).astype(np.float32)
    src = ingest_array(runtime, tmp_path, "test/notime", x, ("y", "x", "time"), (3, 4, 5))
    with pytest.raises(ContractError, match=rf"{op}: input dims \('y', 'x', 'time'\) must start"):
        runtime.run(op, inputs={"x": src})


def test_a_run_reads_the_records_stored_when_it_begins(tmp_path, rng) -> None:
    """A process that outlives a run (a notebook, the run service) reads the catalog
    as it is when its next run begins: here another process removed the store and
    published the same dataset again (a record with other timings) in between."""
    import json
    import shutil

    import minjiang as mj
    from minjiang.storage._catalog import load_record

    x = rng.normal(size=(6, 4, 4)).astype(np.float32)
    params = {"dims": ["time"], "stat": "max"}
    store = tmp_path / "store"
    rt = mj.Runtime(store=store, executor="local", memory_budget="1GiB")
    src = ingest_array(rt, tmp_path, "test/cube", x, ("time", "y", "x"), (3, 4, 4))
    rt.run("array.reduce", inputs={"x": src}, params=params)
    cached = load_record(rt.store, src.id).digest
    shutil.rmtree(store)
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "again").mkdir()
    script = f"""
import numpy as np, minjiang as mj
from pathlib import Path
from tests._data import ingest_array
rt = mj.Runtime(store={str(store)!r}, executor="local", memory_budget="1GiB")
x = np.load({str(tmp_path / "x.npy")!r})
ingest_array(rt, Path({str(tmp_path / "again")!r}), "test/cube", x, ("time", "y", "x"), (3, 4, 4))
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    # the file itself, read without going through (and refreshing) the cache
    stored = json.loads((store / "catalog" / "records" / f"{src.id}.json").read_text())
    assert stored["digest"] != cached  # the same dataset, published again
    assert load_record(rt.store, src.id).digest == cached  # what this process holds
    again = rt.run("array.reduce", inputs={"x": "test/cube"}, params=params)
    assert not again.reused  # the new store did not have it
    assert load_record(rt.store, src.id).digest == stored["digest"]
    np.testing.assert_array_equal(again.to_xarray()["max"].values, x.max(axis=0))
    rt.close()

"""Backend selection at plan time: ``--backend gpu`` without a GPU, ``auto`` falling back.

A tiny plugin registers ``gputest.scale``, whose operator declares
``backends=("cpu", "gpu")`` and whose kernel records the backend of every block it
runs, and ``gputest.cpu_only`` with the default CPU backend. The runtime is the
``runtime`` fixture of ``minjiang.core.testing`` (local executor).

* ``backend="gpu"`` where the executor has no GPU fails at plan time, before any task
  runs and before anything is written, with :class:`BackendUnavailableError`.
* ``auto`` runs on the CPU and records ``producer.backend == "cpu"``; when CuPy is
  installed but no GPU is there, it says so with :class:`BackendFallbackWarning`.
* On a machine with a GPU (``gpu`` marker) the same operator runs on the GPU, with
  CuPy blocks, and the record says ``"gpu"``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from minjiang.core import ArrayOutput, Input, Map, Operator, hookimpl
from minjiang.core.errors import BackendFallbackWarning, BackendUnavailableError
from minjiang.core.testing import tmp_plugin

from tests._data import ingest_array

#: (backend of the task, array module of the block) for every block the kernel ran
CALLS: list[tuple[str, str]] = []


def scale_kernel(arrays: dict[str, Any], params: Any, ctx: Any) -> dict[str, Any]:
    """Twice the input; records where it ran."""
    x = arrays["x"]
    CALLS.append((ctx.backend, type(x).__module__.split(".", 1)[0]))
    return {"y": x * 2.0}


class DualBackendPlugin:
    """``gputest.scale`` (cpu and gpu) and ``gputest.cpu_only``."""

    @hookimpl
    def minjiang_register_operators(self) -> list[Operator]:
        return [
            Operator(
                name="gputest.scale",
                version="1",
                inputs=(Input("x", dtypes=("f",)),),
                outputs=(ArrayOutput("y"),),
                pattern=Map(scale_kernel),
                backends=("cpu", "gpu"),
            ),
            Operator(
                name="gputest.cpu_only",
                version="1",
                inputs=(Input("x", dtypes=("f",)),),
                outputs=(ArrayOutput("y"),),
                pattern=Map(scale_kernel),
            ),
        ]


def _executor_has_gpu(runtime: Any) -> bool:
    return runtime.executor.gpus() > 0


@pytest.fixture
def plugged(runtime, tmp_path):
    """The runtime with the test plugin and a small ingested cube ``x``."""
    values = np.arange(48, dtype=np.float32).reshape(4, 3, 4)
    source = ingest_array(runtime, tmp_path, "gputest/x", values, ("t", "y", "x"), (2, 3, 4))
    CALLS.clear()
    with tmp_plugin(runtime, DualBackendPlugin(), name="gputest"):
        yield runtime, source, values


def _records_of(runtime: Any, operator: str) -> list[Any]:
    return runtime.catalog.list(operator=operator, include_hidden=True)


@pytest.mark.parametrize("where", ["step", "pipeline", "runtime"])
def test_gpu_without_a_gpu_fails_before_any_task(plugged, minjiang_store, where):
    runtime, source, _ = plugged
    if _executor_has_gpu(runtime):
        pytest.skip("this machine has a GPU: see test_gpu_backend_runs_on_the_gpu")
    from minjiang.core import Pipeline, Runtime, Step

    step = Step(id="scale", operator="gputest.scale", inputs={"x": source.id})
    with pytest.raises(BackendUnavailableError, match="backend 'gpu' was asked") as info:
        if where == "step":  # a step's own `backend: gpu`
            runtime.run("gputest.scale", inputs={"x": source}, backend="gpu")
        elif where == "pipeline":  # a pipeline's `backend: gpu`
            runtime.run_pipeline(Pipeline(steps=[step], backend="gpu"))
        else:  # Runtime(backend="gpu"), as `minjiang run --backend gpu` makes it
            with Runtime(
                store=minjiang_store,
                executor="local",
                backend="gpu",
                plugins=[DualBackendPlugin()],
                memory_budget="2GiB",
            ) as rt:
                rt.run_pipeline(Pipeline(steps=[step]))
    assert "--backend auto" in str(info.value)  # the message names the fix
    assert CALLS == []  # planning failed: no task ran
    assert _records_of(runtime, "gputest.scale") == []
    assert not [k for k in runtime.store.list("datasets") if "/_tasks/" in k]  # no manifest


def test_gpu_for_an_operator_without_gpu_kernels_is_refused(plugged):
    runtime, source, _ = plugged
    with pytest.raises(BackendUnavailableError, match="has no GPU kernel"):
        runtime.run("gputest.cpu_only", inputs={"x": source}, backend="gpu")
    assert CALLS == []


def test_auto_runs_on_the_cpu_and_records_it(plugged, monkeypatch):
    runtime, source, values = plugged
    if _executor_has_gpu(runtime):
        pytest.skip("this machine has a GPU: auto picks it")
    from minjiang.core import _runtime

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = runtime.run("gputest.scale", inputs={"x": source})
    fallback = [w for w in caught if issubclass(w.category, BackendFallbackWarning)]
    # the warning is for "CuPy is installed but there is no GPU"; without CuPy auto is quiet
    assert bool(fallback) == _runtime._cupy_installed()
    assert result.record.producer["backend"] == "cpu"
    assert CALLS and set(CALLS) == {("cpu", "numpy")}
    np.testing.assert_array_equal(result.to_xarray()["y"].values, values * 2.0)

    # CuPy installed but no GPU: the fallback is announced, and still recorded as cpu
    monkeypatch.setattr(_runtime, "_cupy_installed", lambda: True)
    CALLS.clear()
    with pytest.warns(BackendFallbackWarning, match="executor has no GPU: ran on the CPU"):
        again = runtime.run("gputest.scale", inputs={"x": source}, reuse=False)
    assert again.record.producer["backend"] == "cpu"
    assert set(CALLS) == {("cpu", "numpy")}
    # the fallback is a note of the step, which its record keeps (the record of this
    # content was written by the first run: records are immutable); a reused step
    # keeps the backend it was computed on and plans no fallback
    step = {"id": "s", "operator": "gputest.scale", "inputs": {"x": source.id}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reused = runtime.plan({"steps": [step]})
    assert reused.steps[-1].reused and reused.steps[-1].backend == "cpu"
    with pytest.warns(BackendFallbackWarning):
        plan = runtime.plan({"steps": [step]}, reuse=False)
    assert any(n.startswith("BackendFallbackWarning") for n in plan.steps[-1].notes)


def test_a_gpu_no_task_can_use_is_no_gpu(plugged, monkeypatch):
    """An executor that offers a GPU its tasks cannot use (no CuPy, no driver...): the
    device probe says why, ``gpu`` is refused with that reason, ``auto`` falls back."""
    runtime, source, values = plugged
    if _executor_has_gpu(runtime):
        pytest.skip("this machine has a usable GPU")
    from minjiang.core._executors import LocalExecutor

    monkeypatch.setattr(LocalExecutor, "gpus", lambda self: 1.0)  # offered, not usable
    with pytest.raises(BackendUnavailableError, match="no GPU of the cluster is usable") as info:
        runtime.run("gputest.scale", inputs={"x": source}, backend="gpu")
    assert "CuPy is not importable" in str(info.value) or "CUDA" in str(info.value)
    assert CALLS == []
    with pytest.warns(BackendFallbackWarning, match="no GPU of the cluster is usable"):
        result = runtime.run("gputest.scale", inputs={"x": source})
    assert result.record.producer["backend"] == "cpu"
    assert "devices" not in result.record.producer
    assert any("usable" in n for n in result.record.producer["notes"])
    np.testing.assert_array_equal(result.to_xarray()["y"].values, values * 2.0)


def test_cpu_is_never_the_gpu(plugged):
    runtime, source, _ = plugged
    result = runtime.run("gputest.scale", inputs={"x": source}, backend="cpu")
    assert result.record.producer["backend"] == "cpu"
    assert set(CALLS) == {("cpu", "numpy")}


def test_generic_operators_with_gpu_kernels_declare_them(runtime):
    for name in (
        "array.band_math",
        "array.gaussian",
        "array.reduce",
        "array.quantile",
        "array.doy_climatology",
        "array.doy_anomaly",
        "array.deseason",
        "array.label_stats",
    ):
        assert runtime.operators[name].backends == ("cpu", "gpu"), name


@pytest.mark.gpu
def test_gpu_backend_runs_on_the_gpu(plugged):
    runtime, source, values = plugged
    if not _executor_has_gpu(runtime):
        pytest.skip("no GPU for the local executor")
    result = runtime.run("gputest.scale", inputs={"x": source}, backend="gpu")
    assert result.record.producer["backend"] == "gpu"
    assert CALLS and set(CALLS) == {("gpu", "cupy")}
    np.testing.assert_array_equal(result.to_xarray()["y"].values, values * 2.0)
    # lineage: the device model and the CuPy/CUDA versions the tasks ran with
    import cupy

    (device,) = result.record.producer["devices"]
    assert device["model"] and device["cupy"] == cupy.__version__
    assert device["cuda_runtime"].count(".") == 1 and device["cuda_driver"]
    assert result.record.producer["gpu_read"] == "pinned"


@pytest.mark.gpu
@pytest.mark.parametrize("gpu_read", ["pinned", "zarr"])
def test_both_device_reads_equal_the_cpu(runtime, tmp_path, gpu_read):
    """A multi-task GPU step with halos, inputs read to the device either way, gives the
    CPU's answer (within the Gaussian's declared tolerance)."""
    if not _executor_has_gpu(runtime):
        pytest.skip("no GPU for the local executor")
    from minjiang.core import Runtime

    rng = np.random.default_rng(3)
    values = rng.normal(size=(24, 40, 36)).astype(np.float32)
    dims, chunks = ("t", "y", "x"), (5, 16, 12)
    source = ingest_array(runtime, tmp_path / "cpu", "gputest/cube", values, dims, chunks)
    params = {"sigma": 1.5}
    cpu = runtime.run("array.gaussian", inputs={"x": source}, params=params, backend="cpu")
    # a store of its own: the same content in one store would be reused, not recomputed
    with Runtime(
        store=tmp_path / "gpu-store", executor="local", memory_budget="400KiB", gpu_read=gpu_read
    ) as rt:
        source = ingest_array(rt, tmp_path / "gpu", "gputest/cube", values, dims, chunks)
        gpu = rt.run("array.gaussian", inputs={"x": source}, params=params, backend="gpu")
        tasks = [e.task for e in rt.last_run_events if e.kind == "task_finished" and e.task]
        assert len(tasks) > 1 and all(t.backend == "gpu" and t.device["model"] for t in tasks)
        assert gpu.id == cpu.id  # the backend is not part of the content
        assert gpu.record.producer["backend"] == "gpu"
        assert gpu.record.producer["gpu_read"] == gpu_read
        np.testing.assert_allclose(
            gpu.to_xarray()["data"].values,
            cpu.to_xarray()["data"].values,
            rtol=1e-5,
            atol=1e-5,
        )

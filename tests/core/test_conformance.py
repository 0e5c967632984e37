"""The operator conformance base class (``minjiang.core.testing.OperatorConformance``),
applied to built-in operators and to operators of a plugin that is not installed.

* ``array.gaussian`` against ``scipy.ndimage.gaussian_filter``, with chunks smaller
  than its halo; ``array.band_math`` against NumPy; ``ocean.running_mean`` (a full-axis
  operator: the time axis is rechunked whole) against pandas' rolling mean;
* an uninstalled plugin (this module) registered through ``plugins``;
* a kernel off by a small amount fails the check, naming the operator and output;
* a numba.cuda kernel runs under numba's CUDA simulator (a subprocess with
  ``NUMBA_ENABLE_CUDASIM=1``), and its gpu case skips where there is no device.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import xarray as xr
from minjiang.core import ArrayOutput, Input, Map, Operator, hookimpl
from minjiang.core.testing import OperatorConformance, conformance_chunks
from numba import cuda
from pydantic import BaseModel, ConfigDict

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- built-in operators
class TestGaussianConformance(OperatorConformance):
    operator = "array.gaussian"
    params: ClassVar[dict[str, Any]] = {"sigma": 1.5, "mode": "reflect"}
    # halo 6 cells: chunks of 2 x 3 make every task read across several chunks
    chunkings = ("whole", "uneven", {"lat": 2, "lon": 3})

    def make_inputs(self, rng):
        values = rng.normal(size=(13, 17))
        values[4, 9] = np.nan  # NaN is data: it spreads over the kernel's footprint
        return {"x": (("lat", "lon"), values)}

    def reference(self, inputs, params):
        from scipy.ndimage import gaussian_filter

        x = inputs["x"].values
        return {"x": gaussian_filter(x, params.sigma, mode=params.mode, truncate=params.truncate)}


class TestBandMathConformance(OperatorConformance):
    operator = "array.band_math"
    params: ClassVar[dict[str, Any]] = {"expression": "(a - b) / (a + b)", "output": "ndvi"}

    def make_inputs(self, rng):
        a = rng.uniform(0.1, 1.0, size=(9, 11)).astype(np.float32)
        b = rng.uniform(0.1, 1.0, size=(9, 11)).astype(np.float32)
        return {"a": (("y", "x"), a), "b": (("y", "x"), b)}

    def reference(self, inputs, params):
        a, b = inputs["a"].values, inputs["b"].values
        return {"ndvi": (a - b) / (a + b)}


class TestRunningMeanConformance(OperatorConformance):
    operator = "ocean.running_mean"
    params: ClassVar[dict[str, Any]] = {"window": 5}

    def make_inputs(self, rng):
        sst = rng.normal(20, 2, size=(23, 4, 5))
        sst[7, 1, 2] = np.nan
        time = np.arange("2000-01", "2001-12", dtype="datetime64[M]").astype("datetime64[ns]")
        return xr.Dataset({"x": (("time", "lat", "lon"), sst)}, coords={"time": time})

    def reference(self, inputs, params):
        x = inputs["x"]
        flat = x.values.reshape(x.shape[0], -1)
        import pandas as pd

        rolled = pd.DataFrame(flat).rolling(params.window, center=True).mean().to_numpy()
        return {"running_mean": rolled.reshape(x.shape)}


# ---------------------------------------------------------------- a plugin of our own
class ScaleParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    factor: float = 2.0


def scale_kernel(arrays, params: ScaleParams, ctx):
    x = arrays["x"]
    if ctx.backend == "gpu":
        return {"y": _scale_on_device(x, params.factor)}
    return {"y": x * params.factor}


def off_by_a_little_kernel(arrays, params: ScaleParams, ctx):
    # wrong by 1e-4 relative: well inside what a plot shows, far outside float64 rounding
    return {"y": arrays["x"] * params.factor * (1 + 1e-4)}


@cuda.jit
def _scale_cells(src, out, k):
    i = cuda.grid(1)
    if i < src.size:
        out[i] = src[i] * k


def _scale_on_device(x, factor):
    """numba.cuda: one thread per cell (runs in numba's simulator without a GPU)."""
    flat = np.ascontiguousarray(x).ravel()
    src = cuda.to_device(flat)
    out = cuda.device_array_like(src)
    threads = 64
    _scale_cells[(flat.size + threads - 1) // threads, threads](src, out, factor)
    return out.copy_to_host().reshape(x.shape)


SCALE = Operator(
    name="conformance.scale",
    version="1",
    inputs=(Input("x", dtypes=("f",)),),
    outputs=(ArrayOutput("y"),),
    pattern=Map(scale_kernel),
    params=ScaleParams,
    backends=("cpu", "gpu"),
)
OFF_BY_A_LITTLE = Operator(
    name="conformance.off_by_a_little",
    version="1",
    inputs=(Input("x", dtypes=("f",)),),
    outputs=(ArrayOutput("y"),),
    pattern=Map(off_by_a_little_kernel),
    params=ScaleParams,
)


@hookimpl
def minjiang_register_operators():
    return [SCALE, OFF_BY_A_LITTLE]


class _ScaleChecks(OperatorConformance):
    operator = "conformance.scale"
    params: ClassVar[dict[str, Any]] = {"factor": 3.0}
    plugins = (sys.modules[__name__],)

    def make_inputs(self, rng):
        return {"x": (("t", "row", "col"), rng.normal(size=(5, 7, 6)))}

    def reference(self, inputs, params):
        return {"y": inputs["x"].values * params.factor}


class TestScaleConformance(_ScaleChecks):
    """An uninstalled plugin's operator on cpu, and (numba.cuda) on the simulator."""


class OffByALittle(_ScaleChecks):
    operator = "conformance.off_by_a_little"


def test_a_kernel_off_by_a_little_fails(runtime) -> None:
    with pytest.raises(AssertionError, match=r"conformance.off_by_a_little on cpu.*output 'y'"):
        OffByALittle().assert_conforms(runtime, chunking="uneven", backend="cpu")


def test_a_reference_with_no_outputs_is_refused(runtime) -> None:
    class Empty(_ScaleChecks):
        def reference(self, inputs, params):
            return {}

    with pytest.raises(AssertionError, match="reference returned no outputs"):
        Empty().assert_conforms(runtime)


def test_the_cases_cover_every_declared_backend_and_chunking(request) -> None:
    # SCALE declares cpu and gpu: each chunking on cpu, gpu and the simulator
    names = {
        item.name
        for item in request.session.items
        if item.cls is TestScaleConformance and item.originalname == "test_conforms"
    }
    assert names == {
        f"test_conforms[{b}-{c}]" for b in ("cpu", "gpu", "cudasim") for c in ("whole", "uneven")
    }
    gaussian = [
        item
        for item in request.session.items
        if item.cls is TestGaussianConformance and "gpu-" in item.name
    ]
    assert gaussian and all(item.get_closest_marker("gpu") for item in gaussian)


def test_uneven_chunks_do_not_divide_the_array() -> None:
    chunks = conformance_chunks({"time": 23, "y": 9, "x": 12, "z": 2, "w": 6}, "uneven")
    assert chunks == {"time": 8, "y": 4, "x": 5, "z": 2, "w": 4}
    for n, c in ((23, 8), (9, 4), (12, 5), (6, 4)):
        assert n % c != 0 and c < n
    assert conformance_chunks({"y": 9, "x": 12}, "whole") == {"y": 9, "x": 12}
    assert conformance_chunks({"y": 9, "x": 12}, {"x": 5}) == {"y": 9, "x": 5}


@pytest.mark.slow
def test_numba_cuda_kernel_conforms_under_the_simulator(tmp_path) -> None:
    env = {
        **os.environ,
        "NUMBA_ENABLE_CUDASIM": "1",
        "PYTHONWARNINGS": "ignore",
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            f"{Path(__file__).relative_to(ROOT)}::TestScaleConformance",
            "-k",
            "cudasim",
            "-q",
            "-rs",
            "-p",
            "no:randomly",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "2 passed" in out and "skipped" not in out, out[-3000:]


def test_a_class_missing_its_reference_is_a_collection_error() -> None:
    from types import SimpleNamespace

    class Forgot(OperatorConformance):
        operator = "conformance.scale"

        def make_inputs(self, rng):
            return {"x": (("y",), rng.normal(size=4))}

    metafunc = SimpleNamespace(fixturenames=["conformance_case"], parametrize=None)
    with pytest.raises(TypeError, match="Forgot is an OperatorConformance without reference"):
        Forgot().pytest_generate_tests(metafunc)

    class Nameless(_ScaleChecks):
        operator = ""

    with pytest.raises(TypeError, match=r"without operator = 'domain\.name'"):
        Nameless().pytest_generate_tests(metafunc)

"""The forestry plugin's GPU kernels, proven on machines without a GPU.

* under numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) Horn's terrain kernel runs
  through ``horn_terrain(backend="gpu")`` on NumPy arrays and must equal the numba CPU
  kernel (the same per-cell source, ``terrain/_cell.py``) and agree with the NumPy
  reference; the checks run in one subprocess (this file, run as a script);
* the GPU burn-severity array code equals the NumPy reference exactly on NumPy arrays
  (and the numba kernel to one float32 ulp);
* where CUDA's NVVM compiler is installed the terrain kernel compiles to PTX for
  compute capability 9.0; ``gpu``-marked tests run both operators through the runtime on
  a GPU against a CPU run (they skip without one).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests._cudasim import Checks, assert_passed, close, compile_for_hopper, simulate

CHECKS = Checks()


def _dem(seed: int = 3, shape: tuple[int, int] = (23, 31)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    z = 100 + 3 * np.sin(x / 4.0) * np.cos(y / 5.0) + rng.normal(0, 0.2, shape)
    z[5, 7] = np.nan  # a hole: its 3 x 3 neighbourhood is NaN
    z[10:12, 3:6] = 100.0  # a flat patch: aspect NaN there
    return z


@CHECKS.check
def horn_gpu_matches_cpu_and_reference() -> None:
    from minjiang.plugins.forestry.terrain import horn_terrain

    z = _dem()
    rows = z.shape[0] - 2
    for ew, ns, kw in (
        (10.0, 10.0, {}),
        (
            np.linspace(20.0, 25.0, rows),
            30.0,
            {"z_factor": 2.0, "azimuth": 120.0, "altitude": 30.0},
        ),
    ):
        gpu = horn_terrain(z, ew, ns, backend="gpu", **kw)
        cpu = horn_terrain(z, ew, ns, backend="cpu", **kw)
        ref = horn_terrain(z, ew, ns, backend="reference", **kw)
        for k in ("slope", "aspect", "hillshade"):
            np.testing.assert_array_equal(np.isnan(gpu[k]), np.isnan(cpu[k]))
            close(gpu[k], cpu[k], 1e-12)
            close(gpu[k], ref[k], 1e-10)


@CHECKS.check
def terrain_operator_kernel_on_the_gpu_backend() -> None:
    """The operator's map kernel on the GPU backend (padding, edge policy and the
    kernel launch on the 'device') equals its CPU backend, for blocks inside the
    raster and on its edges."""
    from minjiang.core import BlockContext
    from minjiang.plugins.forestry._operators import TerrainParams, terrain_kernel

    z = _dem(shape=(40, 36)).astype(np.float32)
    attrs = {"dem": {"transform": [5.0, 0.0, 0.0, 0.0, -5.0, 0.0], "crs": "", "units": "metre"}}
    for (y0, y1), (x0, x1) in (((0, 16), (0, 16)), ((16, 32), (16, 32)), ((32, 40), (20, 36))):
        ylo, yhi = min(1, y0), min(1, 40 - y1)
        xlo, xhi = min(1, x0), min(1, 36 - x1)
        block = z[y0 - ylo : y1 + yhi, x0 - xlo : x1 + xhi]
        got = {}
        for backend in ("cpu", "gpu"):
            ctx = BlockContext(
                operator="forestry.terrain",
                backend=backend,
                task=0,
                dims=("y", "x"),
                region={"y": slice(y0, y1), "x": slice(x0, x1)},
                halo={"y": (ylo, yhi), "x": (xlo, xhi)},
                sizes={"y": 40, "x": 36},
                coords={},
                attrs=attrs,
                n_tasks=1,
                outputs=("slope", "aspect", "hillshade"),
            )
            got[backend] = terrain_kernel({"dem": block}, TerrainParams(), ctx)
        for k in ("slope", "aspect", "hillshade"):
            assert got["gpu"][k].dtype == np.float32
            close(got["gpu"][k], got["cpu"][k], 1e-6)


def main() -> None:
    CHECKS.main()


# ------------------------------------------------------------------ the tests


@pytest.fixture(scope="module")
def simulated() -> dict[str, str | None]:
    return simulate(__file__)


@pytest.mark.parametrize("name", list(CHECKS.checks))
def test_under_cuda_simulator(simulated, name):
    assert_passed(simulated, name)


def test_burn_severity_array_code_equals_the_numba_kernel():
    from minjiang.plugins.forestry.severity import EDGES, burn_severity
    from minjiang.plugins.forestry.severity._gpu import burn_severity as array_code

    rng = np.random.default_rng(9)
    for dtype in (np.float32, np.float64):
        pre = rng.uniform(-1, 1, size=(50, 40)).astype(dtype)
        post = rng.uniform(-1, 1, size=(50, 40)).astype(dtype)
        pre[0, :5] = 0.0  # RdNBR's zero denominator
        pre[1, :3] = -1.001  # RBR's zero denominator
        post[2, :4] = np.nan
        post[3, :6] = pre[3, :6] - np.array(EDGES, dtype)  # on the class edges
        got = array_code(pre, post, EDGES)
        ref = burn_severity(pre, post, backend="reference")
        cpu = burn_severity(pre, post, backend="cpu")
        for k in ref:
            assert got[k].dtype == ref[k].dtype == cpu[k].dtype, k
            np.testing.assert_array_equal(got[k], ref[k], err_msg=k)
            # the numba kernel rounds the float32 ratios once more: one ulp apart
            np.testing.assert_allclose(got[k], cpu[k], rtol=2.5e-7, atol=0, err_msg=k)


def test_terrain_kernel_compiles_for_hopper(monkeypatch):
    from minjiang.plugins.forestry.terrain import _gpu
    from numba import types as t

    f64 = t.float64
    compile_for_hopper(
        monkeypatch,
        _gpu._build,
        (t.float64[:, :], t.float64[:], t.float64[:], f64, f64, f64, f64, t.float64[:, :, :]),
    )


@pytest.mark.gpu
@pytest.mark.parametrize("op", ["forestry.terrain", "forestry.dnbr"])
def test_operators_on_a_gpu_match_the_cpu(tmp_path, op):
    pytest.importorskip("cupy")
    import minjiang as mj

    from tests.plugins.forestry.conftest import write_geotiff

    rng = np.random.default_rng(1)
    a = write_geotiff(
        tmp_path / "a.tif", rng.uniform(-1, 1, (64, 48)).astype(np.float32), (10, 0, 0, 0, -10, 0)
    )
    b = write_geotiff(
        tmp_path / "b.tif", rng.uniform(-1, 1, (64, 48)).astype(np.float32), (10, 0, 0, 0, -10, 0)
    )
    out = {}
    for backend in ("cpu", "gpu"):
        with mj.Runtime(store=tmp_path / backend, executor="local") as rt:
            ra = rt.ingest("forestry.raster", a)
            rb = rt.ingest("forestry.raster", b)
            inputs = {"dem": ra} if op == "forestry.terrain" else {"pre": ra, "post": rb}
            out[backend] = rt.run(op, inputs=inputs, backend=backend).to_xarray()
    for k in out["cpu"].data_vars:
        close(out["gpu"][k].values, out["cpu"][k].values, 1e-6)


if __name__ == "__main__":
    main()

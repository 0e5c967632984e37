"""The ocean plugin's ``numba.cuda`` kernels, proven on machines without a GPU.

As ``tests/kernels/test_cudasim.py`` does for the generic kernels:

* under numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) the ``_gpu`` modules run
  their kernels, launched by their own code, on NumPy arrays, through the public entry
  points (``climatology``, ``detect_events``) with ``backend="gpu"``; each check
  compares with the NumPy reference (``backend="reference"``) and the numba CPU
  kernel, and is reported here as its own test. numba reads the variable when it is
  first imported, so the checks run in one subprocess (this file, run as a script);
* where CUDA's NVVM compiler is installed, every kernel is compiled to PTX for compute
  capability 9.0 (H100/H200);
* ``gpu``-marked tests run the operators through the runtime on a GPU and compare
  with a CPU run (they skip without one).

Tolerances: every result equals the numba CPU kernel's bit for bit (same operations
in the same order); event indices, durations and categories also equal the reference
exactly; means, smoothed values, percentiles and event intensities agree with the
NumPy reference to 1e-10 of their scale (float64: the reference sums pairwise, and its
``numpy.nanpercentile`` lands one ulp away from both kernels in a few pools).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from tests._cudasim import Checks, assert_passed, close, compile_for_hopper, simulate

CHECKS = Checks()
_check = CHECKS.check
_TOL = 1e-10  # float64, relative to the largest finite magnitude (tests/kernels/conftest.py)


def _close(actual: Any, expected: Any, tol: float = _TOL) -> None:
    close(actual, expected, tol)


def _series(
    start: str = "2003-01-01", end: str = "2005-12-31", ny: int = 2, nx: int = 2, seed: int = 5
) -> tuple[Any, np.ndarray]:
    """Daily (time, y, x) float32 SST: seasonal cycle plus AR(1) noise, with NaN gaps,
    a missing 29 February (2004) and a few days absent from the time axis."""
    from minjiang.plugins.ocean._time import decode_time

    rng = np.random.default_rng(seed)
    time = np.arange(np.datetime64(start), np.datetime64(end) + 1, dtype="datetime64[D]")
    doy = (time - time.astype("datetime64[Y]")).astype(np.int64) + 1
    base = 15.0 + 3.0 * np.sin(2 * np.pi * (doy - 80) / 365.25)[:, None, None]
    eps = np.zeros((time.size, ny, nx))
    shocks = rng.normal(0.0, 0.7, eps.shape)
    for i in range(1, time.size):
        eps[i] = 0.85 * eps[i - 1] + shocks[i]
    sst = (base + eps + np.linspace(0.0, 1.0, ny * nx).reshape(1, ny, nx)).astype(np.float32)
    sst[rng.random(sst.shape) < 0.05] = np.nan
    sst[200:203, 0, 0] = np.nan  # a short run (padded when max_pad_length >= 3)
    sst[400:430, -1, -1] = np.nan  # a long one (never padded)
    if ny * nx > 2:
        sst[:, 0, -1] = np.nan  # an all-NaN pixel
    feb29 = np.flatnonzero(time == np.datetime64("2004-02-29"))
    sst[feb29, 1 % ny, 0] = np.nan
    keep = np.ones(time.size, dtype=bool)
    keep[[50, 51, 700]] = False  # days missing from the axis itself
    return decode_time(time[keep].astype("datetime64[ns]")), sst[keep]


# ------------------------------------------------------------------ the checks
# They run in the simulator subprocess; each raises AssertionError on a mismatch.


@_check
def climatology_matches_reference() -> None:
    from minjiang.plugins.ocean.climatology import climatology

    cal, sst = _series()
    for convention, percentile, pad in (
        ("marineHeatWaves", 90.0, 0),
        ("heatwaveR", 90.0, 3),
        ("marineHeatWaves", 10.0, 3),
        ("heatwaveR", 37.5, 0),
    ):
        kw = {"convention": convention, "percentile": percentile, "max_pad_length": pad}
        gpu = climatology(sst, cal, backend="gpu", **kw)
        ref = climatology(sst, cal, backend="reference", **kw)
        cpu = climatology(sst, cal, backend="cpu", **kw)
        for g, r, c in zip(gpu, ref, cpu, strict=True):
            assert g.dtype == np.float64 and g.shape == (366, *sst.shape[1:])
            assert g.flags.c_contiguous
            _close(g, r)
            np.testing.assert_array_equal(g, c)
        assert np.isnan(gpu[0][:, 0, -1]).all()  # the all-NaN pixel


@_check
def percentiles_are_exact() -> None:
    # Without smoothing the threshold is an interpolation of two order statistics:
    # selection must find the same two values a sort does.
    from minjiang.plugins.ocean.climatology import climatology

    cal, sst = _series(end="2004-12-31", ny=1, nx=3, seed=9)
    sst[::7] = np.round(sst[::7])  # ties
    for convention in ("marineHeatWaves", "heatwaveR"):
        for percentile in (0.0, 10.0, 50.0, 90.0, 100.0):
            kw = {"convention": convention, "percentile": percentile, "smooth": False}
            gpu = climatology(sst, cal, backend="gpu", **kw)
            cpu = climatology(sst, cal, backend="cpu", **kw)
            ref = climatology(sst, cal, backend="reference", **kw)
            np.testing.assert_array_equal(gpu[1], cpu[1])
            # exact against the CPU kernel; numpy.nanpercentile is one ulp off in a few pools
            _close(gpu[1], ref[1])
            _close(gpu[0], ref[0])


@_check
def monthly_climatology_matches_reference() -> None:
    from minjiang.plugins.ocean._time import decode_time
    from minjiang.plugins.ocean.climatology import climatology

    rng = np.random.default_rng(11)
    time = np.arange("2000-01", "2006-01", dtype="datetime64[M]").astype("datetime64[ns]")
    x = rng.normal(27.0, 1.0, (time.size, 2, 3))
    x[rng.random(x.shape) < 0.1] = np.nan
    cal = decode_time(time)
    kw = {"frequency": "monthly", "period": (2001, 2004), "percentile": 75.0}
    gpu = climatology(x, cal, backend="gpu", **kw)
    ref = climatology(x, cal, backend="reference", **kw)
    _close(gpu[0], ref[0])
    _close(gpu[1], ref[1])
    np.testing.assert_array_equal(gpu[1], climatology(x, cal, backend="cpu", **kw)[1])


@_check
def smoothing_and_padding_kernels_match_reference() -> None:
    from minjiang.plugins.ocean import _gaps
    from minjiang.plugins.ocean.climatology import _gpu, _reference

    rng = np.random.default_rng(12)
    clim = rng.normal(size=(3, 366))
    clim[1, 40] = np.nan  # NaN spreads over its windows
    for width in (1, 5, 31):
        got = _gpu.smooth_circular(clim, width)
        assert got.shape == clim.shape
        _close(got, _reference.smooth_circular(clim, width))
    rows = rng.normal(size=(4, 60))
    rows[0, :3] = rows[1, 57:] = np.nan  # runs touching either end
    rows[2, 10:12] = rows[2, 30:36] = np.nan
    rows[3] = np.nan
    for max_length in (1, 3, 6):
        got = _gaps.pad_gaps_gpu(rows, max_length)
        _close(got, _gaps.pad_gaps_reference(rows, max_length))
        np.testing.assert_array_equal(got, _gaps.pad_gaps_cpu(rows, max_length))
    assert np.isnan(rows[0, 0])  # the input is left as it was


@_check
def events_match_reference() -> None:
    from minjiang.plugins.ocean.climatology import climatology
    from minjiang.plugins.ocean.mhw import detect_events

    cal, sst = _series(seed=6)
    for cold, percentile in ((False, 90.0), (True, 10.0)):
        seas, thresh = climatology(sst, cal, percentile=percentile, backend="cpu")
        for kw in (
            {},
            {"max_pad_length": 3, "min_duration": 3},
            {"join_gaps": False},
            {"max_gap": 0, "min_duration": 1},
        ):
            kw = {"cold_spells": cold, **kw}
            gpu = detect_events(sst, cal, seas, thresh, backend="gpu", **kw)
            ref = detect_events(sst, cal, seas, thresh, backend="reference", **kw)
            cpu = detect_events(sst, cal, seas, thresh, backend="cpu", **kw)
            assert len(gpu) == len(ref) > 0, (len(gpu), len(ref), kw)
            assert gpu.ints.dtype == np.int64 and gpu.floats.dtype == np.float64
            np.testing.assert_array_equal(gpu.pixel, ref.pixel)
            np.testing.assert_array_equal(gpu.ints, ref.ints)
            _close(gpu.floats, ref.floats)
            np.testing.assert_array_equal(gpu.floats, cpu.floats)


@_check
def events_at_series_ends_and_without_any() -> None:
    # Events running into the first or last day take the other onset/decline rules;
    # a series without events gives empty, well-shaped tables.
    from minjiang.plugins.ocean._time import decode_time
    from minjiang.plugins.ocean.mhw import detect_events

    time = np.arange("2001-01-01", "2001-03-01", dtype="datetime64[D]").astype("datetime64[ns]")
    cal = decode_time(time)
    n = time.size
    seas = np.zeros((366, 1, 3))
    thresh = np.ones((366, 1, 3))
    x = np.zeros((n, 1, 3))
    x[:6, 0, 0] = [3.0, 2.0, 5.0, 1.5, 2.0, 1.2]  # starts on day 0
    x[n - 7 :, 0, 1] = [1.1, 2.0, 3.5, 1.5, 2.0, 1.2, 4.0]  # ends on the last day
    x[20:24, 0, 1] = [2.0, 3.0, 2.0, 1.5]  # too short
    for kw in ({}, {"min_duration": 3}):
        gpu = detect_events(x, cal, seas, thresh, backend="gpu", **kw)
        ref = detect_events(x, cal, seas, thresh, backend="reference", **kw)
        np.testing.assert_array_equal(gpu.pixel, ref.pixel)
        np.testing.assert_array_equal(gpu.ints, ref.ints)
        _close(gpu.floats, ref.floats)
    none = detect_events(
        np.zeros((n, 2, 2)),
        cal,
        seas[:, :, :2].repeat(2, 1),
        thresh[:, :, :2].repeat(2, 1),
        backend="gpu",
    )
    assert len(none) == 0 and none.ints.shape == (0, 9) and none.floats.shape == (0, 14)


# ------------------------------------------------------------------ the tests


@pytest.fixture(scope="module")
def simulated() -> dict[str, str | None]:
    """Results of every check, from one subprocess under the CUDA simulator."""
    return simulate(__file__)


@pytest.mark.parametrize("name", list(CHECKS.checks))
def test_under_cuda_simulator(simulated, name):
    assert_passed(simulated, name)


def test_gpu_backend_needs_device_arrays_outside_the_simulator() -> None:
    # Without the simulator a NumPy array never reaches a numba.cuda kernel silently.
    from minjiang.plugins.ocean._time import decode_time
    from minjiang.plugins.ocean.climatology import climatology

    time = np.arange("2001-01-01", "2002-01-01", dtype="datetime64[D]").astype("datetime64[ns]")
    x = np.zeros((time.size, 1))
    with pytest.raises(TypeError, match="CuPy"):
        climatology(x, decode_time(time), backend="gpu")


def _ptx_cases() -> dict[str, tuple[Callable[[], Any], tuple[Any, ...]]]:
    from minjiang.plugins.ocean import _gaps_gpu
    from minjiang.plugins.ocean.climatology import _gpu as clim
    from minjiang.plugins.ocean.mhw import _gpu as mhw
    from numba import types as t

    def a(dtype: Any, ndim: int = 1) -> Any:
        return t.Array(dtype, ndim, "A")

    f64, i64 = t.float64, t.int64
    return {
        "pooled_stats": (
            lambda: clim._build_pooled(384),
            (a(f64, 2), a(i64), a(i64), f64, a(f64, 2), a(f64, 2)),
        ),
        "smooth_circular": (clim._build_smooth, (a(f64, 2), i64, a(f64, 2))),
        "pad_gaps": (_gaps_gpu._build, (a(f64, 2), i64)),
        "mhw_events": (
            mhw._build,
            (
                a(f64, 2),
                a(f64, 2),
                a(f64, 2),
                a(i64),
                f64,
                i64,
                t.boolean,
                i64,
                t.boolean,
                a(i64),
                a(i64),
                a(i64, 2),
                a(f64, 2),
            ),
        ),
    }


@pytest.mark.parametrize("name", list(_ptx_cases()))
def test_kernel_compiles_for_hopper(monkeypatch, name):
    compile_for_hopper(monkeypatch, *_ptx_cases()[name])


# ------------------------------------------------------------------ on a GPU


def _gpu_runtime_missing(runtime: Any) -> str | None:
    try:
        import cupy  # noqa: F401
    except Exception as err:
        return f"CuPy is not importable ({type(err).__name__})"
    return None if runtime.executor.gpus() > 0 else "no GPU for the local executor"


@pytest.mark.gpu
@pytest.mark.parametrize("convention", ["marineHeatWaves", "heatwaveR"])
def test_operators_on_the_gpu_equal_the_cpu(runtime, tmp_path, convention):
    """Climatology, anomaly and heatwaves run as GPU tasks give the CPU's results."""
    reason = _gpu_runtime_missing(runtime)
    if reason is not None:
        pytest.skip(reason)
    from minjiang.core import Runtime

    from .conftest import synthetic_sst, write_sst

    time, sst = synthetic_sst("1990-01-01", "1999-12-31", ny=5, nx=6, seed=21)
    path = write_sst(tmp_path / "sst.nc", time, sst)
    clim_params = {"convention": convention, "max_pad_length": 3}
    ingest = {"chunking": "slabs", "chunk_mib": 0.05}  # several tasks per step

    def run_all(rt: Any, backend: str) -> dict[str, Any]:
        ds = rt.ingest("ocean.netcdf", [path], params=ingest)
        clim = rt.run("ocean.climatology", inputs={"sst": ds}, params=clim_params, backend=backend)
        anom = rt.run("ocean.anomaly", inputs={"sst": ds, "seas": clim}, backend=backend)
        mhw = rt.run(
            "ocean.marine_heatwaves",
            inputs={"sst": ds, "seas": clim, "thresh": clim},
            params={"max_pad_length": 3},
            backend=backend,
        )
        return {"clim": clim, "anom": anom, "mhw": mhw}

    cpu = run_all(runtime, "cpu")
    # a store of its own: the same content in one store would be reused, not recomputed
    with Runtime(store=tmp_path / "gpu-store", executor="local", memory_budget="2GiB") as rt:
        gpu = run_all(rt, "gpu")
        for name in gpu:
            assert gpu[name].record.producer["backend"] == "gpu", name
        c_clim, g_clim = cpu["clim"].to_xarray(), gpu["clim"].to_xarray()
        for var in ("seas", "thresh"):
            _close(g_clim[var].values, c_clim[var].values)
        np.testing.assert_allclose(
            gpu["anom"].to_xarray()["anomaly"].values,
            cpu["anom"].to_xarray()["anomaly"].values,
            rtol=1e-6,
            atol=1e-5,  # float32 output of float64 differences
        )
        c_ev = cpu["mhw"].table("events").to_pandas()
        g_ev = gpu["mhw"].table("events").to_pandas()
        assert len(g_ev) == len(c_ev) > 0
        key = ["y", "x", "event_no"]
        c_ev = c_ev.sort_values(key).reset_index(drop=True)
        g_ev = g_ev.sort_values(key).reset_index(drop=True)
        for column in c_ev.columns:
            if c_ev[column].dtype.kind == "f":
                _close(g_ev[column].to_numpy(), c_ev[column].to_numpy())
            else:
                assert (g_ev[column] == c_ev[column]).all(), column
        c_grid, g_grid = cpu["mhw"].to_xarray(), gpu["mhw"].to_xarray()
        for var in c_grid.data_vars:
            _close(g_grid[var].values, c_grid[var].values, 1e-6)


if __name__ == "__main__":
    CHECKS.main()

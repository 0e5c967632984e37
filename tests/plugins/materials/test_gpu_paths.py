"""GPU paths of the materials plugin that are CuPy array code (MSD and S₂ by ``cupy.fft``),
the GPU backend through the runtime, and its refusal where there is no GPU.

The CuPy code is written against the array module of its input, so the same lines run
on NumPy here and are compared with the CPU kernels; the ``gpu``-marked tests run them
on CuPy arrays and through the runtime on a GPU, and skip without one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from minjiang.core.errors import BackendUnavailableError

from .conftest import datafiles

TOL = 1e-10  # float64, relative to the largest magnitude (tests/kernels/conftest.py)


def _close(actual: Any, expected: Any, tol: float = TOL) -> None:
    expected = np.asarray(expected)
    scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=tol, atol=tol * scale)


def _walk(frames: int, atoms: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.normal(0, 0.7, (frames, atoms, 3)), axis=0) + rng.random((1, atoms, 3))


def _blobs(shape: tuple[int, ...], seed: int) -> np.ndarray:
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.normal(size=shape), sigma=1.5)
    return field > np.quantile(field, 0.6)


@pytest.mark.parametrize("frames", [1, 2, 37, 64])
def test_msd_array_code_matches_the_cpu_kernel(frames: int) -> None:
    from minjiang.plugins.materials.msd import _gpu, msd_per_atom

    x = _walk(frames, 9, seed=frames)
    got = _gpu.msd_per_atom(x)
    assert got.shape == x.shape and got.dtype == np.float64
    _close(got, msd_per_atom(x, backend="cpu"))
    _close(got, msd_per_atom(x, backend="reference"))


@pytest.mark.parametrize("periodic", [False, True])
@pytest.mark.parametrize("shape", [(23, 30), (9, 12, 10)])
def test_two_point_array_code_equals_the_cpu_counts(shape, periodic) -> None:
    from minjiang.plugins.materials.twopoint import _gpu, lag_box, pair_counts

    ind = _blobs(shape, seed=len(shape))
    lags = lag_box(shape, [1.0] * len(shape), 6.0, periodic)
    num, overlap = _gpu.pair_counts(ind, lags, periodic)
    cpu_num, cpu_overlap = pair_counts(ind, lags, periodic=periodic, backend="cpu")
    assert num.dtype == np.int64
    np.testing.assert_array_equal(num, cpu_num)
    np.testing.assert_array_equal(overlap, cpu_overlap)
    ref_num, _ = pair_counts(ind, lags, periodic=periodic, backend="reference")
    np.testing.assert_array_equal(num, ref_num)


# ------------------------------------------------------------------ refusals without a GPU


def _no_gpu(runtime: Any) -> None:
    if runtime.executor.gpus() > 0:
        pytest.skip("this machine has a GPU: the gpu-marked tests run the GPU paths")


def _inputs(runtime: Any, tmp_path: Any) -> dict[str, Any]:
    d = datafiles()
    traj = runtime.ingest("materials.trajectory", [d.PSF_TRICLINIC, d.DCD_TRICLINIC])
    np.save(tmp_path / "im.npy", _blobs((20, 22), seed=1).astype(np.uint8))
    img = runtime.ingest(
        "materials.image", [str(tmp_path / "im.npy")], params={"voxel_size": [1, 1]}
    )
    return {"traj": traj, "image": img}


def test_backend_gpu_refused_cleanly_without_a_gpu(runtime, tmp_path) -> None:
    _no_gpu(runtime)
    data = _inputs(runtime, tmp_path)
    traj, img = data["traj"], data["image"]
    runs = {
        "materials.rdf": ({"positions": traj, "cell": traj}, {"r_max": 4.0}),
        "materials.msd": (
            {"positions": traj, "cell": traj, "atom_type": traj},
            {"unwrap": True},
        ),
        "materials.two_point": ({"image": img}, {"r_max": 5.0}),
    }
    for op, (inputs, params) in runs.items():
        with pytest.raises(BackendUnavailableError, match="the local executor has no GPU"):
            runtime.run(op, inputs=inputs, params=params, backend="gpu")
    # CPU-only operators say that they have no GPU kernel
    with pytest.raises(BackendUnavailableError, match="has no GPU kernel"):
        runtime.run(
            "materials.porosity",
            inputs={"image": img},
            params={"max_radius": 4, "axis": "x"},
            backend="gpu",
        )
    # nothing was computed: only the two ingests are in the catalog
    assert len(runtime.catalog.list(include_hidden=True)) == 2


def test_cli_backend_gpu_is_one_error_line(runtime, tmp_path, capsys) -> None:
    _no_gpu(runtime)
    from minjiang.core.cli import main

    traj = _inputs(runtime, tmp_path)["traj"]
    pipe = tmp_path / "rdf.yaml"
    pipe.write_text(
        "steps:\n"
        "  - id: rdf\n"
        "    operator: materials.rdf\n"
        f"    inputs: {{positions: '{traj.id}', cell: '{traj.id}'}}\n"
        "    params: {r_max: 4.0}\n"
    )
    store = str(runtime.store.url).removeprefix("file://")
    with pytest.raises(SystemExit) as err:
        main(["run", str(pipe), "--store", store, "--executor", "local", "--backend", "gpu"])
    assert err.value.code == 2
    stderr = capsys.readouterr().err
    assert "backend 'gpu' was asked but the local executor has no GPU" in " ".join(stderr.split())
    assert "Traceback" not in stderr


# ------------------------------------------------------------------ on a GPU


def _cupy() -> Any:
    cupy = pytest.importorskip("cupy")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no CUDA device")
    except Exception as err:  # no driver
        pytest.skip(f"no usable CUDA device ({type(err).__name__})")
    return cupy


@pytest.mark.gpu
def test_cupy_msd_and_two_point_equal_the_cpu() -> None:
    cp = _cupy()
    from minjiang.plugins.materials.msd import msd_per_atom, unwrap
    from minjiang.plugins.materials.twopoint import lag_box, pair_counts

    x = _walk(200, 50, seed=2)
    got = msd_per_atom(cp.asarray(x))
    assert type(got).__module__.startswith("cupy")
    _close(got.get(), msd_per_atom(x))
    h = np.repeat(np.diag([7.0, 8.0, 9.0])[None], 200, axis=0)
    wrapped = x - np.floor(x / np.diag(h[0])) * np.diag(h[0])
    _close(unwrap(cp.asarray(wrapped), h).get(), unwrap(wrapped, h))
    for shape in ((64, 80), (30, 28, 26)):
        ind = _blobs(shape, seed=3)
        for periodic in (False, True):
            lags = lag_box(shape, [1.0] * len(shape), 10.0, periodic)
            num, overlap = pair_counts(cp.asarray(ind), lags, periodic=periodic)
            cpu_num, cpu_overlap = pair_counts(ind, lags, periodic=periodic)
            np.testing.assert_array_equal(num, cpu_num)
            np.testing.assert_array_equal(overlap, cpu_overlap)


@pytest.mark.gpu
@pytest.mark.parametrize("cell", ["orthorhombic", "triclinic"])
def test_cupy_pair_histogram_equals_the_cpu_exactly(cell: str) -> None:
    cp = _cupy()
    from minjiang.plugins.materials.rdf import face_distances, pair_histogram

    h = (
        np.diag([30.0, 32.0, 29.0])
        if cell == "orthorhombic"
        else np.array([[30.0, 0, 0], [9.0, 28.0, 0], [-6.0, 4.5, 31.0]])
    )
    rng = np.random.default_rng(7)
    x = ((rng.random((4, 3000, 3)) @ h) + rng.normal(0, 3, (4, 3000, 3))).astype(np.float32)
    cells = np.repeat(h[None], 4, axis=0)
    r_max = face_distances(h).min() / 2
    n = np.arange(3000)
    mol = n // 3
    for ia, ib, m in ((n, n, None), (n[:2000], n[1000:], mol)):
        for nbins in (100, 3000):  # shared-memory and global histograms
            gpu = pair_histogram(cp.asarray(x), cells, ia, ib, r_max=r_max, nbins=nbins, molecule=m)
            cpu = pair_histogram(x, cells, ia, ib, r_max=r_max, nbins=nbins, molecule=m)
            np.testing.assert_array_equal(gpu, cpu)


@pytest.mark.gpu
def test_operators_on_the_gpu_equal_the_cpu(runtime, tmp_path) -> None:
    _cupy()
    if runtime.executor.gpus() <= 0:
        pytest.skip("no GPU for the local executor")
    from minjiang.core import Runtime

    def run_all(rt: Any, backend: str) -> dict[str, Any]:
        data = _inputs(rt, tmp_path)
        traj, img = data["traj"], data["image"]
        sel = {"a": {"names": ["OH2"]}, "r_max": 4.0, "bins": 40}
        return {
            "rdf": rt.run(
                "materials.rdf",
                inputs={"positions": traj, "cell": traj, "atom_name": traj},
                params=sel,
                backend=backend,
            ),
            "msd": rt.run(
                "materials.msd",
                inputs={"positions": traj, "cell": traj, "atom_type": traj},
                params={"unwrap": True, "fit": "auto"},
                backend=backend,
            ),
            "s2": rt.run(
                "materials.two_point", inputs={"image": img}, params={"r_max": 8.0}, backend=backend
            ),
        }

    cpu = run_all(runtime, "cpu")
    with Runtime(store=tmp_path / "gpu-store", executor="local", memory_budget="2GiB") as rt:
        gpu = run_all(rt, "gpu")
        assert gpu["rdf"].record.producer["backend"] == "gpu"
        c, g = cpu["rdf"].table("rdf").to_pandas(), gpu["rdf"].table("rdf").to_pandas()
        np.testing.assert_array_equal(g["count"], c["count"])
        c, g = cpu["msd"].table("msd").to_pandas(), gpu["msd"].table("msd").to_pandas()
        _close(g["msd"].to_numpy(), c["msd"].to_numpy(), 1e-9)
        c, g = cpu["s2"].table("s2").to_pandas(), gpu["s2"].table("s2").to_pandas()
        np.testing.assert_array_equal(g["s2"].to_numpy(), c["s2"].to_numpy())

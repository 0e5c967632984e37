"""The materials plugin's ``numba.cuda`` g(r) kernel, proven on machines without a GPU.

As ``tests/kernels/test_cudasim.py`` does for the generic kernels:

* under numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) ``rdf/_gpu.py`` runs its
  kernels, launched by its own code, on NumPy arrays, through the public entry point
  (``pair_histogram(..., backend="gpu")``) and through the task kernel of
  ``materials.rdf`` with a GPU context; every integer histogram must equal the numba
  CPU kernel's exactly (and so the NumPy reference's). numba reads the variable when it
  is first imported, so the checks run in one subprocess (this file, run as a script).
  Inputs are small: the simulator runs every GPU thread as a Python thread, and a
  triclinic pair costs 27 images;
* where CUDA's NVVM compiler is installed, every kernel variant is compiled to PTX for
  compute capability 9.0 (H100/H200), and the PTX is checked to hold no fused
  multiply-add: the distances must round as the CPU's do for the counts to be equal.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import pytest

from tests._cudasim import Checks, assert_passed, compile_for_hopper, simulate

CHECKS = Checks()
_check = CHECKS.check

ORTHO = np.diag([10.0, 12.0, 9.0])
TRIC = np.array([[10.0, 0, 0], [3.0, 9.0, 0], [-2.0, 1.5, 11.0]])


def _frames(h: np.ndarray, frames: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    s = rng.random((frames, n, 3))
    # some atoms outside the cell: the kernels wrap them
    return (s @ h + rng.normal(0, 4, (frames, n, 3))).astype(np.float32)


def _both(x, cells, ia, ib, **kw) -> tuple[np.ndarray, np.ndarray]:
    from minjiang.plugins.materials.rdf import pair_histogram

    gpu = pair_histogram(x, cells, ia, ib, backend="gpu", **kw)
    cpu = pair_histogram(x, cells, ia, ib, backend="cpu", **kw)
    return gpu, cpu


# ------------------------------------------------------------------ the checks
# They run in the simulator subprocess; each raises AssertionError on a mismatch.


@_check
def orthorhombic_counts_equal_the_cpu_kernel() -> None:
    from minjiang.plugins.materials.rdf import face_distances

    x = _frames(ORTHO, 2, 80, seed=3)
    cells = np.repeat(ORTHO[None], 2, axis=0)
    r_max = face_distances(ORTHO).min() / 2
    n = np.arange(80)
    for ia, ib, mol, r_min in (
        (n, n, None, 0.0),  # identical: each unordered pair once, counted twice
        (n[:50], n[30:], n // 3, 0.0),  # overlapping, same molecule excluded
        (n[:40], n[40:], None, 1.5),  # disjoint, r_min > 0
    ):
        gpu, cpu = _both(x, cells, ia, ib, r_min=r_min, r_max=r_max, nbins=20, molecule=mol)
        assert gpu.dtype == np.int64 and gpu.sum() > 500, gpu.sum()
        np.testing.assert_array_equal(gpu, cpu)


@_check
def triclinic_counts_equal_the_cpu_kernel() -> None:
    from minjiang.plugins.materials.rdf import face_distances

    x = _frames(TRIC, 1, 36, seed=4)
    r_max = face_distances(TRIC).min() / 2
    n = np.arange(36)
    for ia, ib, mol in ((n, n, None), (n[:24], n[12:], n // 2)):
        gpu, cpu = _both(x, TRIC[None], ia, ib, r_max=r_max, nbins=16, molecule=mol)
        assert gpu.sum() > 100, gpu.sum()
        np.testing.assert_array_equal(gpu, cpu)
        ref = _reference(x, TRIC[None], ia, ib, r_max, 16, mol)
        np.testing.assert_array_equal(gpu, ref)


@_check
def few_boxes_per_axis_and_global_atomics() -> None:
    # r_max close to half the cell: one or two slabs per axis, offsets de-duplicated;
    # the global-atomics variant (many bins) counts the same
    from minjiang.plugins.materials.rdf import _gpu, face_distances

    h = np.array([[8.0, 0, 0], [0.0, 7.5, 0], [0.0, 0.0, 16.5]])
    x = _frames(h, 2, 40, seed=5)
    cells = np.repeat(h[None], 2, axis=0)
    r_max = face_distances(h).min() / 2
    n = np.arange(40)
    gpu, cpu = _both(x, cells, n, n, r_max=r_max, nbins=13)
    np.testing.assert_array_equal(gpu, cpu)
    direct = _gpu.pair_histogram(x, cells, n, n, None, 0.0, r_max, 13, shared=False)
    np.testing.assert_array_equal(direct, cpu)
    many = _gpu.SHARED_BINS + 1
    gpu, cpu = _both(x, cells, n, n[::2], r_max=r_max, nbins=many)
    np.testing.assert_array_equal(gpu, cpu)


@_check
def rdf_task_kernel_on_the_gpu_backend() -> None:
    # the task kernel of materials.rdf with a GPU context: selections by type and the
    # per-frame constants as on the CPU
    from minjiang.plugins.materials._kernels import rdf_partial
    from minjiang.plugins.materials._operators import RdfParams

    x = _frames(ORTHO, 3, 30, seed=6)
    arrays = {
        "positions": x,
        "cell": np.repeat(ORTHO[None], 3, axis=0),
        "atom_type": np.arange(30, dtype=np.int32) % 2,
    }
    params = RdfParams.model_validate({"a": {"types": ["O"]}, "b": {"types": ["H"]}, "bins": 12})

    def ctx(backend: str) -> Any:
        return types.SimpleNamespace(
            backend=backend,
            region={"frame": slice(0, 3)},
            sizes={"frame": 3, "atom": 30, "xyz": 3},
            attrs={"atom_type": {"labels": ["H", "O"]}},
        )

    gpu, cpu = rdf_partial(arrays, params, ctx("gpu")), rdf_partial(arrays, params, ctx("cpu"))
    assert sorted(gpu) == sorted(cpu)
    for key in cpu:
        np.testing.assert_array_equal(gpu[key], cpu[key])
    assert cpu["count"].sum() > 0


def _reference(x, cells, ia, ib, r_max, nbins, mol) -> np.ndarray:
    from minjiang.plugins.materials.rdf import pair_histogram

    return pair_histogram(
        x, cells, ia, ib, r_max=r_max, nbins=nbins, molecule=mol, backend="reference"
    )


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
    from minjiang.plugins.materials.rdf import pair_histogram

    x = _frames(ORTHO, 1, 10, seed=1)
    with pytest.raises(TypeError, match="CuPy"):
        pair_histogram(
            x, ORTHO[None], np.arange(10), np.arange(10), r_max=4.0, nbins=4, backend="gpu"
        )


def _ptx_cases() -> dict[str, tuple[Any, tuple[Any, ...]]]:
    from minjiang.plugins.materials.rdf import _gpu
    from numba import types as t

    def a(dtype: Any, ndim: int = 1) -> Any:
        return t.Array(dtype, ndim, "A")

    f64, i64 = t.float64, t.int64
    pairs = (
        *(a(i64), a(f64, 2), a(i64), a(f64, 2), a(i64), a(i64), a(i64), a(i64), a(i64, 2)),
        *(a(i64), a(i64), a(f64, 2), f64, f64, f64, f64, f64, a(i64)),
    )
    cases: dict[str, tuple[Any, tuple[Any, ...]]] = {
        "fractional": (
            _gpu._build_fractional,
            (a(t.float32, 2), a(f64, 2), a(i64), a(f64, 2), a(i64)),
        ),
    }
    for tric in (False, True):
        for shared in (False, True):
            name = f"pairs_{'triclinic' if tric else 'orthorhombic'}_{'shared' if shared else 'global'}"
            cases[name] = (
                lambda tric=tric, shared=shared: _gpu._build_pairs(tric, True, True, shared),
                pairs,
            )
    return cases


@pytest.mark.parametrize("name", list(_ptx_cases()))
def test_kernel_compiles_for_hopper_without_fused_multiply_adds(monkeypatch, name):
    build, signature = _ptx_cases()[name]
    ptx = compile_for_hopper(monkeypatch, build, signature)
    assert "fma." not in ptx  # every product rounds on its own, as on the CPU
    if name.startswith("pairs"):
        assert "atom.global.add" in ptx or "red.global.add" in ptx


if __name__ == "__main__":
    CHECKS.main()

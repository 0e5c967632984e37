"""Fixtures shared by the kernel tests: the backend parameter and comparison helpers.

Every kernel test body takes ``backend`` (or ``call``, which depends on it) and so runs
once per backend: ``reference`` (NumPy), ``cpu`` (numba) and ``gpu`` (CuPy; marked
``gpu`` and skipped without CuPy and a CUDA device, or while the kernel has no GPU
implementation).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest

# Tolerance of each dtype, relative to the largest finite magnitude of the expected
# values: float64 results agree to ~1e-10 of their scale, float32 ones to ~1e-5.
TOLERANCE = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-10}


@functools.cache
def _gpu_unavailable() -> str | None:
    try:
        import cupy
    except Exception as err:  # ImportError, or a broken CUDA installation
        return f"CuPy is not importable ({type(err).__name__}: {err})"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:
        return f"no CUDA device ({type(err).__name__}: {err})"
    return None if n > 0 else "no CUDA device"


@pytest.fixture(
    scope="session",
    params=["reference", "cpu", pytest.param("gpu", marks=pytest.mark.gpu)],
)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend a kernel test runs on."""
    if request.param == "gpu":
        reason = _gpu_unavailable()
        if reason is not None:
            pytest.skip(f"gpu backend: {reason}")
    return request.param


def _to_device(value: Any, backend: str) -> Any:
    if backend != "gpu":
        return value
    import cupy

    if isinstance(value, np.ndarray):
        return cupy.asarray(value)
    if isinstance(value, Mapping):
        return {k: _to_device(v, backend) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_device(v, backend) for v in value)
    return value


def _to_host(value: Any) -> Any:
    if type(value).__module__.split(".", 1)[0] == "cupy":
        import cupy

        return cupy.asnumpy(value)
    if isinstance(value, Mapping):
        return {k: _to_host(v) for k, v in value.items()}
    return value


@pytest.fixture(scope="session")
def call(backend: str) -> Callable[..., Any]:
    """``call(kernel, *args, **kwargs)``: run ``kernel`` on ``backend``.

    Array arguments go to the device first (CuPy for ``gpu``), ``backend=`` is passed,
    and the result comes back to the host. A kernel without a GPU implementation skips
    the ``gpu`` run.
    """

    def run(kernel: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        args = tuple(_to_device(a, backend) for a in args)
        kwargs = {k: _to_device(v, backend) for k, v in kwargs.items()}
        try:
            result = kernel(*args, backend=backend, **kwargs)
        except TypeError as err:
            if backend == "gpu" and "has no GPU implementation" in str(err):
                pytest.skip(str(err))
            raise
        return _to_host(result)

    return run


def assert_close(actual: Any, expected: Any, dtype: Any, *, scale: float | None = None) -> None:
    """Assert equal shapes, NaN and inf in the same places, and finite values within
    the tolerance of ``dtype`` relative to ``scale`` (default: the largest finite
    magnitude of ``expected``, at least 1)."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} != expected {expected.shape}"
    tol = TOLERANCE[np.dtype(dtype)]
    if scale is None:
        finite = np.abs(expected[np.isfinite(expected)]) if expected.size else expected
        scale = max(1.0, float(finite.max())) if finite.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale, equal_nan=True)


@pytest.fixture(scope="session")
def close() -> Callable[..., None]:
    """The dtype-aware comparison :func:`assert_close`."""
    return assert_close


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded random generator."""
    return np.random.default_rng(20240611)

"""Running ``numba.cuda`` kernels without a GPU: the machinery the simulator test files
share (``tests/kernels/test_cudasim.py``, ``tests/plugins/*/test_*cudasim.py``).

A test file registers its checks with :meth:`Checks.check`; they run in one subprocess
started with ``NUMBA_ENABLE_CUDASIM=1`` (numba reads it at import), the test file run as
a script printing :meth:`Checks.run` as JSON, and each is reported as its own test. The
same file lists its kernels for :func:`compile_for_hopper`, which compiles each to PTX
for compute capability 9.0 where CUDA's NVVM is installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

#: Seconds the simulator subprocess may take.
TIMEOUT_S = 240


def close(actual: Any, expected: Any, tol: float) -> None:
    """Equal within ``tol`` of the largest finite magnitude of ``expected`` (at least
    1), NaN in the same places: the kernel tests' tolerance rule."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    finite = np.abs(expected[np.isfinite(expected)])
    scale = max(1.0, float(finite.max())) if finite.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale, equal_nan=True)


class Checks:
    """The simulator checks of one test file."""

    def __init__(self) -> None:
        self.checks: dict[str, Callable[[], None]] = {}

    def check(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Register ``fn`` (raises ``AssertionError`` on a mismatch)."""
        self.checks[fn.__name__] = fn
        return fn

    def run(self) -> dict[str, str | None]:
        """Run every check (in the simulator subprocess): ``name -> None`` when it
        passed, else the traceback."""
        from minjiang.kernels import _cuda

        if not _cuda.simulator():
            raise SystemExit("run with NUMBA_ENABLE_CUDASIM=1")
        results: dict[str, str | None] = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices of references
            for name, fn in self.checks.items():
                try:
                    fn()
                    results[name] = None
                except Exception:
                    results[name] = traceback.format_exc(limit=6)
        return results

    def main(self) -> None:
        """The test file's ``__main__``: print the results as the last JSON line."""
        print(json.dumps(self.run()))


def simulate(test_file: str) -> dict[str, str | None]:
    """Run ``test_file`` as a script under the CUDA simulator; its checks' results."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # for `import tests`
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    env = {
        **os.environ,
        "NUMBA_ENABLE_CUDASIM": "1",
        "PYTHONWARNINGS": "ignore",
        "PYTHONPATH": path,
    }
    proc = subprocess.run(
        [sys.executable, test_file],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and lines, (
        f"simulator run failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n"
        f"{proc.stderr[-3000:]}"
    )
    return json.loads(lines[-1])


def assert_passed(results: dict[str, str | None], name: str) -> None:
    assert name in results, f"check {name!r} did not run"
    error = results[name]
    assert error is None, error


def nvvm_missing() -> str | None:
    """Why kernels cannot be compiled to PTX here (``None`` when they can)."""
    try:
        from numba.cuda.cudadrv.nvvm import NVVM

        NVVM()
    except Exception as err:
        return f"CUDA's NVVM compiler is not installed ({type(err).__name__})"
    return None


def compile_for_hopper(
    monkeypatch: pytest.MonkeyPatch, build: Callable[[], Any], signature: tuple[Any, ...]
) -> str:
    """Compile the kernel ``build()`` makes to PTX for sm_90 (skips without NVVM); the PTX."""
    reason = nvvm_missing()
    if reason is not None:
        pytest.skip(reason)
    import types

    import numba.cuda.dispatcher
    from numba import cuda

    if not cuda.is_available():
        # Device functions are compiled for the current device's compute capability;
        # with no device, name the one the GPU check runs on.
        monkeypatch.setattr(
            numba.cuda.dispatcher,
            "get_current_device",
            lambda: types.SimpleNamespace(compute_capability=(9, 0)),
            raising=False,
        )
    ptx, _ = cuda.compile_ptx(build().py_func, signature, cc=(9, 0))
    assert ".target sm_90" in ptx
    return str(ptx)

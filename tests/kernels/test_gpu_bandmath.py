"""The CUDA C that the GPU band math generates, checked without a GPU.

``kernels/bandmath/_gpu.py`` turns the expression tree into the body of a CuPy
``ElementwiseKernel``. The test body in ``test_bandmath.py`` runs it on a GPU (the
``gpu`` backend parameter); here the same generated text is compiled by the host C++
compiler, with CUDA's device qualifiers and constants mapped to their host meanings,
and evaluated element by element against the NumPy reference. That checks what can be
wrong in the translation (operators, NaN-propagating minimum/maximum, where, boolean
to number, literals, special constants, dtype conversions) on any machine with ``g++``.
Where ``nvcc`` is installed, the body is also compiled for an H100/H200 (sm_90).

Tolerances: the host's libm and CUDA's libdevice both stay within a few ulp for
``exp``/``log``/``pow``, so results are compared with the dtype tolerances of the
kernel tests, not bit for bit.
"""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from minjiang.kernels.bandmath import _gpu as bandmath_gpu
from minjiang.kernels.bandmath import _reference, compile_expression

TOLERANCE = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-10}

_CTYPES = {
    "bool": "bool",
    "int8": "int8_t",
    "int16": "int16_t",
    "int32": "int32_t",
    "int64": "int64_t",
    "uint8": "uint8_t",
    "uint16": "uint16_t",
    "uint32": "uint32_t",
    "uint64": "uint64_t",
    "float32": "float",
    "float64": "double",
}

_HOST_PRELUDE = """
#include <cmath>
#include <cstdint>
#include <limits>
using std::exp; using std::fabs; using std::isfinite; using std::isnan; using std::log;
using std::log10; using std::pow; using std::sqrt;
#define __device__
#define __forceinline__ inline
#define CUDART_NAN (std::numeric_limits<double>::quiet_NaN())
#define CUDART_INF (std::numeric_limits<double>::infinity())
#define CUDART_NAN_F (std::numeric_limits<float>::quiet_NaN())
#define CUDART_INF_F (std::numeric_limits<float>::infinity())
"""

_BUILD_DIR = Path(tempfile.gettempdir()) / "minjiang-bandmath-host"


def host_elementwise(
    in_dtypes: Sequence[Any], out_dtype: Any, operation: str, preamble: str
) -> Callable[[Sequence[np.ndarray], np.ndarray], None]:
    """Compile an ElementwiseKernel body for the host: ``run(inputs, out)`` fills ``out``.

    Inputs are ``a0, a1, ...`` of ``in_dtypes`` and the output ``mj_out`` of
    ``out_dtype``, as the GPU kernel declares them.
    """
    names = [np.dtype(d).name for d in in_dtypes]
    out_name = np.dtype(out_dtype).name
    params = ", ".join(f"const {_CTYPES[n]}* a{i}_" for i, n in enumerate(names))
    loads = "".join(f"    const {_CTYPES[n]} a{i} = a{i}_[i];\n" for i, n in enumerate(names))
    source = (
        f"{_HOST_PRELUDE}{preamble}\n"
        f'extern "C" void run(long n, {_CTYPES[out_name]}* out_{", " if params else ""}{params}) {{\n'
        f"  for (long i = 0; i < n; ++i) {{\n{loads}"
        f"    {_CTYPES[out_name]}& mj_out = out_[i];\n"
        f"    {operation}  }}\n}}\n"
    )
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    _BUILD_DIR.mkdir(exist_ok=True)
    library = _BUILD_DIR / f"k{digest}.so"
    if not library.exists():
        src = _BUILD_DIR / f"k{digest}.cpp"
        src.write_text(source)
        tmp = library.with_suffix(f".{id(source)}.tmp")
        # no fast-math, no contraction: IEEE semantics as on the GPU without fast-math
        subprocess.run(
            [
                "g++",
                "-std=c++17",
                "-O1",
                "-ffp-contract=off",
                "-shared",
                "-fPIC",
                str(src),
                "-o",
                str(tmp),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        tmp.replace(library)
    run = ctypes.CDLL(str(library)).run

    def call(inputs: Sequence[np.ndarray], out: np.ndarray) -> None:
        flat = [np.ascontiguousarray(a, dtype=d) for a, d in zip(inputs, names, strict=True)]
        assert out.flags.c_contiguous and out.dtype == np.dtype(out_name)
        pointers = [ctypes.c_void_p(a.ctypes.data) for a in flat]
        run(ctypes.c_long(out.size), ctypes.c_void_p(out.ctypes.data), *pointers)

    return call


def _evaluate_on_host(expr: str, arrays: dict[str, np.ndarray], dtype: Any) -> np.ndarray:
    expression = compile_expression(expr, list(arrays))
    inputs = [arrays[n] for n in expression.names]
    op = bandmath_gpu.operation(expression.tree, len(inputs), np.dtype(dtype))
    run = host_elementwise([a.dtype for a in inputs], dtype, op, bandmath_gpu.PREAMBLE)
    out = np.empty(inputs[0].shape, dtype=dtype)
    run(inputs, out)
    return out


EXPRESSIONS = [
    "(nir - red) / (nir + red)",
    "2.5 * (nir - red) / (nir + 6 * red - 7.5 * blue + 1)",
    "-nir ** 2 + red ** 0.5",
    "sqrt(abs(nir)) + exp(-red) - log(abs(blue)) + log10(abs(nir) + 1)",
    "minimum(nir, red) + maximum(red, blue)",
    "where(nir > red, nir, blue)",
    "where(isnan(nir), 0, nir) + isfinite(red)",
    "clip(nir, -0.5, red)",
    "(nir >= red) * 2 + (red != blue) - (nir == nir) + (red < blue) - (blue <= nir)",
    "where(nir <= 0, nan, nir) * pi + 0 * inf - inf * (red > 10)",
    "where(red, nir, 1e300) + 0.1",
]


def _bands(rng: np.random.Generator, dtype: Any) -> dict[str, np.ndarray]:
    bands = {k: rng.standard_normal(64).astype(dtype) for k in ("nir", "red", "blue")}
    bands["nir"][:4] = [np.nan, 0.0, np.inf, -0.0]
    # no -inf in red: red ** 0.5 of -inf is +inf in C (and in the numba CPU kernel)
    # where NumPy's vectorised power may give NaN
    bands["red"][:6] = [1.0, 0.0, np.inf, np.nan, -2.0, 0.0]
    bands["blue"][:5] = [np.nan, 0.0, -np.inf, 2.0, np.inf]
    return bands


def _compiler_missing() -> str | None:
    return None if shutil.which("g++") else "no host C++ compiler (g++)"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_generated_cuda_c_matches_reference(rng, expr, dtype):
    reason = _compiler_missing()
    if reason is not None:
        pytest.skip(reason)
    bands = _bands(rng, dtype)
    expression = compile_expression(expr, list(bands))
    inputs = [bands[n] for n in expression.names]
    expected = _reference.band_math(expression.tree, inputs, np.dtype(dtype))
    got = _evaluate_on_host(expr, bands, dtype)
    tol = TOLERANCE[np.dtype(dtype)]
    finite = np.abs(expected[np.isfinite(expected)])
    scale = max(1.0, float(finite.max())) if finite.size else 1.0
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol * scale, equal_nan=True)


def test_mixed_input_types_convert_like_numpy():
    reason = _compiler_missing()
    if reason is not None:
        pytest.skip(reason)
    arrays = {
        "a": np.array([0, 1, 200, 255], dtype=np.uint8),
        "m": np.array([True, False, True, False]),
        "b": np.array([-3, 0, 7, 2**40], dtype=np.int64),
    }
    for dtype in (np.float32, np.float64):
        got = _evaluate_on_host("where(m, a / 2, -b) + m", arrays, dtype)
        expected = band_math_reference("where(m, a / 2, -b) + m", arrays, dtype)
        np.testing.assert_array_equal(got, expected)


def band_math_reference(expr: str, arrays: dict[str, np.ndarray], dtype: Any) -> np.ndarray:
    """The NumPy reference of ``expr`` in ``dtype``."""
    expression = compile_expression(expr, list(arrays))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _reference.band_math(
            expression.tree, [arrays[n] for n in expression.names], np.dtype(dtype)
        )


def test_nan_propagation_of_minimum_and_maximum_is_numpys():
    reason = _compiler_missing()
    if reason is not None:
        pytest.skip(reason)
    a = np.array([np.nan, 1.0, np.nan, 2.0, -0.0])
    b = np.array([1.0, np.nan, np.nan, 3.0, 0.0])
    got = _evaluate_on_host("minimum(a, b) + 10 * maximum(a, b)", {"a": a, "b": b}, np.float64)
    expected = np.minimum(a, b) + 10 * np.maximum(a, b)
    np.testing.assert_array_equal(got, expected)


def test_generated_source_has_no_user_text():
    tree = compile_expression("sqrt(nirband) + redband * 1e-3 + nan", ["nirband", "redband"]).tree
    op = bandmath_gpu.operation(tree, 2, np.dtype(np.float32))
    assert "sqrt(v0)" in op and "((float)0.001)" in op and "CUDART_NAN_F" in op
    assert "nirband" not in op and "redband" not in op  # names become argument positions


def test_generated_cuda_c_compiles_for_hopper(tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not installed")
    bodies = []
    for i, expr in enumerate(EXPRESSIONS):
        tree = compile_expression(expr, ["nir", "red", "blue"]).tree
        n = 3
        for dtype, ctype in ((np.float32, "float"), (np.float64, "double")):
            op = bandmath_gpu.operation(tree, n, np.dtype(dtype))
            params = ", ".join(f"const double* a{k}_" for k in range(n))
            loads = "".join(f"  const double a{k} = a{k}_[i];\n" for k in range(n))
            bodies.append(
                f"__global__ void k{i}_{ctype}({ctype}* out_, {params}, long n) {{\n"
                f"  long i = blockIdx.x * (long)blockDim.x + threadIdx.x;\n  if (i >= n) return;\n"
                f"{loads}  {ctype}& mj_out = out_[i];\n  {op}}}\n"
            )
    source = tmp_path / "bandmath.cu"
    source.write_text("#include <math_constants.h>\n" + bandmath_gpu.PREAMBLE + "\n".join(bodies))
    result = subprocess.run(
        [nvcc, "-arch=sm_90", "-c", str(source), "-o", str(tmp_path / "bandmath.o")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]

"""CuPy band math: one fused ``ElementwiseKernel`` generated from the expression tree.

The kernel body is CUDA C written from the tree that ``_expression`` parsed and
validated, as the numba loop of ``_cpu`` is written in Python: names become argument
positions, numbers become typed literals, and only whitelisted functions appear, so
nothing the user wrote reaches the compiler. Each element is loaded once, converted to
the compute type, the whole expression is evaluated in registers and the result stored:
one read per input and one write, whatever the expression's size, and no temporaries.

Why an ``ElementwiseKernel`` and not ``numba.cuda``: band math is a pure streaming kernel,
so both reach the same memory-bound speed once compiled. CuPy's kernel indexes strided
and 0-d inputs itself (no copies for views), compiles through NVRTC with an on-disk
cache shared by processes, and launches without numba's ``__cuda_array_interface__``
conversion per argument. The generated C is checked here without a GPU by compiling it
for the host (``tests/kernels/test_gpu_bandmath.py``).

Semantics follow NumPy as the reference does: IEEE arithmetic in the result type (no
fast-math, so NaN and inf behave), comparisons with NaN false (``!=`` true),
``minimum``/``maximum``/``clip`` propagate NaN as ``numpy.minimum`` does, and a boolean
used as a number is 1 or 0. Transcendental functions (``exp``, ``log``, ``**``...) use
CUDA's libdevice, whose results may differ from the host's libm in the last bits
(within the float32/float64 test tolerances, not bit for bit).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from minjiang.kernels import _cuda
from minjiang.kernels.bandmath._expression import Node

__all__ = ["PREAMBLE", "band_math", "operation"]

#: CUDA C helpers the generated expressions call; NumPy's NaN-propagating min and max
PREAMBLE = """
template <typename T>
__device__ __forceinline__ T mj_minimum(T a, T b) { return (a <= b || a != a) ? a : b; }
template <typename T>
__device__ __forceinline__ T mj_maximum(T a, T b) { return (a >= b || a != a) ? a : b; }
"""

_CTYPE = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
# CuPy's generated kernels define these (CuPy writes them for NaN/inf scalars itself).
_SPECIAL = {
    "float": ("CUDART_NAN_F", "CUDART_INF_F"),
    "double": ("CUDART_NAN", "CUDART_INF"),
}

_CALLS = {
    "sqrt": "sqrt({0})",
    "exp": "exp({0})",
    "log": "log({0})",
    "log10": "log10({0})",
    "abs": "fabs({0})",
    "minimum": "mj_minimum({0}, {1})",
    "maximum": "mj_maximum({0}, {1})",
    "where": "(({0}) ? ({1}) : ({2}))",
    "clip": "mj_minimum(mj_maximum({0}, {1}), {2})",
    "isnan": "isnan({0})",
    "isfinite": "isfinite({0})",
}


def _literal(value: float, ctype: str) -> str:
    nan, inf = _SPECIAL[ctype]
    if math.isnan(value):
        return f"(({ctype}){nan})"
    if math.isinf(value):
        return f"(({ctype}){inf})" if value > 0 else f"(-({ctype}){inf})"
    # repr is the shortest decimal that reads back as the same double; the cast then
    # rounds it to float exactly as numpy.float32(value) does.
    return f"(({ctype}){value!r})"


def _code(node: Node, ctype: str) -> str:
    op = node[0]
    if op == "name":
        return f"v{node[1]}"
    if op == "const":
        return _literal(node[1], ctype)
    if op == "binop":
        left, right = _code(node[2], ctype), _code(node[3], ctype)
        if node[1] == "**":
            return f"pow({left}, {right})"
        return f"({left} {node[1]} {right})"
    if op == "cmp":
        return f"({_code(node[2], ctype)} {node[1]} {_code(node[3], ctype)})"
    if op == "neg":
        return f"(-{_code(node[1], ctype)})"
    if op == "tonum":
        return f"(({_code(node[1], ctype)}) ? ({ctype})1 : ({ctype})0)"
    if op == "call":
        return _CALLS[node[1]].format(*(_code(a, ctype) for a in node[2]))
    raise AssertionError(f"unknown band-math node {op!r}")


def operation(tree: Node, n_arrays: int, dtype: np.dtype) -> str:
    """CUDA C body of the kernel: inputs ``a0..``, output ``mj_out``, in ``dtype``."""
    ctype = _CTYPE[np.dtype(dtype)]
    loads = "".join(f"const {ctype} v{i} = ({ctype})a{i};\n" for i in range(n_arrays))
    return f"{loads}mj_out = {_code(tree, ctype)};\n"


def _build(tree: Node, in_dtypes: tuple[str, ...], dtype: np.dtype) -> Any:
    import cupy

    in_params = ", ".join(f"{np.dtype(d).name} a{i}" for i, d in enumerate(in_dtypes))
    return cupy.ElementwiseKernel(
        in_params,
        f"{dtype.name} mj_out",
        operation(tree, len(in_dtypes), dtype),
        name="minjiang_band_math",
        preamble=PREAMBLE,
    )


def band_math(tree: Node, arrays: Sequence[Any], dtype: np.dtype, shape: tuple[int, ...]) -> Any:
    """Evaluate ``tree`` on CuPy ``arrays`` of ``shape`` (any strides), in ``dtype``."""
    import cupy

    out = cupy.empty(shape, dtype=dtype)
    if out.size == 0:
        return out
    key = ("band_math", tree, tuple(a.dtype.str for a in arrays), dtype.str)
    kernel = _cuda.cached(key, lambda: _build(tree, tuple(a.dtype.str for a in arrays), dtype))
    kernel(*arrays, out)
    return out

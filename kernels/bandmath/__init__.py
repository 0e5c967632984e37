"""Band math: elementwise arithmetic expressions over named arrays.

An expression such as ``"(nir - red) / (nir + red)"`` is parsed once with :mod:`ast`
into a whitelisted tree (:func:`compile_expression`); :func:`band_math` evaluates it
with NumPy (``backend="reference"``) or as one fused numba loop (``"cpu"``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from minjiang.kernels._dispatch import resolve_backend
from minjiang.kernels.bandmath._expression import CONSTANTS, FUNCTIONS, Node, check_names, parse

__all__ = ["CONSTANTS", "FUNCTIONS", "Expression", "band_math", "compile_expression"]


@dataclasses.dataclass(frozen=True)
class Expression:
    """A validated band-math expression; build it with :func:`compile_expression`.

    Attributes
    ----------
    source : str
        The expression as written.
    names : tuple of str
        The arrays it reads, in order of first appearance (a subset of the names it
        was compiled against).
    """

    source: str
    names: tuple[str, ...]
    tree: Node = dataclasses.field(repr=False)

    def __str__(self) -> str:
        return self.source


def compile_expression(expr: str, names: Sequence[str]) -> Expression:
    """Parse and validate a band-math expression.

    Parameters
    ----------
    expr : str
        An arithmetic expression: numbers, the array ``names``, ``+ - * / **``, unary
        ``-``, comparisons ``< <= > >= == !=``, the constants ``nan``, ``inf``, ``pi``
        and the functions ``sqrt exp log log10 abs minimum maximum where clip isnan
        isfinite`` (NumPy semantics). A comparison is 1 or 0 when used as a number.
    names : sequence of str
        The arrays the expression may read.

    Returns
    -------
    Expression

    Raises
    ------
    ValueError
        Naming the offending piece: a syntax error, an unknown name, or anything
        outside the whitelist (attributes, subscripts, lambdas, other calls).
    """
    declared = check_names(names, "compile_expression")
    tree, used = parse(expr, declared, "compile_expression")
    return Expression(source=expr, names=used, tree=tree)


def _result_dtype(dtype: Any, arrays: Sequence[np.ndarray]) -> np.dtype:
    if dtype is None:
        if all(a.dtype == np.float32 for a in arrays):
            return np.dtype(np.float32)
        return np.dtype(np.float64)
    try:
        chosen = np.dtype(dtype)
    except TypeError:
        raise TypeError(
            f"band_math: dtype={dtype!r} is not a NumPy dtype; use 'float32' or 'float64'"
        ) from None
    if chosen not in (np.float32, np.float64):
        raise TypeError(
            f"band_math: dtype={chosen.name!r} is not supported; expressions are evaluated "
            "in 'float32' or 'float64' (cast the result afterwards for other types)"
        )
    return chosen


def band_math(
    expr: str | Expression,
    arrays: Mapping[str, Any],
    *,
    dtype: Any = None,
    backend: str | None = None,
    out: np.ndarray | None = None,
) -> Any:
    """Evaluate a band-math expression elementwise over equally shaped arrays.

    Parameters
    ----------
    expr : str or Expression
        The expression (see :func:`compile_expression`); a string is compiled against
        the keys of ``arrays``.
    arrays : mapping of str to ndarray
        The named inputs; every array the expression reads must be present, and all of
        them must have the same shape (no broadcasting). Keys it does not read are
        ignored.
    dtype : {None, "float32", "float64"}
        The type the expression is evaluated in and returned as. Default: float32 when
        every array read is float32, float64 otherwise.
    backend : {"reference", "cpu", "gpu"}, optional
        Defaults to the inputs' array type (NumPy -> ``"cpu"``).
    out : ndarray, optional
        A C-contiguous host array of the inputs' shape and the result's dtype to write
        the result into (``reference`` and ``cpu``): a kernel worked in steps passes
        the same one each step instead of faulting in a new array.

    Returns
    -------
    ndarray
        ``out``, or a new array of the inputs' shape. Division by zero, ``log(0)`` and
        the like give inf or NaN as in NumPy, without warnings; NaN inputs propagate.
    """
    if not isinstance(arrays, Mapping):
        raise TypeError(
            f"band_math: arrays must be a mapping of name -> array, got {type(arrays).__name__}"
        )
    if isinstance(expr, Expression):
        expression = expr
    elif isinstance(expr, str):
        expression = compile_expression(expr, list(arrays))
    else:
        raise TypeError(
            f"band_math: expr must be a str or an Expression, got {type(expr).__name__}"
        )
    missing = [n for n in expression.names if n not in arrays]
    if missing:
        raise ValueError(
            f"band_math: expression {expression.source!r} reads {missing!r}, which are not "
            f"among the arrays given {sorted(arrays)!r}"
        )
    inputs = [arrays[n] for n in expression.names]
    chosen = resolve_backend(backend, *inputs, kernel="band_math", has_gpu=True)
    if chosen != "gpu":
        inputs = [np.asarray(a) for a in inputs]
    for name, a in zip(expression.names, inputs, strict=True):
        if a.dtype.kind not in "biuf":
            raise TypeError(
                f"band_math: array {name!r} has dtype {a.dtype.name!r}; expected a real "
                "number type (bool, integer or float)"
            )
    shapes = {a.shape for a in inputs}
    if len(shapes) > 1:
        listing = ", ".join(
            f"{n}: {a.shape}" for n, a in zip(expression.names, inputs, strict=True)
        )
        raise ValueError(
            f"band_math: arrays must all have the same shape, got {listing}; "
            "band math does not broadcast, so expand or slice the inputs first"
        )
    out_dtype = _result_dtype(dtype, inputs)
    if out is not None:
        _check_out(out, chosen, inputs[0].shape, out_dtype)
    if chosen == "reference":
        from minjiang.kernels.bandmath import _reference

        result = _reference.band_math(expression.tree, inputs, out_dtype)
        if out is None:
            return result
        out[...] = result
        return out
    if chosen == "gpu":
        from minjiang.kernels.bandmath import _gpu

        return _gpu.band_math(expression.tree, inputs, out_dtype, inputs[0].shape)
    from minjiang.kernels.bandmath import _cpu

    contiguous = [np.ascontiguousarray(a) for a in inputs]
    return _cpu.band_math(expression.tree, contiguous, out_dtype, inputs[0].shape, out)


def _check_out(out: Any, backend: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
    if backend == "gpu" or not isinstance(out, np.ndarray):
        raise TypeError(
            f"band_math: out must be a NumPy array on the 'cpu' or 'reference' backend, got "
            f"{type(out).__name__} on {backend!r}; leave out=None on the GPU"
        )
    if out.shape != shape or out.dtype != dtype or not out.flags.c_contiguous:
        raise ValueError(
            f"band_math: out is a {'C-contiguous' if out.flags.c_contiguous else 'strided'} "
            f"{out.shape} {out.dtype} array; the result needs a C-contiguous {shape} {dtype} one"
        )
    if not out.flags.writeable:
        raise ValueError("band_math: out is read-only; pass a writable array")

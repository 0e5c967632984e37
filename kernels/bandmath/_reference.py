"""NumPy specification of band math: evaluate the expression tree array by array."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from minjiang.kernels.bandmath._expression import Node

_BINOPS = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.true_divide,
    "**": np.power,
}
_CMPOPS = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": np.sqrt,
    "exp": np.exp,
    "log": np.log,
    "log10": np.log10,
    "abs": np.abs,
    "minimum": np.minimum,
    "maximum": np.maximum,
    "where": np.where,
    "clip": np.clip,
    "isnan": np.isnan,
    "isfinite": np.isfinite,
}


def band_math(tree: Node, arrays: Sequence[np.ndarray], dtype: np.dtype) -> np.ndarray:
    """Evaluate ``tree`` on ``arrays`` (all of one shape) in ``dtype``."""
    shape = arrays[0].shape
    values = [np.asarray(a, dtype=dtype) for a in arrays]
    with np.errstate(all="ignore"):  # x / 0, log(0), sqrt(-1) give inf / nan, as NumPy does
        result = _eval(tree, values, dtype.type)
    return np.array(np.broadcast_to(result, shape), dtype=dtype)


def _eval(node: Node, values: list[np.ndarray], scalar: Any) -> Any:
    op = node[0]
    if op == "name":
        return values[node[1]]
    if op == "const":
        return scalar(node[1])
    if op == "binop":
        return _BINOPS[node[1]](_eval(node[2], values, scalar), _eval(node[3], values, scalar))
    if op == "neg":
        return np.negative(_eval(node[1], values, scalar))
    if op == "cmp":
        return _CMPOPS[node[1]](_eval(node[2], values, scalar), _eval(node[3], values, scalar))
    if op == "tonum":
        return np.asarray(_eval(node[1], values, scalar)).astype(scalar)
    if op == "call":
        args = [_eval(a, values, scalar) for a in node[2]]
        return _FUNCTIONS[node[1]](*args)
    raise AssertionError(f"unknown band-math node {op!r}")

"""Parse a band-math expression into a small, validated, hashable tree.

The tree (nested tuples) is what both evaluators walk, so nothing the user wrote is
ever executed or pasted into generated code: names become argument positions and
numbers become float literals.

Nodes::

    ("name", index)              array number ``index`` of ``Expression.names``
    ("const", value)             a float
    ("binop", op, left, right)   op in + - * / **
    ("neg", operand)
    ("cmp", op, left, right)     op in < <= > >= == !=   (boolean)
    ("call", function, args)     a whitelisted function
    ("tonum", operand)           a boolean used as a number

Every node has a *kind*, ``"num"`` or ``"bool"`` (comparisons, ``isnan``,
``isfinite``); :func:`as_num` and :func:`as_bool` mark the conversions explicitly so
that both evaluators convert in the same places (``True`` -> 1, nonzero -> ``True``).
"""

from __future__ import annotations

import ast
import keyword
import math
from collections.abc import Sequence
from typing import Any

Node = tuple[Any, ...]

#: function name -> (number of arguments, result kind)
FUNCTIONS: dict[str, tuple[int, str]] = {
    "sqrt": (1, "num"),
    "exp": (1, "num"),
    "log": (1, "num"),
    "log10": (1, "num"),
    "abs": (1, "num"),
    "minimum": (2, "num"),
    "maximum": (2, "num"),
    "where": (3, "num"),
    "clip": (3, "num"),
    "isnan": (1, "bool"),
    "isfinite": (1, "bool"),
}
#: named constants usable in expressions
CONSTANTS: dict[str, float] = {"nan": math.nan, "inf": math.inf, "pi": math.pi}

_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_CMPOPS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}
_MAX_SOURCE = 10_000

_ALLOWED = (
    "numbers, array names, + - * / ** and unary -, comparisons (< <= > >= == !=), "
    f"the constants {', '.join(CONSTANTS)} and the functions {', '.join(FUNCTIONS)}"
)


def kind(node: Node) -> str:
    """``"bool"`` or ``"num"``: what the node evaluates to."""
    if node[0] == "cmp":
        return "bool"
    if node[0] == "call":
        return FUNCTIONS[node[1]][1]
    return "num"


def check_names(names: Sequence[str], where: str) -> tuple[str, ...]:
    """Validate the declared array names."""
    if isinstance(names, str):
        raise TypeError(f"{where}: names must be a sequence of strings, not the string {names!r}")
    out = tuple(names)
    for name in out:
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(
                f"{where}: array name {name!r} is not a valid identifier; use letters, "
                "digits and underscores, not starting with a digit"
            )
        if name in FUNCTIONS or name in CONSTANTS:
            raise ValueError(
                f"{where}: array name {name!r} is reserved for a function or constant of "
                "band-math expressions; rename the array"
            )
    if len(set(out)) != len(out):
        dupes = sorted({n for n in out if out.count(n) > 1})
        raise ValueError(f"{where}: array names {dupes!r} are given more than once")
    return out


def parse(source: str, names: tuple[str, ...], where: str) -> tuple[Node, tuple[str, ...]]:
    """Return ``(tree, used_names)``; ``used_names`` in order of first appearance."""
    if not isinstance(source, str):
        raise TypeError(f"{where}: expression must be a str, got {type(source).__name__}")
    if len(source) > _MAX_SOURCE:
        raise ValueError(
            f"{where}: expression is {len(source)} characters long, more than the "
            f"{_MAX_SOURCE} allowed; split it into several steps"
        )
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as err:
        raise ValueError(
            f"{where}: cannot parse expression {source!r}: {err.msg} (column {err.offset})"
        ) from None
    except (RecursionError, MemoryError):
        raise ValueError(f"{where}: expression {source!r} is nested too deeply") from None
    builder = _Builder(source.strip(), names, where)
    try:
        node = builder.build(tree.body)
    except RecursionError:
        raise ValueError(f"{where}: expression {source!r} is nested too deeply") from None
    if not builder.used:
        raise ValueError(
            f"{where}: expression {source!r} reads no array; it must use at least one of "
            f"the names {list(names)!r}"
        )
    return node, tuple(builder.used)


class _Builder:
    def __init__(self, source: str, names: tuple[str, ...], where: str) -> None:
        self.source = source
        self.names = names
        self.where = where
        self.used: list[str] = []

    def _reject(self, node: ast.AST, what: str) -> ValueError:
        piece = ast.get_source_segment(self.source, node) or type(node).__name__
        return ValueError(
            f"{self.where}: {what} {piece!r} is not allowed in a band-math expression; "
            f"allowed: {_ALLOWED}"
        )

    def build(self, node: ast.AST) -> Node:
        if isinstance(node, ast.BinOp):
            op = _BINOPS.get(type(node.op))
            if op is None:
                raise self._reject(node, "operator")
            return ("binop", op, self.num(node.left), self.num(node.right))
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return ("neg", self.num(node.operand))
            if isinstance(node.op, ast.UAdd):
                return self.num(node.operand)
            raise self._reject(node, "operator")
        if isinstance(node, ast.Compare):
            if len(node.ops) != 1:
                raise ValueError(
                    f"{self.where}: chained comparison "
                    f"{ast.get_source_segment(self.source, node)!r} is not supported; compare "
                    "two values at a time, e.g. where(a < b, b < c, 0) for a < b < c"
                )
            op = _CMPOPS.get(type(node.ops[0]))
            if op is None:
                raise self._reject(node, "comparison")
            return ("cmp", op, self.num(node.left), self.num(node.comparators[0]))
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise self._reject(node, "constant")
            try:
                return ("const", float(value))
            except OverflowError:
                raise self._reject(node, "integer too large for a float,") from None
        if isinstance(node, ast.Name):
            if node.id in self.names:
                if node.id not in self.used:
                    self.used.append(node.id)
                return ("name", self.used.index(node.id))
            if node.id in CONSTANTS:
                return ("const", CONSTANTS[node.id])
            raise ValueError(
                f"{self.where}: unknown name {node.id!r}; the arrays are "
                f"{list(self.names)!r} and the constants {list(CONSTANTS)!r}"
            )
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Attribute):
            raise self._reject(node, "attribute access")
        if isinstance(node, ast.Subscript):
            raise self._reject(node, "subscript")
        if isinstance(node, ast.Lambda):
            raise self._reject(node, "lambda")
        raise self._reject(node, f"{type(node).__name__} expression")

    def num(self, node: ast.AST) -> Node:
        return as_num(self.build(node))

    def call(self, node: ast.Call) -> Node:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise self._reject(node, "call")
        name = node.func.id
        arity = FUNCTIONS[name][0]
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise self._reject(node, "call with keyword or starred arguments")
        if len(node.args) != arity:
            raise ValueError(
                f"{self.where}: {name}() takes {arity} argument(s), got {len(node.args)} in "
                f"{ast.get_source_segment(self.source, node)!r}"
            )
        if name == "where":
            cond = as_bool(self.build(node.args[0]))
            return ("call", name, (cond, self.num(node.args[1]), self.num(node.args[2])))
        return ("call", name, tuple(self.num(a) for a in node.args))


def as_num(node: Node) -> Node:
    """Wrap a boolean node so it evaluates to 1.0 / 0.0."""
    return ("tonum", node) if kind(node) == "bool" else node


def as_bool(node: Node) -> Node:
    """Wrap a numeric node so it evaluates to ``value != 0``."""
    return node if kind(node) == "bool" else ("cmp", "!=", node, ("const", 0.0))

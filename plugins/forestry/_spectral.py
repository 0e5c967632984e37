"""Spectral index formulas: the Awesome Spectral Indices catalogue (spyndex) or a formula.

A formula is rewritten once, before planning, into a band-math expression
(:mod:`minjiang.kernels.bandmath`): catalogue constants (``L``, ``g``, ``C1``...) become
numbers (spyndex's defaults, or the values given), and every division ``x / y``
becomes ``where(y == 0, nan, x / y)``, so that a zero denominator gives NaN and never
an infinity.
"""

from __future__ import annotations

import ast
import functools
from typing import Any

from minjiang.core.errors import ContractError, ParameterError

__all__ = ["BANDS", "Formula", "resolve_formula"]

#: the band symbols of the catalogue (spyndex's bands plus the radar polarisations)
BANDS = (
    "A", "B", "G", "G1", "N", "N2", "R", "RE1", "RE2", "RE3", "S1", "S2",
    "T", "T1", "T2", "WV", "Y", "HH", "HV", "VH", "VV",
)  # fmt: skip


@functools.lru_cache(maxsize=1)
def _catalogue() -> tuple[dict[str, Any], dict[str, float | None]]:
    import spyndex

    indices = {name: idx for name, idx in spyndex.indices.items()}
    constants = {name: c.default for name, c in spyndex.constants.items()}
    return indices, constants


class Formula:
    """A resolved formula: the expression to evaluate and the bands it reads, in order."""

    def __init__(self, name: str, source: str, expression: str, bands: tuple[str, ...]) -> None:
        self.name, self.source, self.expression, self.bands = name, source, expression, bands


class _Rewrite(ast.NodeTransformer):
    def __init__(self, constants: dict[str, float], where: str) -> None:
        self.constants, self.where = constants, where
        self.bands: list[str] = []

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in BANDS:
            if node.id not in self.bands:
                self.bands.append(node.id)
            return node
        if node.id in self.constants:
            return ast.copy_location(ast.Constant(float(self.constants[node.id])), node)
        raise ParameterError(
            f"{self.where}: the formula uses {node.id!r}, which is neither a band "
            f"({', '.join(BANDS)}) nor a constant given in 'constants'"
        )

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        node = self.generic_visit(node)  # type: ignore[assignment]
        if isinstance(node.op, ast.Div):
            guard = ast.Call(
                func=ast.Name("where", ast.Load()),
                args=[
                    ast.Compare(node.right, [ast.Eq()], [ast.Constant(0.0)]),
                    ast.Name("nan", ast.Load()),
                    node,
                ],
                keywords=[],
            )
            return ast.copy_location(guard, node)
        return node


def resolve_formula(
    index: str | None, formula: str | None, constants: dict[str, float], where: str
) -> Formula:
    """The expression for a catalogue ``index`` or a ``formula`` over band symbols.

    Raises
    ------
    ParameterError
        Unknown index (with close names), a constant without a default that is not
        given, a formula that does not parse, or neither/both of index and formula.
    """
    if (index is None) == (formula is None):
        raise ParameterError(f"{where}: give exactly one of 'index' and 'formula'")
    indices, defaults = _catalogue()
    if index is not None:
        if index not in indices:
            import difflib

            close = difflib.get_close_matches(index, list(indices), n=3)
            raise ParameterError(
                f"{where}: {index!r} is not an index of the Awesome Spectral Indices catalogue"
                + (f"; did you mean {close!r}?" if close else "")
            )
        entry = indices[index]
        if getattr(entry, "application_domain", "") == "kernel":
            raise ParameterError(
                f"{where}: {index!r} is a kernel index (it needs kernel values such as kNN, "
                "not bands); it is not supported: use its band formula as 'formula' instead"
            )
        source, name = str(entry.formula), index
    else:
        source, name = str(formula), "formula"
    values: dict[str, float] = {}
    for k, v in defaults.items():
        if v is not None:
            values[k] = float(v)
    values.update({k: float(v) for k, v in constants.items()})
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as err:
        raise ParameterError(f"{where}: the formula does not parse ({err.msg})") from None
    missing = sorted(
        {
            n.id
            for n in ast.walk(tree)
            if isinstance(n, ast.Name) and n.id in defaults and n.id not in values
        }
    )
    if missing:
        raise ParameterError(
            f"{where}: {name!r} needs the constants {missing!r}, which have no default; "
            "give them in 'constants'"
        )
    rw = _Rewrite(values, where)
    new = ast.fix_missing_locations(rw.visit(tree))
    if not rw.bands:
        raise ParameterError(f"{where}: the formula reads no band ({', '.join(BANDS)})")
    expression = ast.unparse(new)
    from minjiang.kernels.bandmath import compile_expression

    try:
        compile_expression(expression, list(rw.bands))
    except ValueError as err:
        raise ContractError(f"{where}: {err}") from None
    return Formula(name, source, expression, tuple(rw.bands))

"""A test plugin: a full-axis operator whose output has another size along its axis
(pairs of cells averaged along x), and a map that tries the same."""

from __future__ import annotations

from typing import Any

import numpy as np
from minjiang.core import ArrayOutput, FullAxis, Input, Map, Operator, hookimpl


def _halved(params: Any, inputs: dict[str, Any]) -> tuple[ArrayOutput, ...]:
    n = inputs["x"].shape[inputs["x"].dims.index("x")] // 2
    return (
        ArrayOutput(
            "half", dtype="float64", sizes={"x": n}, coords={"x": np.arange(n) * 2.0 + 0.5}
        ),
    )


def halve(arrays: dict[str, Any], params: Any, ctx: Any) -> dict[str, Any]:
    x = np.asarray(arrays["x"], dtype=np.float64)
    n = x.shape[-1] // 2
    return {"half": (x[..., 0 : 2 * n : 2] + x[..., 1 : 2 * n : 2]) / 2}


HALVE = Operator(
    name="testlab.halve",
    version="1",
    inputs=(Input("x", dims=("y", "x")),),
    outputs=_halved,
    pattern=FullAxis(dims=("x",), kernel=halve),
)
HALVE_MAP = Operator(
    name="testlab.halve_map",
    version="1",
    inputs=(Input("x", dims=("y", "x")),),
    outputs=_halved,
    pattern=Map(kernel=halve),
)


@hookimpl
def minjiang_register_operators() -> list[Operator]:
    return [HALVE, HALVE_MAP]

"""A tiny in-test executor of operator patterns over blocks (an oracle independent of
the runtime): Map and Aggregate kernels get blocks padded by their halo with the
declared boundary, and a BlockContext; a FullAxis kernel gets the whole array;
Composite sub-steps are chained, expanded as if every sub-step fitted the memory
budget (``fits=True``) or none did."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
from minjiang.core._operator import (
    Aggregate,
    BlockContext,
    Composite,
    ExpandContext,
    FullAxis,
    Map,
    import_dotted,
)
from minjiang.kernels.gaussian import pad_boundary

DIMS = ("z", "y", "x")


class Info:
    """What a halo/outputs callable sees of an input."""

    def __init__(self, x: np.ndarray, attrs: Mapping[str, Any]) -> None:
        self.shape, self.dtype, self.attrs, self.dims = x.shape, str(x.dtype), dict(attrs), DIMS


def _blocks(shape: tuple[int, ...], block: tuple[int, ...]) -> list[tuple[slice, ...]]:
    return [
        tuple(slice(i * b, min((i + 1) * b, n)) for i, b, n in zip(idx, block, shape, strict=True))
        for idx in itertools.product(
            *[range(-(-n // b)) for n, b in zip(shape, block, strict=True)]
        )
    ]


def _resolve(spec: Any, params: Any, infos: Mapping[str, Info]) -> Any:
    return spec(params, infos) if callable(spec) else spec


def run(
    op: Any,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any],
    attrs: Mapping[str, Any],
    block: tuple[int, ...],
    *,
    fits: bool = False,
) -> dict[str, Any]:
    """Run ``op`` on ``inputs`` (arrays or pyarrow tables) block by block."""
    model = op.validate_params(params)
    arrays = {k: v for k, v in inputs.items() if isinstance(v, np.ndarray)}
    tables = {k: v for k, v in inputs.items() if not isinstance(v, np.ndarray)}
    infos = {k: Info(v, attrs) for k, v in arrays.items()}
    pattern = op.pattern
    if isinstance(pattern, Composite):
        local: dict[str, Any] = {}
        out: dict[str, Any] = {}
        plan = ExpandContext(budget=0, workers=1, _fits=lambda *_: fits)
        for sub in pattern.sub_steps(model, infos, plan):
            sub_inputs = {}
            for name, ref in sub.inputs.items():
                if ref in local:
                    res = local[ref]
                    sub_inputs[name] = next(iter(res.values()))
                else:
                    sub_inputs[name] = inputs[ref]
            out = run(sub.operator, sub_inputs, dict(sub.params), attrs, block, fits=fits)
            local[sub.id] = out
        return out
    primary = arrays[op.primary.name]
    shape = primary.shape
    if isinstance(pattern, FullAxis):
        assert set(_resolve(pattern.dims, model, infos)) == set(DIMS), "whole arrays only"
        block = shape
        halo, boundary = {}, "constant"
    else:
        halo = _resolve(pattern.halo, model, infos) or {}
        boundary = pattern.boundary(model) if callable(pattern.boundary) else pattern.boundary
    outs = {o.name: o for o in op.resolve_outputs(model, infos)}
    results: dict[str, Any] = {}
    states = []
    # the whole array padded once: true-edge padding (wrap included) is then exact
    padded = {
        k: pad_boundary(x, [(halo.get(d, 0),) * 2 for d in DIMS], boundary)
        for k, x in arrays.items()
    }
    for region in _blocks(shape, block):
        got = {
            k: x[
                tuple(
                    slice(s.start, s.stop + 2 * halo.get(d, 0))
                    for s, d in zip(region, DIMS, strict=True)
                )
            ]
            for k, x in padded.items()
        }
        got.update(tables)
        ctx = BlockContext(
            operator=op.name,
            backend="cpu",
            task=0,
            dims=DIMS,
            region=dict(zip(DIMS, region, strict=True)),
            halo={d: (halo.get(d, 0), halo.get(d, 0)) for d in DIMS},
            sizes=dict(zip(DIMS, shape, strict=True)),
            coords={},
            attrs={k: dict(attrs) for k in arrays},
            n_tasks=1,
        )
        if isinstance(pattern, Map | FullAxis):
            res = import_dotted(pattern.kernel)(got, model, ctx)
            for name, value in res.items():
                full = results.setdefault(
                    name, np.zeros(shape, dtype=outs[name].dtype or primary.dtype)
                )
                value = np.asarray(value)
                if value.shape != full[region].shape:  # padded shape: crop the halo
                    value = value[
                        tuple(
                            slice(halo.get(d, 0), halo.get(d, 0) + (s.stop - s.start))
                            for d, s in zip(DIMS, region, strict=True)
                        )
                    ]
                full[region] = value
        elif isinstance(pattern, Aggregate):
            state = import_dotted(pattern.partial)(got, model, ctx)
            # states travel as Parquet: equal-length columns
            states.append(
                {k: pa.table({k: np.asarray(v)}).column(k).to_numpy() for k, v in state.items()}
            )
    if isinstance(pattern, Aggregate):
        combined = import_dotted(pattern.combine)(states, model)
        final = import_dotted(pattern.finalize)(combined, model)
        return {k: pa.table({c: np.asarray(v) for c, v in t.items()}) for k, t in final.items()}
    return results

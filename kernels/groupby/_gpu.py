"""GPU group kernels along the leading axis (``numba.cuda``).

``group_mean`` runs one thread per (group, column): the host sorts the steps by group
once (group ids are host metadata, e.g. days of year from the time coordinate) and
each thread walks the steps of its group in time order. Neighbouring threads take
neighbouring columns, so every load is coalesced; there are no atomics, and each sum
is taken in the order of the CPU kernel, so results equal the CPU's bit for bit.

``subtract_group`` is one fused pass: ``out[t, j] = x[t, j] - table[groups[t], j]``,
reading ``x`` once and the (small, cached) table rows, with no gathered temporary.

Why ``numba.cuda``: both are plain loops over a 2-D index space; written once in
Python, they run on CuPy arrays on the GPU and on NumPy arrays under numba's CUDA
simulator, where ``tests/kernels/test_cudasim.py`` checks them against the reference.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from minjiang.kernels import _cuda
from numba import cuda, float64

__all__ = ["group_mean", "subtract_group"]


def _build_mean() -> Any:
    @cuda.jit
    def mean_by_group(x, order, offsets, out):
        # x: (t, m); order: steps sorted by group (stable); offsets: (n_groups + 1,)
        n_groups, m = out.shape
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for item in range(start, n_groups * m, stride):
            g = item // m
            j = item - g * m
            acc = 0.0
            n = 0
            for k in range(offsets[g], offsets[g + 1]):
                v = float64(x[order[k], j])
                if v == v:
                    acc += v
                    n += 1
            out[g, j] = acc / n if n else np.nan

    return mean_by_group


def _build_subtract() -> Any:
    @cuda.jit
    def subtract_by_group(x, groups, table, out):
        t, m = out.shape
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for item in range(start, t * m, stride):
            i = item // m
            j = item - i * m
            out[i, j] = x[i, j] - table[groups[i], j]

    return subtract_by_group


def group_mean(x: Any, groups: np.ndarray, n_groups: int) -> Any:
    """NaN-skipping mean over axis 0 per group of device ``x``; host int64 ``groups``."""
    xp = _cuda.array_module(x)
    m = int(np.prod(x.shape[1:], dtype=np.int64))
    flat = xp.ascontiguousarray(x).reshape(x.shape[0], m)
    groups = np.asarray(groups, dtype=np.int64)
    order = np.argsort(groups, kind="stable")
    offsets = np.zeros(n_groups + 1, dtype=np.int64)
    np.cumsum(np.bincount(groups, minlength=n_groups), out=offsets[1:])
    out = xp.empty((n_groups, m), dtype=np.float64)
    kernel = _cuda.cached(("groupby.mean",), _build_mean)
    _cuda.launch(kernel, out.size, flat, xp.asarray(order), xp.asarray(offsets), out)
    return out.reshape((n_groups, *x.shape[1:]))


def subtract_group(x: Any, groups: np.ndarray, table: Any) -> Any:
    """``x[t] - table[groups[t]]`` of device ``x`` and ``table``; host int64 ``groups``."""
    xp = _cuda.array_module(x, table)
    m = int(np.prod(x.shape[1:], dtype=np.int64))
    flat = xp.ascontiguousarray(x).reshape(x.shape[0], m)
    rows = xp.ascontiguousarray(table, dtype=np.float64).reshape(table.shape[0], m)
    out = xp.empty(x.shape, dtype=np.result_type(x.dtype, np.float32))
    kernel = _cuda.cached(("groupby.subtract",), _build_subtract)
    _cuda.launch(
        kernel,
        out.size,
        flat,
        xp.asarray(np.asarray(groups, dtype=np.int64)),
        rows,
        out.reshape(x.shape[0], m),
    )
    return out

"""GPU separable Gaussian: one ``numba.cuda`` valid-correlation pass per filtered axis.

Each pass views the block as ``(A, N, B)`` (the filtered axis in the middle) and runs
one thread per output cell, so neighbouring threads read neighbouring cells of ``B``
(or overlapping windows along ``N`` for the last axis): coalesced loads, with the
``2r + 1`` reads of a window served mostly from L1/L2. Taps are applied in the order
of ``_cpu`` (``w[r] * x[c] + sum_j w[r + j] * (x[c + j] + x[c - j])``), in float64,
and intermediate passes are float64 as on the CPU.

Why ``numba.cuda`` and not a CuPy kernel: a stencil needs its own indexing, which a
``RawKernel`` would write in CUDA C that nothing here can run; the numba kernel is the
same Python under numba's CUDA simulator, which ``tests/kernels/test_cudasim.py`` runs
against the NumPy reference on machines without a GPU. ``benchmarks/_gpu.py`` times it
against ``cupyx.scipy.ndimage.gaussian_filter`` (a shared-memory CUDA C stencil) on
the GPU machine.

Exactness: every output cell is computed by the same instructions from the same values
whatever the blocking, so blocks reassemble bit for bit as on the CPU. The GPU compiler
may fuse a multiply and an add (FMA), so cells can differ from the CPU's in the last
bits (within the test tolerances), not between blockings.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from minjiang.kernels import _cuda
from numba import cuda

__all__ = ["correlate_pass", "gaussian_valid"]


def _build() -> Any:
    @cuda.jit
    def correlate(x, w, out):
        # x: (A, N, B); out: (A, N - 2r, B) float64; correlate along the middle axis.
        n_a, n_i, n_b = out.shape
        r = (w.shape[0] - 1) // 2
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for t in range(start, n_a * n_i * n_b, stride):
            b = t % n_b
            rest = t // n_b
            i = rest % n_i
            a = rest // n_i
            acc = w[r] * float(x[a, i + r, b])
            for j in range(1, r + 1):
                acc += w[r + j] * (float(x[a, i + r + j, b]) + float(x[a, i + r - j, b]))
            out[a, i, b] = acc

    return correlate


def correlate_pass(x: Any, w: Any, out: Any) -> None:
    """Valid correlation of ``x`` ``(A, N, B)`` with ``w`` along axis 1 into ``out``.

    Parameters
    ----------
    x : device array, shape ``(A, N, B)``
        Input of any real dtype (CuPy, or NumPy under the simulator).
    w : device array of float64, shape ``(2r + 1,)``
        Symmetric weights.
    out : device array of float64, shape ``(A, N - 2r, B)``
        Written in place.
    """
    kernel = _cuda.cached(("gaussian.correlate",), _build)
    _cuda.launch(kernel, out.size, x, w, out)


def gaussian_valid(padded: Any, weights: list[np.ndarray | None], out_dtype: np.dtype) -> Any:
    """Valid separable correlation of a padded device block (float64 passes)."""
    xp = _cuda.array_module(padded)
    # reshape: ascontiguousarray turns a 0-d array into a 1-d one
    y = xp.ascontiguousarray(padded).reshape(padded.shape)
    filtered = False
    for axis, w in enumerate(weights):
        if w is None:
            continue
        filtered = True
        shape = y.shape
        n_out = shape[axis] - (w.size - 1)
        outer = int(np.prod(shape[:axis], dtype=np.int64))
        inner = int(np.prod(shape[axis + 1 :], dtype=np.int64))
        out = xp.empty((*shape[:axis], n_out, *shape[axis + 1 :]), dtype=np.float64)
        if out.size:
            correlate_pass(
                y.reshape(outer, shape[axis], inner),
                xp.asarray(w, dtype=np.float64),
                out.reshape(outer, n_out, inner),
            )
        y = out
    # a new array even when no axis is filtered
    return y.astype(out_dtype, copy=not filtered)

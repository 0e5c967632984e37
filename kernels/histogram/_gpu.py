"""GPU histogram kernels (``numba.cuda``): finite range and partial histogram counts.

``finite_range``: each thread keeps the min, max and count of the finite values it
visits; a thread block reduces them in shared memory and merges its result with one
atomic per quantity. ``histogram_partial``: each block counts into a private
shared-memory histogram (when the bins fit, ``SHARED_BINS``), then adds it to the
global one with one atomic per bin; more bins go straight to global atomics.

Both are exact and reproducible: minima, maxima and integer counts do not depend on the
order of the atomics, and the bin of each value is computed with the CPU kernel's
float64 arithmetic (numpy's scaled index, then the edge corrections), so counts equal
``numpy.histogram`` bit for bit.

Why ``numba.cuda``: scatter-with-atomics kernels written once in Python, run on CuPy
arrays on the GPU and, under numba's CUDA simulator, on NumPy arrays in the tests
(``tests/kernels/test_cudasim.py``). Results are host data: a tuple of Python numbers
for the range and NumPy int64 counts for the histogram (a partial state, added on the
host by :func:`~minjiang.kernels.histogram.histogram_combine`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from minjiang.kernels import _cuda
from numba import cuda, float64, int32, int64

__all__ = ["SHARED_BINS", "finite_range", "histogram_partial"]

#: bins counted per thread block in shared memory (more go to global atomics)
SHARED_BINS = 4096


def _build_range() -> Any:
    from minjiang.kernels._cuda_device import block_min_max_count as reduce_block

    threads = _cuda.THREADS

    @cuda.jit
    def finite_range(flat, out_lo, out_hi, out_n):
        s_lo = cuda.shared.array(threads, float64)
        s_hi = cuda.shared.array(threads, float64)
        s_n = cuda.shared.array(threads, int64)
        lo = np.inf
        hi = -np.inf
        n = 0
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for i in range(start, flat.shape[0], stride):
            v = float64(flat[i])
            if math.isfinite(v):
                if v < lo:
                    lo = v
                if v > hi:
                    hi = v
                n += 1
        tid = cuda.threadIdx.x
        s_lo[tid] = lo
        s_hi[tid] = hi
        s_n[tid] = n
        reduce_block(s_lo, s_hi, s_n)
        if tid == 0 and s_n[0] > 0:
            cuda.atomic.min(out_lo, 0, s_lo[0])
            cuda.atomic.max(out_hi, 0, s_hi[0])
            cuda.atomic.add(out_n, 0, s_n[0])

    return finite_range


def _build_histogram(shared: bool) -> Any:
    bins = SHARED_BINS

    @cuda.jit(device=True)
    def bin_of(v, edges, nbins):
        # numpy.histogram's uniform-bin path: a scaled index, then corrected against
        # the edges so that a value on an edge lands where numpy puts it; -1: not counted.
        first = edges[0]
        last = edges[nbins]
        if not (v >= first and v <= last):  # also drops NaN
            return -1
        k = int64(((v - first) / (last - first)) * nbins)
        if k == nbins:
            k -= 1
        if v < edges[k]:
            k -= 1
        elif k != nbins - 1 and v >= edges[k + 1]:
            k += 1
        return k

    @cuda.jit
    def histogram_global(flat, edges, counts):
        nbins = counts.shape[0]
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for i in range(start, flat.shape[0], stride):
            k = bin_of(float64(flat[i]), edges, nbins)
            if k >= 0:
                cuda.atomic.add(counts, k, 1)

    @cuda.jit
    def histogram_shared(flat, edges, counts):
        nbins = counts.shape[0]
        local = cuda.shared.array(bins, int32)
        tid = cuda.threadIdx.x
        for k in range(tid, nbins, cuda.blockDim.x):
            local[k] = 0
        cuda.syncthreads()
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for i in range(start, flat.shape[0], stride):
            k = bin_of(float64(flat[i]), edges, nbins)
            if k >= 0:
                cuda.atomic.add(local, k, 1)
        cuda.syncthreads()
        for k in range(tid, nbins, cuda.blockDim.x):
            if local[k]:
                cuda.atomic.add(counts, k, int64(local[k]))

    return histogram_shared if shared else histogram_global


def finite_range(x: Any) -> tuple[float, float, int]:
    """``(min, max, count)`` of the finite values of device ``x`` (``(inf, -inf, 0)`` if none)."""
    xp = _cuda.array_module(x)
    flat = xp.ascontiguousarray(x).reshape(-1)
    out_lo = xp.full(1, np.inf)
    out_hi = xp.full(1, -np.inf)
    out_n = xp.zeros(1, dtype=np.int64)
    kernel = _cuda.cached(("histogram.range",), _build_range)
    _cuda.launch(kernel, flat.shape[0], flat, out_lo, out_hi, out_n)
    return (
        float(_cuda.to_host(out_lo)[0]),
        float(_cuda.to_host(out_hi)[0]),
        int(_cuda.to_host(out_n)[0]),
    )


def histogram_partial(x: Any, edges: np.ndarray, *, shared: bool | None = None) -> np.ndarray:
    """int64 counts of device ``x`` over the float64 ``edges`` (a host array).

    ``shared=False`` skips the per-block shared-memory bins (the benchmark compares both).
    """
    xp = _cuda.array_module(x)
    flat = xp.ascontiguousarray(x).reshape(-1)
    nbins = edges.size - 1
    counts = xp.zeros(nbins, dtype=np.int64)
    shared = nbins <= SHARED_BINS and shared is not False
    kernel = _cuda.cached(("histogram.counts", shared), lambda: _build_histogram(shared))
    _cuda.launch(kernel, flat.shape[0], flat, xp.asarray(edges, dtype=np.float64), counts)
    return _cuda.to_host(counts)

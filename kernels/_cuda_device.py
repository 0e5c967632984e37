"""``numba.cuda`` device functions shared by several GPU kernels.

Imported only by ``_gpu`` modules (which need numba.cuda anyway). ``cuda`` must be a
module global here: numba's CUDA simulator swaps it for its fake module in the
globals of every kernel and device function it runs.
"""

from __future__ import annotations

from numba import cuda

__all__ = ["block_min_max_count"]


def _block_min_max_count(s_lo, s_hi, s_n):  # type: ignore[no-untyped-def]  # pragma: no cover
    # Tree reduction of the per-thread (min, max, count) in three shared arrays into
    # slot 0; every thread of the block calls it; block sizes are powers of two.
    tid = cuda.threadIdx.x
    cuda.syncthreads()
    step = cuda.blockDim.x // 2
    while step > 0:
        if tid < step:
            if s_lo[tid + step] < s_lo[tid]:
                s_lo[tid] = s_lo[tid + step]
            if s_hi[tid + step] > s_hi[tid]:
                s_hi[tid] = s_hi[tid + step]
            s_n[tid] += s_n[tid + step]
        cuda.syncthreads()
        step //= 2


#: Reduce per-thread (min, max, count) held in shared arrays into their slot 0.
block_min_max_count = cuda.jit(device=True)(_block_min_max_count)

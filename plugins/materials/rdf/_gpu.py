"""GPU kernel of the pair-distance histogram (``numba.cuda``): one thread per A atom.

Per frame, on the device: a first kernel gives every atom its wrapped fractional
position and its box (the CPU kernel's ``x @ inv(h)`` term by term, ``v - floor(v)``,
``min(int(s * n), n - 1)``); the B atoms are sorted by box (CuPy's ``argsort``) and a
prefix sum of the box counts gives each box's first atom, the CPU kernel's buckets;
then one thread per A atom (A atoms also sorted by box, so a warp reads neighbouring
boxes) walks the B atoms of the 27 neighbouring boxes (de-duplicated below three slabs)
with the minimum image of the CPU kernel — the wrapped fractional difference, then the
shortest of its 27 lattice shifts for a triclinic cell — and adds the pair to its
bin with an integer atomic, into a per-block histogram in shared memory (up to
``SHARED_BINS`` bins; more go straight to global atomics) that is added to the
global one at the end. For identical selections each unordered pair is computed once
(``b > a``) and counted twice, as on the CPU.

**Exact against the CPU kernel.** Integer counts do not depend on the order of the
atomics, and the distance of every pair is computed with the CPU kernel's float64
operations in its order. CUDA's compiler contracts ``a * b + c`` into fused
multiply-adds (one rounding instead of two) unless told otherwise, which would move
pairs that lie within an ulp of a bin edge; every product and sum that could be fused
therefore goes through libdevice's ``dmul_rn``/``dadd_rn``, which are never fused
(``tests/plugins/materials/test_materials_cudasim.py`` compiles the kernels to PTX
and checks that they hold no ``fma``). ``sqrt`` and ``floor`` are IEEE-exact on both.
Under numba's CUDA simulator the same kernels run on NumPy arrays in Python, where
those two intrinsics are plain ``*`` and ``+``.

Why ``numba.cuda``: a gather over cell lists with per-pair branches and an atomic
scatter, for which CuPy has no primitive; written once in Python, it runs on CuPy
arrays on a GPU and under the simulator in the tests.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from minjiang.kernels import cuda as _cuda
from numba import cuda, int64

__all__ = ["SHARED_BINS", "pair_histogram"]

#: bins counted per thread block in shared memory (int64: 16 KiB); more go to global atomics
SHARED_BINS = 2048


def _arith() -> tuple[Any, Any]:
    """``mul`` and ``add`` device functions that are never contracted into an FMA."""
    if _cuda.simulator():

        @cuda.jit(device=True)
        def mul(a, b):  # pragma: no cover - the simulator's stand-in
            return a * b

        @cuda.jit(device=True)
        def add(a, b):  # pragma: no cover
            return a + b

        return mul, add
    from numba.cuda import libdevice

    @cuda.jit(device=True)
    def mul_rn(a, b):
        return libdevice.dmul_rn(a, b)

    @cuda.jit(device=True)
    def add_rn(a, b):
        return libdevice.dadd_rn(a, b)

    return mul_rn, add_rn


@cuda.jit(device=True)
def _floor(x):
    # numpy.floor of a finite float64, as a float (math.floor gives an int64 here)
    return float(math.floor(x))


@cuda.jit(device=True)
def _box(s, n):
    # min(int(s * n), n - 1), written out (min() of two ints does not lower here)
    c = int(s * n)
    return c if c < n - 1 else n - 1


def _build_fractional() -> Any:
    mul, add = _arith()

    @cuda.jit
    def fractional(x, hinv, ncell, s, box):
        # x: (atom, 3) float32 or float64 positions; s: (atom, 3) float64; box: (atom,)
        nx, ny, nz = ncell[0], ncell[1], ncell[2]
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for i in range(start, x.shape[0], stride):
            x0 = float(x[i, 0])
            x1 = float(x[i, 1])
            x2 = float(x[i, 2])
            for k in range(3):
                v = add(add(mul(x0, hinv[0, k]), mul(x1, hinv[1, k])), mul(x2, hinv[2, k]))
                s[i, k] = v - _floor(v)
            box[i] = (_box(s[i, 0], nx) * ny + _box(s[i, 1], ny)) * nz + _box(s[i, 2], nz)

    return fractional


def _build_pairs(tric: bool, half: bool, use_mol: bool, shared: bool) -> Any:
    mul, add = _arith()
    lo, hi = (-1, 2) if tric else (0, 1)
    bins = SHARED_BINS

    @cuda.jit(device=True)
    def pair_bin(d0, d1, d2, h, r2min, r2max, r_min, r_max, scale, nbins):
        # the CPU kernel's minimum image and bin; -1: not counted
        d0 -= _floor(d0 + 0.5)
        d1 -= _floor(d1 + 0.5)
        d2 -= _floor(d2 + 0.5)
        best = math.inf
        for i in range(lo, hi):
            for j in range(lo, hi):
                for k in range(lo, hi):
                    e0 = d0 + i
                    e1 = d1 + j
                    e2 = d2 + k
                    v0 = add(add(mul(e0, h[0, 0]), mul(e1, h[1, 0])), mul(e2, h[2, 0]))
                    v1 = add(add(mul(e0, h[0, 1]), mul(e1, h[1, 1])), mul(e2, h[2, 1]))
                    v2 = add(add(mul(e0, h[0, 2]), mul(e1, h[1, 2])), mul(e2, h[2, 2]))
                    r2 = add(add(mul(v0, v0), mul(v1, v1)), mul(v2, v2))
                    if r2 < best:
                        best = r2
        if r2min <= best < r2max:
            r = math.sqrt(best)
            if r_min <= r < r_max:
                kb = math.floor((r - r_min) * scale)
                if kb > nbins - 1:
                    kb = nbins - 1
                return kb
        return -1

    @cuda.jit(device=True)
    def atom_pairs(
        a, s, box, sb, bidx, bmol, start, ncell, offs, noff, molecule, h, r2min, r2max,
        r_min, r_max, scale, hist, nbins,
    ):  # fmt: skip
        nx, ny, nz = ncell[0], ncell[1], ncell[2]
        sa0 = s[a, 0]
        sa1 = s[a, 1]
        sa2 = s[a, 2]
        ma = molecule[a]
        c = box[a]
        cz = c % nz
        cy = (c // nz) % ny
        cx = c // (ny * nz)
        inc = 2 if half else 1
        for ox in range(noff[0]):
            bx = (cx + offs[0, ox]) % nx
            for oy in range(noff[1]):
                by = (cy + offs[1, oy]) % ny
                for oz in range(noff[2]):
                    nb = (bx * ny + by) * nz + (cz + offs[2, oz]) % nz
                    for p in range(start[nb], start[nb + 1]):
                        b = bidx[p]
                        if half:
                            if b <= a:
                                continue
                        elif b == a:
                            continue
                        if use_mol and bmol[p] == ma:
                            continue
                        kb = pair_bin(
                            sb[p, 0] - sa0, sb[p, 1] - sa1, sb[p, 2] - sa2,
                            h, r2min, r2max, r_min, r_max, scale, nbins,
                        )  # fmt: skip
                        if kb >= 0:
                            cuda.atomic.add(hist, kb, inc)

    if not shared:

        @cuda.jit
        def pairs_global(
            order_a, s, box, sb, bidx, bmol, start, ncell, offs, noff, molecule, h, r2min,
            r2max, r_min, r_max, scale, counts,
        ):  # fmt: skip
            nbins = counts.shape[0]
            first, stride = cuda.grid(1), cuda.gridsize(1)
            for ia in range(first, order_a.shape[0], stride):
                atom_pairs(
                    order_a[ia], s, box, sb, bidx, bmol, start, ncell, offs, noff, molecule,
                    h, r2min, r2max, r_min, r_max, scale, counts, nbins,
                )  # fmt: skip

        return pairs_global

    @cuda.jit
    def pairs_shared(
        order_a, s, box, sb, bidx, bmol, start, ncell, offs, noff, molecule, h, r2min,
        r2max, r_min, r_max, scale, counts,
    ):  # fmt: skip
        nbins = counts.shape[0]
        local = cuda.shared.array(bins, int64)
        tid = cuda.threadIdx.x
        for k in range(tid, nbins, cuda.blockDim.x):
            local[k] = 0
        cuda.syncthreads()
        first, stride = cuda.grid(1), cuda.gridsize(1)
        for ia in range(first, order_a.shape[0], stride):
            atom_pairs(
                order_a[ia], s, box, sb, bidx, bmol, start, ncell, offs, noff, molecule,
                h, r2min, r2max, r_min, r_max, scale, local, nbins,
            )  # fmt: skip
        cuda.syncthreads()
        for k in range(tid, nbins, cuda.blockDim.x):
            if local[k]:
                cuda.atomic.add(counts, k, local[k])

    return pairs_shared


def _offsets(ncell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # the CPU kernel's de-duplicated neighbour offsets per axis
    offs = np.zeros((3, 3), dtype=np.int64)
    noff = np.empty(3, dtype=np.int64)
    for ax in range(3):
        m = int(ncell[ax])
        row = (-1, 0, 1) if m >= 3 else (0, 1) if m == 2 else (0,)
        offs[ax, : len(row)] = row
        noff[ax] = len(row)
    return offs, noff


def pair_histogram(
    positions: Any,
    cells: np.ndarray,
    index_a: np.ndarray,
    index_b: np.ndarray,
    molecule: np.ndarray | None,
    r_min: float,
    r_max: float,
    nbins: int,
    *,
    shared: bool | None = None,
) -> np.ndarray:
    """int64 counts of ordered A-B pairs per distance bin, summed over frames (host array).

    ``positions`` is a device array (NumPy only under the simulator); ``cells``, the
    indices and ``molecule`` are host arrays. ``shared=False`` skips the shared-memory
    histogram (for the benchmark and the tests).
    """
    from minjiang.plugins.materials.rdf._cpu import box_counts, identical, is_triclinic

    xp = _cuda.array_module(positions)
    n = positions.shape[1]
    use_mol = molecule is not None
    mol_h = np.asarray(molecule, dtype=np.int64) if use_mol else np.zeros(n, np.int64)
    half = identical(index_a, index_b)
    ia = xp.asarray(np.ascontiguousarray(index_a, dtype=np.int64))
    ib = xp.asarray(np.ascontiguousarray(index_b, dtype=np.int64))
    mol = xp.asarray(mol_h)
    shared = nbins <= SHARED_BINS and shared is not False
    counts = xp.zeros(nbins, dtype=np.int64)
    s = xp.empty((n, 3), dtype=np.float64)
    box = xp.empty(n, dtype=np.int64)
    fractional = _cuda.cached(("materials.rdf.fractional",), _build_fractional)
    scale = nbins / (r_max - r_min)
    r2min, r2max = r_min * r_min, r_max * r_max
    for f in range(positions.shape[0]):
        h = np.ascontiguousarray(cells[f], dtype=np.float64)
        ncell = box_counts(h, r_max, int(index_b.size))
        offs, noff = _offsets(ncell)
        tric = is_triclinic(h)
        x = xp.ascontiguousarray(positions[f])
        ncell_d = xp.asarray(ncell)
        _cuda.launch(fractional, n, x, xp.asarray(np.linalg.inv(h)), ncell_d, s, box)
        ntot = int(np.prod(ncell))
        bbox = box[ib]
        order_b = ib[xp.argsort(bbox)]
        start = xp.zeros(ntot + 1, dtype=np.int64)
        start[1:] = xp.cumsum(xp.bincount(bbox, minlength=ntot))
        order_a = ia[xp.argsort(box[ia])]
        key = ("materials.rdf.pairs", tric, half, use_mol, shared)
        kernel = _cuda.cached(key, functools.partial(_build_pairs, tric, half, use_mol, shared))
        _cuda.launch(
            kernel,
            int(order_a.shape[0]),
            order_a,
            s,
            box,
            xp.ascontiguousarray(s[order_b]),
            order_b,
            mol[order_b],
            start,
            ncell_d,
            xp.asarray(offs),
            xp.asarray(noff),
            mol,
            xp.asarray(h),
            r2min,
            r2max,
            float(r_min),
            float(r_max),
            scale,
            counts,
        )
    return _cuda.to_host(counts)

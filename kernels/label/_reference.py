"""NumPy specification of connected-component labelling and union-find.

``order`` is the largest number of axes along which two neighbours may differ
(1: faces, 2: faces and edges, 3: faces, edges and corners), SciPy's
``generate_binary_structure(ndim, order)``.
"""

from __future__ import annotations

import itertools

import numpy as np


def half_offsets(ndim: int, order: int) -> list[tuple[int, ...]]:
    """Neighbour offsets whose first non-zero component is +1 (one of each +-pair)."""
    out = []
    for o in itertools.product((-1, 0, 1), repeat=ndim):
        nz = [c for c in o if c != 0]
        if nz and len(nz) <= order and nz[0] == 1:
            out.append(o)
    return out


def _shift_slices(
    shape: tuple[int, ...], o: tuple[int, ...]
) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    a = tuple(slice(max(0, -c), n - max(0, c)) for n, c in zip(shape, o, strict=True))
    b = tuple(slice(max(0, c), n - max(0, -c)) for n, c in zip(shape, o, strict=True))
    return a, b


def roots_by_hooking(n: int, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Root (smallest member) of every node 0..n-1 of the graph with edges (p, q)."""
    parent = np.arange(n, dtype=np.int64)
    while True:
        rp, rq = parent[p], parent[q]
        low = np.minimum(rp, rq)
        new = parent.copy()
        np.minimum.at(new, rp, low)
        np.minimum.at(new, rq, low)
        while True:  # pointer jumping to full compression
            jumped = new[new]
            if np.array_equal(jumped, new):
                break
            new = jumped
        if np.array_equal(new, parent):
            return parent
        parent = new


def label_local(mask: np.ndarray, order: int) -> tuple[np.ndarray, int]:
    """Labels 1..n in order of first appearance (C order); 0 is background."""
    fg = np.asarray(mask, dtype=bool)
    idx = np.arange(fg.size, dtype=np.int64).reshape(fg.shape)
    ps, qs = [], []
    for o in half_offsets(fg.ndim, order):
        a, b = _shift_slices(fg.shape, o)
        both = fg[a] & fg[b]
        ps.append(idx[a][both])
        qs.append(idx[b][both])
    p = np.concatenate(ps) if ps else np.zeros(0, np.int64)
    q = np.concatenate(qs) if qs else np.zeros(0, np.int64)
    roots = roots_by_hooking(fg.size, p, q).reshape(fg.shape)
    fg_roots = roots[fg]
    uniq = np.unique(fg_roots)  # a root is its component's first cell: C order of appearance
    labels = np.zeros(fg.shape, dtype=np.int64)
    labels[fg] = np.searchsorted(uniq, fg_roots) + 1
    return labels, int(uniq.size)


def union_find_roots(pairs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """For sorted unique ``labels``, the smallest label each is equivalent to."""
    if pairs.size == 0:
        return labels.copy()
    p = np.searchsorted(labels, pairs[:, 0])
    q = np.searchsorted(labels, pairs[:, 1])
    return labels[roots_by_hooking(labels.size, p, q)]


def face_equivalences(
    padded: np.ndarray, halo: tuple[tuple[int, int], ...], order: int
) -> np.ndarray:
    """Label pairs ``(a, b)``, ``a < b``, of neighbouring foreground cells with different
    labels, one cell of each pair inside the block's interior (sorted, unique)."""
    shape = padded.shape
    out = [np.zeros((0, 2), np.int64)]
    for o in half_offsets(padded.ndim, order):
        # interior cells p whose neighbour p + o lies inside the padded block
        p_sl = []
        for n, (h0, h1), c in zip(shape, halo, o, strict=True):
            lo, hi = h0, n - h1
            lo, hi = max(lo, -c), min(hi, n - c)
            p_sl.append(slice(lo, max(lo, hi)))
        q_sl = tuple(slice(s.start + c, s.stop + c) for s, c in zip(p_sl, o, strict=True))
        a, b = padded[tuple(p_sl)], padded[q_sl]
        m = (a > 0) & (b > 0) & (a != b)
        if m.any():
            out.append(np.stack([np.minimum(a[m], b[m]), np.maximum(a[m], b[m])], axis=1))
    pairs = np.concatenate(out).astype(np.int64)
    return np.unique(pairs, axis=0) if pairs.size else pairs


def globalise(
    local: np.ndarray, n: int, origin: tuple[int, ...], shape: tuple[int, ...]
) -> np.ndarray:
    """Local labels 1..n (numbered by first appearance) to 1 + the global C-order index
    of each component's first cell, for a block at ``origin`` in an array of ``shape``."""
    out = np.zeros(local.shape, dtype=np.int64)
    if n == 0:
        return out
    # np.unique's return_index gives each label's first position in C order
    u, first = np.unique(local.ravel(), return_index=True)
    keep = u > 0
    pos = np.unravel_index(first[keep], local.shape)
    glob = np.ravel_multi_index(tuple(p + o for p, o in zip(pos, origin, strict=True)), shape)
    lut = np.zeros(n + 1, dtype=np.int64)
    lut[u[keep]] = glob + 1
    return lut[local]

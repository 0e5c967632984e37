"""NumPy reference of the two-point pair counts: one shifted product per lag (the spec).

For every lag vector ``r`` with ``|r_i| <= L_i``: ``num[r]`` is the number of voxel
pairs ``(x, x + r)`` that are both in the phase, and ``overlap[r]`` the number of
pairs ``(x, x + r)`` inside the image (non-periodic), or the number of voxels
(periodic, where ``x + r`` wraps around).
"""

from __future__ import annotations

import itertools

import numpy as np


def pair_counts(
    ind: np.ndarray, lags: tuple[int, ...], periodic: bool
) -> tuple[np.ndarray, np.ndarray]:
    """int64 ``num`` and ``overlap`` over the lag box, index ``r + L`` per axis."""
    ind = np.asarray(ind, dtype=np.int64)
    shape = tuple(2 * m + 1 for m in lags)
    num = np.zeros(shape, dtype=np.int64)
    overlap = np.zeros(shape, dtype=np.int64)
    for r in itertools.product(*[range(-m, m + 1) for m in lags]):
        at = tuple(ri + m for ri, m in zip(r, lags, strict=True))
        if periodic:
            num[at] = (
                ind * np.roll(ind, shift=tuple(-ri for ri in r), axis=tuple(range(ind.ndim)))
            ).sum()
            overlap[at] = ind.size
            continue
        a, b = [], []
        for ri, n in zip(r, ind.shape, strict=True):
            if abs(ri) >= n:
                break
            a.append(slice(max(0, -ri), n - max(0, ri)))
            b.append(slice(max(0, ri), n - max(0, -ri)))
        else:
            num[at] = (ind[tuple(a)] * ind[tuple(b)]).sum()
            overlap[at] = int(np.prod([s.stop - s.start for s in a]))
    return num, overlap

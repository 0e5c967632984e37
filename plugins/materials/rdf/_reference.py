"""NumPy reference of the pair-distance histogram: every pair, every image (the spec).

For each frame, every ordered pair ``(a, b)`` with ``a`` in selection A, ``b`` in
selection B, ``a != b`` (and, when asked, ``molecule[a] != molecule[b]``) is counted
once in the bin of its minimum-image distance. The minimum image is the shortest of
``d + n @ H`` over the 27 lattice shifts ``n`` in {-1, 0, 1}^3 after the fractional
difference is wrapped into [-0.5, 0.5) (for orthorhombic and triclinic cells alike).
A bin is ``floor((r - r_min) * nbins / (r_max - r_min))`` for ``r_min <= r < r_max``.
"""

from __future__ import annotations

import itertools

import numpy as np

_SHIFTS = np.array(list(itertools.product((-1, 0, 1), repeat=3)), dtype=np.float64)


def pair_histogram(
    positions: np.ndarray,
    cells: np.ndarray,
    index_a: np.ndarray,
    index_b: np.ndarray,
    molecule: np.ndarray | None,
    r_min: float,
    r_max: float,
    nbins: int,
) -> np.ndarray:
    """int64 counts of ordered A-B pairs per distance bin, summed over frames."""
    counts = np.zeros(nbins, dtype=np.int64)
    scale = nbins / (r_max - r_min)
    for f in range(positions.shape[0]):
        h = np.asarray(cells[f], dtype=np.float64)
        x = np.asarray(positions[f], dtype=np.float64)
        s = x @ np.linalg.inv(h)
        sa, sb = s[index_a], s[index_b]
        ds = sb[None, :, :] - sa[:, None, :]
        ds -= np.floor(ds + 0.5)
        d = ds @ h  # (na, nb, 3)
        best = np.full(d.shape[:2], np.inf)
        for shift in _SHIFTS @ h:
            best = np.minimum(best, ((d + shift) ** 2).sum(-1))
        r = np.sqrt(best)
        keep = index_a[:, None] != index_b[None, :]
        if molecule is not None:
            keep &= molecule[index_a][:, None] != molecule[index_b][None, :]
        keep &= (r >= r_min) & (r < r_max)
        k = np.floor((r[keep] - r_min) * scale).astype(np.int64)
        k = np.minimum(k, nbins - 1)
        counts += np.bincount(k, minlength=nbins)
    return counts

"""Radial distribution function: integer pair histograms per frame block, g(r) once.

:func:`pair_histogram` counts ordered pairs ``(a, b)``, ``a`` in selection A and
``b`` in selection B, ``a != b`` (and in different molecules when ``molecule`` is
given), by minimum-image distance under periodic boundaries of any (orthorhombic or
triclinic) cell, summed over frames. Counts are int64 and add exactly, so frame
blocks combine in any order and grouping with the same result. :func:`rdf_from_counts`
turns a total into g(r) and the coordination number n(r) once, at the end.

Normalisation: with ``P`` the number of pairs counted in an ideal configuration (the
eligible ordered pairs, :func:`eligible_pairs`: ``N_A N_B`` for disjoint selections,
``N (N - 1)`` for identical ones, fewer when same-molecule pairs are excluded),
``<V>`` the mean cell volume over the frames, ``F`` the number of frames and
``V_k = 4/3 pi (r_{k+1}^3 - r_k^3)`` the exact shell volume,
``g_k = C_k <V> / (F P V_k)``; ``n(r_{k+1}) = sum_{j<=k} C_j / (F N_A)`` is the mean
number of B atoms within ``r_{k+1}`` of an A atom.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from minjiang.kernels import resolve_backend

__all__ = ["eligible_pairs", "face_distances", "pair_histogram", "rdf_from_counts"]


def face_distances(cell: np.ndarray) -> np.ndarray:
    """Distances between the opposite faces of a cell (rows of ``cell`` are its vectors).

    Parameters
    ----------
    cell : numpy.ndarray
        (3, 3) lattice vectors as rows.

    Returns
    -------
    numpy.ndarray
        (3,) face distance normal to each pair of the other two vectors.
    """
    from minjiang.plugins.materials.rdf._cpu import face_distances as fd

    return fd(np.asarray(cell, dtype=np.float64))


def _check(
    positions: np.ndarray,
    cells: np.ndarray,
    index_a: np.ndarray,
    index_b: np.ndarray,
    molecule: np.ndarray | None,
    r_min: float,
    r_max: float,
    nbins: int,
) -> None:
    if positions.ndim != 3 or positions.shape[2] != 3:
        raise ValueError(f"positions must be (frame, atom, 3), got shape {positions.shape}")
    if cells.shape != (positions.shape[0], 3, 3):
        raise ValueError(
            f"cells must be (frame, 3, 3) = {(positions.shape[0], 3, 3)}, got {cells.shape}"
        )
    if not (0 <= r_min < r_max) or not np.isfinite(r_max):
        raise ValueError(f"need 0 <= r_min < r_max (finite), got r_min={r_min!r}, r_max={r_max!r}")
    if int(nbins) != nbins or nbins < 1:
        raise ValueError(f"nbins must be a positive integer, got {nbins!r}")
    n = positions.shape[1]
    for name, idx in (("index_a", index_a), ("index_b", index_b)):
        if idx.ndim != 1 or (idx.size and (idx.min() < 0 or idx.max() >= n)):
            raise ValueError(f"{name} must be 1-D atom indices in [0, {n}), got {idx.shape}")
    if molecule is not None and molecule.shape != (n,):
        raise ValueError(f"molecule must have one value per atom ({n}), got {molecule.shape}")
    if not np.isfinite(cells).all():
        raise ValueError(
            "a frame has no periodic cell (NaN); the radial distribution needs the box"
        )
    for f in range(cells.shape[0]):
        det = float(np.linalg.det(cells[f]))
        if not det > 0:
            raise ValueError(f"frame {f}: the cell is degenerate or left-handed (det {det:g})")
        w = face_distances(cells[f]).min()
        if r_max > w / 2 * (1 + 1e-12):
            raise ValueError(
                f"frame {f}: r_max {r_max:g} exceeds half the smallest face distance of the "
                f"cell ({w / 2:g}); lower r_max (the minimum image is unique only within it)"
            )


def pair_histogram(
    positions: Any,
    cells: Any,
    index_a: Any,
    index_b: Any,
    *,
    r_min: float = 0.0,
    r_max: float,
    nbins: int,
    molecule: Any = None,
    backend: str | None = None,
) -> np.ndarray:
    """Ordered A-B pair counts per distance bin, summed over frames.

    Parameters
    ----------
    positions : numpy.ndarray or cupy.ndarray
        (frame, atom, 3) Cartesian positions (any float dtype; computed in float64).
    cells : numpy.ndarray
        (frame, 3, 3) lattice vectors as rows, per frame (a CuPy array is copied to
        the host: 9 numbers per frame).
    index_a, index_b : numpy.ndarray
        Atom indices of the two selections (may be equal or overlap).
    r_min, r_max : float
        Histogram range; ``r_max`` at most half the smallest face distance of each cell.
    nbins : int
        Number of equal-width bins.
    molecule : numpy.ndarray, optional
        One id per atom; pairs within the same id are not counted.
    backend : {"reference", "cpu", "gpu"}, optional
        The implementation; default: the numba kernel for NumPy arrays, the
        ``numba.cuda`` kernel for CuPy positions (``"gpu"``, whose counts equal the
        numba kernel's exactly).

    Returns
    -------
    numpy.ndarray
        int64 counts, shape (nbins,), on the host whatever the backend.

    Raises
    ------
    ValueError
        For mismatched shapes, a missing or degenerate cell, or ``r_max`` beyond half
        the smallest face distance of a frame's cell.
    """
    from minjiang.kernels import to_host

    chosen = resolve_backend(backend, positions, kernel="materials.rdf", has_gpu=True)
    if chosen != "gpu":
        positions = np.asarray(positions)
    cells = np.asarray(to_host(cells), dtype=np.float64)
    ia = np.asarray(to_host(index_a), dtype=np.int64)
    ib = np.asarray(to_host(index_b), dtype=np.int64)
    mol = None if molecule is None else np.asarray(to_host(molecule), dtype=np.int64)
    _check(positions, cells, ia, ib, mol, float(r_min), float(r_max), nbins)
    if chosen == "reference":
        from minjiang.plugins.materials.rdf._reference import pair_histogram as impl
    elif chosen == "gpu":
        from minjiang.plugins.materials.rdf._gpu import pair_histogram as impl
    else:
        from minjiang.plugins.materials.rdf._cpu import pair_histogram as impl
    return impl(positions, cells, ia, ib, mol, float(r_min), float(r_max), int(nbins))


def eligible_pairs(index_a: Any, index_b: Any, molecule: Any = None) -> int:
    """The number of ordered pairs the histogram could count: ``a != b``, other molecule.

    Parameters
    ----------
    index_a, index_b : numpy.ndarray
        Atom indices of the two selections.
    molecule : numpy.ndarray, optional
        One id per atom (all atoms); same-id pairs are not eligible.

    Returns
    -------
    int
        ``N_A N_B - |A ∩ B|`` without ``molecule``; with it, minus the pairs of distinct
        atoms that share a molecule.
    """
    ia = np.unique(np.asarray(index_a, dtype=np.int64))
    ib = np.unique(np.asarray(index_b, dtype=np.int64))
    both = np.intersect1d(ia, ib).size
    if molecule is None:
        return int(ia.size) * int(ib.size) - int(both)
    mol = np.asarray(molecule, dtype=np.int64)
    ids, inv = np.unique(mol, return_inverse=True)
    na = np.bincount(inv[ia], minlength=ids.size).astype(np.int64)
    nb = np.bincount(inv[ib], minlength=ids.size).astype(np.int64)
    # every pair within a molecule, self-pairs included, is excluded
    return int(ia.size) * int(ib.size) - int((na * nb).sum())


def rdf_from_counts(
    counts: Any, edges: Any, *, frames: int, pairs: int, volume_sum: float, n_a: int
) -> tuple[np.ndarray, np.ndarray]:
    """g(r) per bin and the coordination number n(r) at each bin's outer edge.

    Parameters
    ----------
    counts : numpy.ndarray
        int64 ordered-pair counts per bin summed over ``frames`` frames.
    edges : numpy.ndarray
        Bin edges (nbins + 1).
    frames : int
        Number of frames counted.
    pairs : int
        Eligible ordered pairs per frame (:func:`eligible_pairs`).
    volume_sum : float
        Sum of the cell volumes over the frames.
    n_a : int
        Number of atoms in selection A.

    Returns
    -------
    g, n : numpy.ndarray
        float64 arrays of shape (nbins,).
    """
    c = np.asarray(counts, dtype=np.float64)
    e = np.asarray(edges, dtype=np.float64)
    shell = 4.0 / 3.0 * np.pi * (e[1:] ** 3 - e[:-1] ** 3)
    mean_volume = volume_sum / frames
    with np.errstate(divide="ignore", invalid="ignore"):
        g = c * mean_volume / (frames * pairs * shell) if pairs > 0 else np.full_like(c, np.nan)
    n = (
        np.cumsum(np.asarray(counts, dtype=np.int64)) / (frames * n_a)
        if n_a
        else np.full_like(c, np.nan)
    )
    return g, n

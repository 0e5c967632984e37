"""Connected components of 1-3-D masks, in one block or across the blocks of a chunked array.

Labelling a chunked array takes three passes (the composite chunk pattern):

1. :func:`label_local` labels each block on its own; the caller makes its labels
   globally unique: :func:`label_global` numbers each component 1 + the global
   C-order index of its first cell.
2. :func:`face_equivalences` reads each block's labels with a one-cell halo of its
   neighbours' labels and emits the label pairs that touch across the block's faces
   (and edges and corners for 18/26-connectivity); :func:`union_find_relabel`
   joins all pairs into a table ``old -> new`` with consecutive new labels.
3. :func:`relabel` maps every block through that table.

Connectivity counts neighbours: 6, 18 or 26 in 3-D, 4 or 8 in 2-D, 2 in 1-D (SciPy's
``generate_binary_structure(ndim, 1..ndim)``). Foreground is every non-zero, non-NaN
cell. New labels are numbered in order of the smallest old label of each component,
so with first-cell labels the result equals a labelling of the whole array.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from minjiang.kernels._dispatch import resolve_backend

__all__ = [
    "CONNECTIVITIES",
    "connectivity_order",
    "face_equivalences",
    "label_global",
    "label_local",
    "labels_present",
    "relabel",
    "union_find_relabel",
    "union_find_roots",
]

#: Valid connectivities per number of dims, with their neighbourhood order.
CONNECTIVITIES: dict[int, dict[int, int]] = {1: {2: 1}, 2: {4: 1, 8: 2}, 3: {6: 1, 18: 2, 26: 3}}


def connectivity_order(ndim: int, connectivity: int) -> int:
    """How many axes two neighbours may differ along, for ``connectivity`` in ``ndim`` dims.

    Parameters
    ----------
    ndim
        Number of dims (1 to 3).
    connectivity
        Neighbour count: 6, 18, 26 (3-D); 4, 8 (2-D); 2 (1-D).

    Returns
    -------
    int
        1, 2 or 3.
    """
    if ndim not in CONNECTIVITIES:
        raise ValueError(f"labelling supports 1 to 3 dims, got {ndim}")
    valid = CONNECTIVITIES[ndim]
    if connectivity not in valid:
        raise ValueError(
            f"connectivity {connectivity!r} is not defined in {ndim}-D; use one of {sorted(valid)!r}"
        )
    return valid[connectivity]


def _as3(x: np.ndarray) -> np.ndarray:
    return x.reshape((1,) * (3 - x.ndim) + x.shape)


def _foreground(mask: Any) -> np.ndarray:
    m = np.asarray(mask)
    if m.dtype.kind == "f":
        return (m != 0) & ~np.isnan(m)
    if m.dtype.kind not in "biu":
        raise TypeError(f"label_local: needs a boolean or numeric mask, got dtype {m.dtype.name!r}")
    return m != 0


def _foreground_bytes(mask: Any) -> np.ndarray:
    """The mask as the numba kernel reads it: 3-D, C-contiguous, one byte per cell,
    foreground where non-zero. A contiguous mask of 1-byte integers or booleans is
    used as it is (no copy); any other is compared with 0 (and NaN) into a new one."""
    m = np.asarray(mask)
    if m.dtype.kind in "biu" and m.dtype.itemsize == 1 and m.flags.c_contiguous:
        return _as3(m).view(np.uint8)
    return np.ascontiguousarray(_as3(_foreground(m))).view(np.uint8)


def _label_dtype(dtype: Any, cells: int, caller: str) -> np.dtype[Any]:
    out = np.dtype(dtype)
    if out.kind not in "iu" or cells > np.iinfo(out).max:
        raise ValueError(
            f"{caller}: dtype {out.name!r} cannot hold labels up to {cells}; use int64"
        )
    return out


def _run_tables(labels: np.dtype[Any]) -> np.ndarray:
    """An empty array of the dtype of the kernel's run tables: int32 where the labels'
    dtype holds no more than int32 does, else int64 (signed: indices are mixed with
    signed loop counters)."""
    small = np.iinfo(labels).max <= np.iinfo(np.int32).max
    return np.empty(0, dtype=np.int32 if small else np.int64)


def label_local(
    mask: Any, connectivity: int, *, dtype: Any = np.int64, backend: str | None = None
) -> tuple[np.ndarray, int]:
    """Label the connected components of a mask.

    Parameters
    ----------
    mask
        1-3-D array; non-zero, non-NaN cells are foreground.
    connectivity
        6, 18 or 26 in 3-D (4 or 8 in 2-D, 2 in 1-D).
    dtype
        Integer dtype of the labels; it must hold the number of cells. With int32
        the kernel's run tables are int32 too (half the memory of int64).
    backend
        ``"reference"`` (NumPy) or ``"cpu"`` (numba); ``None`` follows the array type.

    Returns
    -------
    labels : numpy.ndarray
        ``dtype``, same shape; 0 for background, 1..n numbered by first appearance in
        C order (as ``scipy.ndimage.label``).
    n : int
        Number of components.
    """
    chosen = resolve_backend(backend, mask, kernel="label_local", has_gpu=False)
    m = np.asarray(mask)
    order = connectivity_order(m.ndim, connectivity)
    out_dtype = _label_dtype(dtype, m.size, "label_local")
    if chosen == "reference":
        from minjiang.kernels.label import _reference

        local, n = _reference.label_local(_foreground(m), order)
        return local.astype(out_dtype), n
    from minjiang.kernels.label import _cpu

    fg3 = _foreground_bytes(m)
    labels = np.zeros(fg3.shape, dtype=out_dtype)
    zero = np.zeros(3, dtype=np.int64)
    n = _cpu.label_runs(fg3, order, labels, zero, zero, False, _run_tables(out_dtype))
    return labels.reshape(m.shape), int(n)


def label_global(
    mask: Any,
    connectivity: int,
    origin: Any,
    shape: Any,
    *,
    dtype: Any = np.int64,
    backend: str | None = None,
) -> tuple[np.ndarray, int]:
    """Label a block of a larger array with globally unique labels.

    Each component of the block is labelled 1 + the C-order index, in the whole
    array, of its first cell; so labels of different blocks never collide, and a
    component's label is the smallest possible in C order.

    Parameters
    ----------
    mask
        1-3-D block; non-zero, non-NaN cells are foreground.
    connectivity
        As for :func:`label_local`.
    origin
        Index of the block's first cell in the whole array, one per dim.
    shape
        Shape of the whole array.
    dtype
        Integer dtype of the labels; it must hold ``prod(shape)``.
    backend
        ``"reference"`` (NumPy) or ``"cpu"`` (numba); ``None`` follows the array type.

    Returns
    -------
    labels : numpy.ndarray
        ``dtype``, same shape as ``mask``; 0 for background.
    n : int
        Number of components in the block.
    """
    chosen = resolve_backend(backend, mask, kernel="label_global", has_gpu=False)
    fg = np.asarray(mask)
    order = connectivity_order(fg.ndim, connectivity)
    org = tuple(int(o) for o in origin)
    full = tuple(int(n) for n in shape)
    if len(org) != fg.ndim or len(full) != fg.ndim:
        raise ValueError(
            f"label_global: origin {org!r} and shape {full!r} must give one value per dim of "
            f"the {fg.ndim}-D block"
        )
    if any(o < 0 or o + b > n for o, b, n in zip(org, fg.shape, full, strict=True)):
        raise ValueError(
            f"label_global: a block of shape {fg.shape} at {org!r} does not fit in the array "
            f"shape {full!r}; pass the whole array's shape and the block's first index"
        )
    out_dtype = _label_dtype(dtype, int(np.prod(full, dtype=np.int64)), "label_global")
    if chosen == "reference":
        from minjiang.kernels.label import _reference

        local, n = _reference.label_local(_foreground(fg), order)
        return _reference.globalise(local, n, org, full).astype(out_dtype), n
    from minjiang.kernels.label import _cpu

    fg3 = _foreground_bytes(fg)
    pad = 3 - fg.ndim
    org3 = np.array((0,) * pad + org, dtype=np.int64)
    full3 = np.array((1,) * pad + full, dtype=np.int64)
    labels = np.zeros(fg3.shape, dtype=out_dtype)
    n = _cpu.label_runs(fg3, order, labels, org3, full3, True, _run_tables(out_dtype))
    return labels.reshape(fg.shape), int(n)


def labels_present(labels: Any) -> np.ndarray:
    """The distinct non-zero labels of a label block, sorted.

    One value per run of equal labels in C order is sorted, not one per cell, so a
    block of large components costs little more than one pass.

    Parameters
    ----------
    labels
        Integer labels (0 = background).

    Returns
    -------
    numpy.ndarray
        int64, sorted and unique.
    """
    from minjiang.kernels.label import _cpu

    lab = np.asarray(labels)
    if lab.dtype.kind not in "iu":
        raise TypeError(f"labels_present: needs integer labels, got dtype {lab.dtype.name!r}")
    if lab.ndim > 3:
        lab = lab.reshape(-1, *lab.shape[-2:])
    if lab.dtype not in (np.dtype(np.int32), np.dtype(np.int64)):
        lab = lab.astype(np.int64)
    # any strides (an interior view of a padded block is read in place, not copied)
    return np.unique(_cpu.labels_present(_as3(lab))).astype(np.int64, copy=False)


def _halo(halo: int | Any, ndim: int) -> tuple[tuple[int, int], ...]:
    given: Any = halo  # an int, or per dim an int or a (before, after) pair
    # bool(): np.isscalar is a TypeGuard, which would narrow the values to NumPy scalars
    if bool(np.isscalar(given)):
        return ((int(given), int(given)),) * ndim
    out = tuple((int(h), int(h)) if bool(np.isscalar(h)) else (int(h[0]), int(h[1])) for h in given)
    if len(out) != ndim or any(a < 0 or b < 0 for a, b in out):
        raise ValueError(
            f"face_equivalences: halo {halo!r} must give (before, after) >= 0 for {ndim} dims"
        )
    return out


def face_equivalences(
    padded: Any, connectivity: int, halo: int | Any = 1, *, backend: str | None = None
) -> np.ndarray:
    """Pairs of labels that touch, read from a label block padded by its neighbours' labels.

    Every pair of neighbouring foreground cells (under ``connectivity``) with
    different labels and at least one cell in the block's interior is reported once,
    so each pair across two blocks is found by exactly the block whose interior holds
    its first cell. The whole interior is scanned, so a block that spans several
    labelling blocks is handled too.

    Parameters
    ----------
    padded
        Integer labels (0 = background) of the block plus ``halo`` cells of its
        neighbours on each side (0 beyond the array's edge).
    connectivity
        As for :func:`label_local`.
    halo
        Cells of padding: one int for all sides, or ``(before, after)`` per axis.
    backend
        ``"reference"`` or ``"cpu"``; ``None`` follows the array type.

    Returns
    -------
    numpy.ndarray
        ``(k, 2)`` int64 pairs ``(a, b)`` with ``a < b``, sorted and unique.
    """
    chosen = resolve_backend(backend, padded, kernel="face_equivalences", has_gpu=False)
    lab = np.asarray(padded)
    if lab.dtype.kind not in "iu":
        raise TypeError(f"face_equivalences: needs integer labels, got dtype {lab.dtype.name!r}")
    order = connectivity_order(lab.ndim, connectivity)
    h = _halo(halo, lab.ndim)
    if any(a + b > n for (a, b), n in zip(h, lab.shape, strict=True)):
        raise ValueError(f"face_equivalences: halo {h!r} is larger than the block {lab.shape}")
    if lab.dtype not in (np.dtype(np.int32), np.dtype(np.int64)):
        lab = lab.astype(np.int64)  # the numba scan is compiled for these two
    if chosen == "reference":
        from minjiang.kernels.label import _reference

        return _reference.face_equivalences(lab.astype(np.int64, copy=False), h, order)
    from minjiang.kernels.label import _cpu, _reference

    h3 = ((0, 0),) * (3 - lab.ndim) + h
    lab3 = np.ascontiguousarray(_as3(lab))
    lo = np.array([a for a, _ in h3], dtype=np.int64)
    hi = np.array([n - b for (_, b), n in zip(h3, lab3.shape, strict=True)], dtype=np.int64)
    offs = np.array(_reference.half_offsets(3, order), dtype=np.int64)
    pairs = _cpu.face_equivalences(lab3, lo, hi, offs)
    return np.unique(pairs, axis=0) if pairs.size else pairs.reshape(0, 2)


def _check_pairs(pairs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    lab = np.unique(np.concatenate([np.asarray(labels, dtype=np.int64).ravel(), p.ravel()]))
    if lab.size and lab[0] <= 0:
        raise ValueError("union_find: labels must be positive (0 is background)")
    return p, lab


def union_find_roots(
    pairs: Any, labels: Any, *, backend: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Join equivalent labels: each label's smallest equivalent.

    Parameters
    ----------
    pairs
        ``(k, 2)`` label pairs that belong to one component.
    labels
        Every label present (pairs may add more).
    backend
        ``"reference"`` or ``"cpu"``.

    Returns
    -------
    labels : numpy.ndarray
        The sorted unique labels (int64).
    roots : numpy.ndarray
        For each, the smallest label of its component.
    """
    chosen = resolve_backend(backend, pairs, labels, kernel="union_find", has_gpu=False)
    p, lab = _check_pairs(pairs, labels)
    if chosen == "reference":
        from minjiang.kernels.label import _reference

        return lab, _reference.union_find_roots(p, lab)
    from minjiang.kernels.label import _cpu

    idx = _cpu.union_find_roots(
        np.searchsorted(lab, p[:, 0]), np.searchsorted(lab, p[:, 1]), lab.size
    )
    return lab, lab[idx]


def union_find_relabel(
    pairs: Any, labels: Any, *, backend: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The relabelling table ``old -> new`` of equivalent labels.

    Parameters
    ----------
    pairs
        ``(k, 2)`` label pairs that belong to one component (from
        :func:`face_equivalences`, gathered over all blocks).
    labels
        Every label present in the array (pairs may add more).
    backend
        ``"reference"`` or ``"cpu"``.

    Returns
    -------
    old : numpy.ndarray
        Sorted unique labels (int64).
    new : numpy.ndarray
        Consecutive labels 1..n (int64), numbered in order of each component's
        smallest old label.
    """
    lab, roots = union_find_roots(pairs, labels, backend=backend)
    uniq = np.unique(roots)
    return lab, np.searchsorted(uniq, roots).astype(np.int64) + 1


def relabel(labels: Any, old: Any, new: Any, *, dtype: Any = np.int64) -> np.ndarray:
    """Map ``labels`` through the table ``old -> new`` (0 stays 0).

    Parameters
    ----------
    labels
        Integer label block.
    old, new
        The table from :func:`union_find_relabel` (``old`` sorted).
    dtype
        Integer dtype of the result; it must hold ``new.max()``.

    Returns
    -------
    numpy.ndarray
        ``dtype`` labels, same shape.
    """
    from minjiang.kernels.label import _cpu

    lab = np.asarray(labels)
    if lab.dtype.kind not in "iu":
        raise TypeError(f"relabel: needs integer labels, got dtype {lab.dtype.name!r}")
    old = np.ascontiguousarray(old, dtype=np.int64)
    out_dtype = np.dtype(dtype)
    new = np.ascontiguousarray(new, dtype=out_dtype)
    flat = np.ascontiguousarray(lab).reshape(-1)
    if flat.dtype not in (np.dtype(np.int32), np.dtype(np.int64)):
        flat = flat.astype(np.int64)
    out = np.empty(flat.size, dtype=out_dtype)
    if flat.size and old.size == 0:
        if flat.any():
            raise ValueError("relabel: the table is empty but the block has labels")
        out[:] = 0
        return out.reshape(lab.shape)
    missing = _cpu.relabel(flat, old, new, out)
    if missing:
        raise ValueError(
            f"relabel: {missing} cells carry labels missing from the table; rebuild the table "
            "from the same label array"
        )
    return out.reshape(lab.shape)

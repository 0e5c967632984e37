"""Per-label statistics of a label block and an intensity block (partials that combine).

:func:`label_stats` returns, for every label of a block, the voxel count, the sums of
global voxel indices (for centroids), the half-open bounding box and the count, sum,
minimum and maximum of the non-NaN intensities; :func:`combine_stats` merges such
partials in any grouping. Counts, index sums and boxes are integers, so they combine
exactly; only the intensity sum is a float (exact too for integer intensities, whose
partial sums stay below 2**53).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from minjiang.kernels import resolve_backend

__all__ = ["STAT_COLUMNS", "combine_stats", "label_stats"]

#: Columns of a partial, all of one length (one row per label).
STAT_COLUMNS = (
    "label",
    "count",
    "sum_z",
    "sum_y",
    "sum_x",
    "z0",
    "y0",
    "x0",
    "z1",
    "y1",
    "x1",
    "valid",
    "isum",
    "imin",
    "imax",
)
_SUM = ("count", "sum_z", "sum_y", "sum_x", "valid", "isum")
_MIN = ("z0", "y0", "x0", "imin")
_MAX = ("z1", "y1", "x1", "imax")


def label_stats(
    labels: Any,
    values: Any | None = None,
    origin: Sequence[int] = (0, 0, 0),
    *,
    backend: str | None = None,
) -> dict[str, np.ndarray]:
    """Per-label partial statistics of one 3-D block.

    Parameters
    ----------
    labels
        Integer labels, 0 (or negative) for background.
    values
        Intensities on the same grid, or ``None``; NaN is skipped.
    origin
        Global index of the block's first voxel (for centroids and boxes).
    backend
        ``"reference"`` or ``"cpu"``; ``None`` follows the array type.

    Returns
    -------
    dict
        :data:`STAT_COLUMNS` -> 1-D arrays, sorted by label.
    """
    chosen = resolve_backend(backend, labels, values, kernel="label_stats", has_gpu=False)
    lab = np.asarray(labels)
    if lab.ndim != 3 or lab.dtype.kind not in "iu":
        raise TypeError(
            f"label_stats: needs 3-D integer labels, got {lab.ndim}-D {lab.dtype.name!r}"
        )
    vals = None if values is None else np.asarray(values)
    if vals is not None and vals.shape != lab.shape:
        raise ValueError(f"label_stats: values {vals.shape} and labels {lab.shape} differ in shape")
    o: Any = tuple(int(v) for v in origin)  # (z, y, x)
    if chosen == "reference":
        from minjiang.plugins.medicine.volumetry import _reference

        return _reference.label_stats(lab, vals, o)
    from minjiang.plugins.medicine.volumetry import _cpu

    has = vals is not None
    v = vals if has else np.zeros((1, 1, 1), np.float32)
    labs, count, sums, lo, hi, valid, isum, imin, imax = _cpu.label_stats(lab, v, has, *o)
    order = np.argsort(labs, kind="stable")
    out = {"label": labs, "count": count, "valid": valid, "isum": isum, "imin": imin, "imax": imax}
    for i, name in enumerate("zyx"):
        out[f"sum_{name}"] = sums[i]
        out[f"{name}0"] = lo[i]
        out[f"{name}1"] = hi[i]
    return {k: out[k][order] for k in STAT_COLUMNS}


def combine_stats(parts: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Merge partials of :func:`label_stats` (rows of one label are reduced to one).

    Parameters
    ----------
    parts
        Mappings of :data:`STAT_COLUMNS` to 1-D arrays.

    Returns
    -------
    dict
        One row per label, sorted by label.
    """
    cols = {
        k: np.concatenate([np.asarray(p[k]) for p in parts]) if parts else np.zeros(0)
        for k in STAT_COLUMNS
    }
    labels = cols["label"].astype(np.int64)
    uniq, inv = np.unique(labels, return_inverse=True)
    n = uniq.size
    out: dict[str, np.ndarray] = {"label": uniq}
    for k in _SUM:
        dtype = np.float64 if k == "isum" else np.int64
        acc = np.zeros(n, dtype=dtype)
        np.add.at(acc, inv, cols[k].astype(dtype))
        out[k] = acc
    for k in _MIN + _MAX:
        dtype = np.float64 if k.startswith("i") else np.int64
        init = (
            (np.inf if k in _MIN else -np.inf)
            if dtype == np.float64
            else (np.iinfo(np.int64).max if k in _MIN else np.iinfo(np.int64).min)
        )
        acc = np.full(n, init, dtype=dtype)
        (np.minimum if k in _MIN else np.maximum).at(acc, inv, cols[k].astype(dtype))
        out[k] = acc
    return {k: out[k] for k in STAT_COLUMNS}

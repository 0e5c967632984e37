"""Grouping of valid values by zone for exact per-zone percentiles.

:func:`group_values` reorders the values so that each zone's values are contiguous
(zones ascending, values in their original order within a zone) and returns each
zone's slice: a stable counting sort (numba, linear time) or, as the reference, NumPy's
stable argsort.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["group_values"]


def group_values(
    zones: Any, values: Any, *, backend: str = "cpu"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(ids, starts, counts, grouped)`` of positive integer ``zones`` and their values.

    Parameters
    ----------
    zones : ndarray of int, shape (n,)
        Zone of each value (positive).
    values : ndarray, shape (n,)
        The values (float64 out).
    backend : {"reference", "cpu"}
    """
    z = np.ascontiguousarray(zones, dtype=np.int64)
    v = np.ascontiguousarray(values, dtype=np.float64)
    if z.shape != v.shape or z.ndim != 1:
        raise ValueError(f"group_values: zones {z.shape} and values {v.shape} must be equal 1-D")
    if z.size and z.min() < 1:
        raise ValueError("group_values: zones must be positive integers")
    if backend == "reference":
        order = np.argsort(z, kind="stable")
        zs, grouped = z[order], v[order]
        ids, starts, counts = np.unique(zs, return_index=True, return_counts=True)
        return ids, starts, counts, grouped
    if backend != "cpu":
        raise ValueError(f"group_values: backend {backend!r} is not 'reference' or 'cpu'")
    from minjiang.plugins.forestry.zonal._cpu import counting_sort

    hist = np.bincount(z) if z.size else np.zeros(1, np.int64)
    ids = np.nonzero(hist)[0].astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(hist)]).astype(np.int64)
    grouped = np.empty_like(v)
    counting_sort(z, v, offsets[:-1].copy(), grouped)
    return ids, offsets[ids], hist[ids].astype(np.int64), grouped

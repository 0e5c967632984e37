"""Group kernels along the leading axis: per-group means and joins on a group table.

Used for day-of-year climatologies and anomalies (group = day of year), monthly
means, and any "reduce per category along time" step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from minjiang.kernels._dispatch import resolve_backend

__all__ = ["GROUP_REDUCTIONS", "group_mean", "group_reduce", "subtract_group"]

#: the reductions :func:`group_reduce` takes
GROUP_REDUCTIONS = ("mean", "sum", "min", "max", "count")


def _check_groups(x: Any, groups: Any, n_groups: int | None, name: str) -> np.ndarray:
    groups = np.asarray(groups)
    if groups.ndim != 1 or groups.shape[0] != x.shape[0]:
        raise ValueError(
            f"{name}: groups must be 1-D with one id per step of axis 0 ({x.shape[0]}), got shape {groups.shape!r}"
        )
    if groups.dtype.kind not in "iu":
        raise TypeError(f"{name}: groups must be integers, got {groups.dtype}")
    if groups.size and (groups.min() < 0 or (n_groups is not None and groups.max() >= n_groups)):
        raise ValueError(
            f"{name}: group ids must lie in [0, {n_groups}); got range [{groups.min()}, {groups.max()}]"
        )
    return groups.astype(np.int64)


def group_mean(
    x: np.ndarray, groups: np.ndarray, n_groups: int, *, backend: str | None = None
) -> np.ndarray:
    """NaN-skipping mean over axis 0 per group; groups with no finite value give NaN.

    Parameters
    ----------
    x
        Array of shape ``(t, ...)``.
    groups
        Integer group id in ``[0, n_groups)`` for each of the ``t`` steps.
    n_groups
        Number of groups (the length of the result's axis 0).

    Returns
    -------
    numpy.ndarray
        float64, shape ``(n_groups, ...)``.
    """
    if x.ndim < 1:
        raise ValueError("group_mean: x must have at least one axis")
    g = _check_groups(x, groups, n_groups, "group_mean")
    chosen = resolve_backend(backend, x, kernel="group_mean", has_gpu=True)
    if chosen == "reference":
        from minjiang.kernels.groupby import _reference

        return _reference.group_mean(np.asarray(x), g, n_groups)
    if chosen == "gpu":
        from minjiang.kernels.groupby import _gpu

        return _gpu.group_mean(x, g, int(n_groups))
    from minjiang.kernels.groupby import _cpu

    flat = np.ascontiguousarray(x).reshape(x.shape[0], -1)
    width = _cpu.band_width(int(n_groups), flat.shape[1])
    return _cpu._group_mean(flat, g, int(n_groups), width).reshape((n_groups, *x.shape[1:]))


def group_reduce(
    x: np.ndarray,
    groups: np.ndarray,
    n_groups: int,
    how: str,
    *,
    min_valid: int = 1,
    backend: str | None = None,
) -> np.ndarray:
    """NaN-skipping reduction over axis 0 per group (a monthly mean of daily data).

    Parameters
    ----------
    x
        Array of shape ``(t, ...)``.
    groups
        Integer group id in ``[0, n_groups)`` for each of the ``t`` steps.
    n_groups
        Number of groups (the length of the result's axis 0).
    how
        One of :data:`GROUP_REDUCTIONS`: ``mean``, ``sum``, ``min``, ``max`` of the
        valid (non-NaN) values, or their ``count``.
    min_valid
        A group with fewer valid values at a cell is NaN there (``count`` excepted).

    Returns
    -------
    numpy.ndarray
        float64, shape ``(n_groups, ...)``.
    """
    if how not in GROUP_REDUCTIONS:
        raise ValueError(f"group_reduce: how {how!r} is not one of {GROUP_REDUCTIONS!r}")
    if x.ndim < 1:
        raise ValueError("group_reduce: x must have at least one axis")
    g = _check_groups(x, groups, n_groups, "group_reduce")
    chosen = resolve_backend(backend, x, kernel="group_reduce", has_gpu=False)
    if chosen == "reference":
        from minjiang.kernels.groupby import _reference

        return _reference.group_reduce(np.asarray(x), g, int(n_groups), how, int(min_valid))
    from minjiang.kernels.groupby import _cpu

    # the values as they are (the kernel accumulates in float64): no float64 copy
    flat = np.ascontiguousarray(x).reshape(x.shape[0], -1)
    width = _cpu.band_width(int(n_groups), flat.shape[1])
    out = _cpu._group_reduce(
        flat, g, int(n_groups), GROUP_REDUCTIONS.index(how), int(min_valid), width
    )
    return out.reshape((n_groups, *x.shape[1:]))


def subtract_group(
    x: np.ndarray, groups: np.ndarray, table: np.ndarray, *, backend: str | None = None
) -> np.ndarray:
    """``x[t] - table[groups[t]]`` along axis 0 (an anomaly against a climatology).

    The result is float32 for float32 ``x`` and float64 otherwise.
    """
    g = _check_groups(x, groups, table.shape[0], "subtract_group")
    if tuple(table.shape[1:]) != tuple(x.shape[1:]):
        raise ValueError(
            f"subtract_group: table shape {table.shape!r} does not match x {x.shape!r} beyond axis 0"
        )
    chosen = resolve_backend(backend, x, table, kernel="subtract_group", has_gpu=True)
    if chosen == "reference":
        from minjiang.kernels.groupby import _reference

        return _reference.subtract_group(np.asarray(x), g, np.asarray(table, dtype=np.float64))
    if chosen == "gpu":
        from minjiang.kernels.groupby import _gpu

        return _gpu.subtract_group(x, g, table)
    from minjiang.kernels.groupby import _cpu

    dtype = np.result_type(x.dtype, np.float32)
    out = np.empty(x.shape, dtype=dtype)
    _cpu._subtract_group(
        np.ascontiguousarray(x).reshape(x.shape[0], -1),
        g,
        np.ascontiguousarray(table, dtype=np.float64).reshape(table.shape[0], -1),
        out.reshape(x.shape[0], -1),
    )
    return out

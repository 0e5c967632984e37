"""Voxel geometry helpers: spacing and affine from array attributes, mm -> voxels."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from minjiang.core.errors import ContractError

__all__ = [
    "GEOMETRY_ATTRS",
    "affine_of",
    "geometry_attrs",
    "median_size",
    "per_axis",
    "sigma_voxels",
    "spacing_of",
]

#: Array attributes that describe the grid; operators copy them to their outputs.
GEOMETRY_ATTRS = ("spacing", "affine", "orientation", "space", "modality")


def per_axis(value: float | Sequence[float], what: str) -> tuple[float, float, float]:
    """One value for all three axes, or three values in (z, y, x) order."""
    vals = (float(value),) * 3 if isinstance(value, int | float) else tuple(float(v) for v in value)
    if len(vals) != 3:
        raise ValueError(f"{what} needs one value or three (z, y, x), got {len(vals)}")
    return vals


def spacing_of(
    attrs: Mapping[str, Any], override: Sequence[float] | None, operator: str, name: str = "image"
) -> tuple[float, float, float]:
    """Voxel spacing in mm (z, y, x): ``override`` if given, else the ``spacing`` attribute.

    Raises
    ------
    ContractError
        When neither gives three positive finite numbers.
    """
    raw = override if override is not None else attrs.get("spacing")
    if raw is None:
        raise ContractError(
            f"{operator}: input {name!r} has no 'spacing' attribute (voxel size in mm); ingest it with "
            "a medicine reader or pass params={'spacing': [dz, dy, dx]}"
        )
    try:
        sp = tuple(float(v) for v in raw)
    except (TypeError, ValueError):
        sp = ()
    if len(sp) != 3 or not all(math.isfinite(v) and v > 0 for v in sp):
        raise ContractError(
            f"{operator}: the spacing of input {name!r} is {raw!r}; expected three positive numbers "
            "in mm for (z, y, x)"
        )
    return sp


def affine_of(attrs: Mapping[str, Any], spacing: tuple[float, float, float]) -> np.ndarray:
    """The (z, y, x, 1) -> world mm affine of the attributes, or ``diag(spacing)``."""
    raw = attrs.get("affine")
    if raw is not None:
        a = np.asarray(raw, dtype=np.float64)
        if a.shape == (4, 4) and np.all(np.isfinite(a)):
            return a
    a = np.eye(4)
    a[0, 0], a[1, 1], a[2, 2] = spacing
    return a


def sigma_voxels(sigma_mm: Sequence[float], spacing: Sequence[float]) -> tuple[float, float, float]:
    """Gaussian sigma per axis in voxels from sigma in mm."""
    return tuple(float(s) / float(d) for s, d in zip(sigma_mm, spacing, strict=True))  # type: ignore[return-value]


def median_size(size_mm: Sequence[float], spacing: Sequence[float]) -> tuple[int, int, int]:
    """Window size per axis: the odd voxel count closest to ``size_mm / spacing`` (ties
    go up), at least 1."""
    out = []
    for s, d in zip(size_mm, spacing, strict=True):
        n = float(s) / float(d)
        k = max(0, math.floor((n - 1) / 2 + 0.5))
        out.append(2 * k + 1)
    return tuple(out)  # type: ignore[return-value]


def geometry_attrs(info: Any, **extra: Any) -> dict[str, Any]:
    """The grid attributes of an input (an ``ArrayInfo``), plus ``extra``."""
    attrs = dict(getattr(info, "attrs", None) or {})
    out = {k: attrs[k] for k in GEOMETRY_ATTRS if k in attrs}
    out.update(extra)
    return out

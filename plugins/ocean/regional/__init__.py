"""Area-weighted regional means: masks, weights, and the NaN-aware weighted sums.

A region is a latitude-longitude box; a cell belongs to it when its centre lies in
the box (bounds inclusive). Longitudes are compared modulo 360, so a box from 170°E
to 120°W (``lon_min=170, lon_max=-120``) crosses the dateline as expected, and a box
spanning 360° is the whole circle. Weights are the cell area (an input array, e.g.
from the cell-corner bounds of a curvilinear grid), ``cos(lat)`` (proportional to the
exact area for evenly spaced latitudes: sin(φ+h) − sin(φ−h) = 2 sin h · cos φ) or 1.
Missing values drop out of both the weighted sum and the sum of weights.
"""

from __future__ import annotations

import numpy as np

__all__ = ["box_mask", "grid_weights", "weighted_sums"]


def box_mask(
    lat: np.ndarray, lon: np.ndarray, lat_min: float, lat_max: float, lon_min: float, lon_max: float
) -> np.ndarray:
    """Cells (broadcast of ``lat`` and ``lon``) whose centre is inside the box."""
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.mod(np.asarray(lon, dtype=np.float64), 360.0)
    in_lat = (lat >= lat_min) & (lat <= lat_max)
    span = lon_max - lon_min
    if span >= 360.0 or (span != 0 and span % 360.0 == 0):
        in_lon = np.ones_like(lon, dtype=bool)
    else:
        lo, hi = lon_min % 360.0, lon_max % 360.0
        in_lon = (lon >= lo) & (lon <= hi) if lo <= hi else (lon >= lo) | (lon <= hi)
    return in_lat & in_lon


def grid_weights(kind: str, lat: np.ndarray, area: np.ndarray | None) -> np.ndarray:
    """Cell weights: ``area`` (the given areas, or cos(lat)), ``cos_lat`` or ``none``."""
    if kind == "none":
        return np.ones_like(np.asarray(lat, dtype=np.float64))
    if kind == "area" and area is not None:
        return np.asarray(area, dtype=np.float64)
    return np.cos(np.deg2rad(np.asarray(lat, dtype=np.float64)))


def weighted_sums_reference(
    values: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(Σ w·x, Σ w) over the trailing axes, skipping NaN values; ``weights`` is (cells,)."""
    v = values.reshape(values.shape[0], -1).astype(np.float64)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    ok = np.isfinite(v) & (w[None, :] != 0)
    return np.where(ok, v * w[None, :], 0.0).sum(axis=1), np.where(ok, w[None, :], 0.0).sum(axis=1)


def weighted_sums(
    values: np.ndarray, weights: np.ndarray, *, backend: str = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """See :func:`weighted_sums_reference`; ``backend="cpu"`` runs the numba kernel."""
    if backend == "reference":
        return weighted_sums_reference(values, weights)
    from minjiang.plugins.ocean.regional._cpu import weighted_sums as cpu

    v = np.ascontiguousarray(values.reshape(values.shape[0], -1))
    w = np.ascontiguousarray(np.asarray(weights, dtype=np.float64).reshape(-1))
    return cpu(v, w)

"""Filling short runs of missing days (``maxPadLength`` of the reference codes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["pad_gaps_cpu", "pad_gaps_for", "pad_gaps_gpu", "pad_gaps_reference"]


def pad_gaps_reference(values: np.ndarray, max_length: int) -> np.ndarray:
    """Linearly interpolate NaN runs of at most ``max_length`` steps along the last axis.

    As ``pad()`` in marineHeatWaves: interior runs are interpolated between their
    neighbours, runs at either end take the nearest value, longer runs stay NaN.
    """
    out = np.array(values, dtype=np.float64, copy=True)
    if max_length <= 0:
        return out
    flat = out.reshape(-1, out.shape[-1])
    for row in flat:
        bad = np.isnan(row)
        if not bad.any() or bad.all():
            continue
        good = np.flatnonzero(~bad)
        filled = np.interp(np.flatnonzero(bad), good, row[good])
        cand = row.copy()
        cand[bad] = filled
        edges = np.diff(np.concatenate([[0], bad.astype(np.int8), [0]]))
        for s, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
            if e - s <= max_length:
                row[s:e] = cand[s:e]
    return out


def pad_gaps_cpu(values: np.ndarray, max_length: int) -> np.ndarray:
    """numba version of :func:`pad_gaps_reference`."""
    from minjiang.plugins.ocean._gaps_cpu import pad_gaps

    out = np.array(values, dtype=np.float64, copy=True)
    if max_length <= 0 or out.size == 0:
        return out
    pad_gaps(out.reshape(-1, out.shape[-1]), int(max_length))
    return out


def pad_gaps_gpu(values: Any, max_length: int) -> Any:
    """``numba.cuda`` version of :func:`pad_gaps_reference` for device (pixel, time) arrays."""
    from minjiang.plugins.ocean._gaps_gpu import pad_gaps

    return pad_gaps(values, int(max_length))


def pad_gaps_for(backend: str) -> Callable[[Any, int], Any]:
    """The gap filler of ``backend`` (``"reference"``, ``"cpu"`` or ``"gpu"``)."""
    return {"reference": pad_gaps_reference, "cpu": pad_gaps_cpu, "gpu": pad_gaps_gpu}[backend]

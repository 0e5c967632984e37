"""numba kernel of the NaN-aware weighted sums (one fused pass, no temporaries)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _sums(values, weights, total, wsum):
    nt, nc = values.shape
    for t in range(nt):
        s = 0.0
        ws = 0.0
        row = values[t]
        for c in range(nc):
            w = weights[c]
            v = row[c]
            if w != 0.0 and np.isfinite(v):
                s += w * np.float64(v)
                ws += w
        total[t] = s
        wsum[t] = ws


def weighted_sums(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    total = np.zeros(values.shape[0])
    wsum = np.zeros(values.shape[0])
    if values.size:
        _sums(values, weights, total, wsum)
    return total, wsum

"""numba kernels for the group operations (one pass, no temporaries)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _group_mean(x: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    t, m = x.shape
    acc = np.zeros((n_groups, m), dtype=np.float64)
    cnt = np.zeros((n_groups, m), dtype=np.int64)
    for i in range(t):
        g = groups[i]
        for j in range(m):
            v = x[i, j]
            if not np.isnan(v):
                acc[g, j] += v
                cnt[g, j] += 1
    for g in range(n_groups):
        for j in range(m):
            acc[g, j] = acc[g, j] / cnt[g, j] if cnt[g, j] else np.nan
    return acc


@numba.njit(cache=True, nogil=True)
def _subtract_group(x: np.ndarray, groups: np.ndarray, table: np.ndarray, out: np.ndarray) -> None:
    t, m = x.shape
    for i in range(t):
        g = groups[i]
        for j in range(m):
            out[i, j] = x[i, j] - table[g, j]

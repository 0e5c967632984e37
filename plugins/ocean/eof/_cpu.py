"""numba kernel of the Gram partial: mask, centre and weight fused into one packed copy,
then a single BLAS product (numba's np.dot)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _pack(x, w, center):
    n, c = x.shape
    keep = 0
    ok = np.zeros(c, dtype=np.bool_)
    for j in range(c):
        good = np.isfinite(w[j])
        if good:
            for i in range(n):
                if not np.isfinite(x[i, j]):
                    good = False
                    break
        ok[j] = good
        if good:
            keep += 1
    a = np.empty((n, keep))
    k = 0
    for j in range(c):
        if not ok[j]:
            continue
        mean = 0.0
        if center:
            for i in range(n):
                mean += np.float64(x[i, j])
            mean /= n
        for i in range(n):
            a[i, k] = (np.float64(x[i, j]) - mean) * w[j]
        k += 1
    return a


def gram(x: np.ndarray, w: np.ndarray, center: bool) -> np.ndarray:
    a = _pack(x, w, center)
    if a.shape[1] == 0:
        return np.zeros((x.shape[0], x.shape[0]))
    return a @ a.T

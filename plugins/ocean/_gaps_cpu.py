"""numba kernel for :mod:`minjiang.plugins.ocean._gaps`."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def pad_gaps(rows, max_length):
    n = rows.shape[1]
    for p in range(rows.shape[0]):
        row = rows[p]
        i = 0
        while i < n:
            if not np.isnan(row[i]):
                i += 1
                continue
            s = i
            while i < n and np.isnan(row[i]):
                i += 1
            e = i  # run is [s, e)
            if e - s > max_length or (s == 0 and e == n):
                continue
            if s == 0:
                for k in range(s, e):
                    row[k] = row[e]
            elif e == n:
                for k in range(s, e):
                    row[k] = row[s - 1]
            else:
                a = row[s - 1]
                b = row[e]
                x0 = s - 1
                for k in range(s, e):
                    # np.interp's formula: slope * (x - x0) + y0
                    row[k] = (b - a) / (e - x0) * (k - x0) + a

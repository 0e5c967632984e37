"""numba stable counting sort of values by zone (no validation inside)."""

from __future__ import annotations

import numba


@numba.njit(cache=True, nogil=True)
def counting_sort(zones, values, next_slot, out):  # pragma: no cover - jitted
    for i in range(zones.size):
        k = zones[i]
        out[next_slot[k]] = values[i]
        next_slot[k] += 1

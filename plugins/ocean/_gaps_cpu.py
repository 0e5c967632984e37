"""numba kernel for :mod:`minjiang.plugins.ocean._gaps`."""

from __future__ import annotations

from minjiang.plugins.ocean._gaps_row import pad_row
from numba import njit

_pad_row = njit(cache=True)(pad_row)


@njit(cache=True)
def pad_gaps(rows, max_length):
    for p in range(rows.shape[0]):
        _pad_row(rows[p], max_length)

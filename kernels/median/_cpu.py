"""numba CPU median filter over 3-D blocks (lower ranks are reshaped to 3-D)."""

from __future__ import annotations

import numba
import numpy as np
from minjiang.kernels.median._select import select_kth

_select = numba.njit(cache=True, nogil=True)(select_kth)


@numba.njit(cache=True, nogil=True)
def _median_slab(padded, out, sz, sy, sx, z0, z1):  # pragma: no cover - compiled
    ny, nx = out.shape[1], out.shape[2]
    buf = np.empty(sz * sy * sx, dtype=padded.dtype)
    cz, cy, cx = sz // 2, sy // 2, sx // 2
    for z in range(z0, z1):
        for y in range(ny):
            for x in range(nx):
                c = padded[z + cz, y + cy, x + cx]
                if c != c:  # NaN stays NaN
                    out[z, y, x] = c
                    continue
                n = 0
                for dz in range(sz):
                    for dy in range(sy):
                        for dx in range(sx):
                            v = padded[z + dz, y + dy, x + dx]
                            if v == v:
                                buf[n] = v
                                n += 1
                out[z, y, x] = _select(buf, n, n // 2)


# No parallel=True: on 2 shared cores a prange over z measured no faster (64^3, 3^3
# and 5^3 windows); chunk tasks already run in parallel.
@numba.njit(cache=True, nogil=True)
def median_valid(padded, sz, sy, sx):  # pragma: no cover - compiled
    out = np.empty(
        (padded.shape[0] - sz + 1, padded.shape[1] - sy + 1, padded.shape[2] - sx + 1),
        dtype=padded.dtype,
    )
    _median_slab(padded, out, sz, sy, sx, 0, out.shape[0])
    return out

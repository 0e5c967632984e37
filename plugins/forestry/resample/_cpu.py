"""numba kernel of the resampling: target cell by target cell (no validation inside)."""

from __future__ import annotations

import math

import numba


@numba.njit(cache=True, nogil=True)
def resample2d(src, st, dt, method, out):  # pragma: no cover - jitted
    H, W = src.shape
    rows, cols = out.shape
    for r in range(rows):
        for c in range(cols):
            X = dt[2] + dt[0] * (c + 0.5)
            Y = dt[5] + dt[4] * (r + 0.5)
            fc = (X - st[2]) / st[0]
            fr = (Y - st[5]) / st[4]
            if method == 0:
                i, j = math.floor(fr), math.floor(fc)
                out[r, c] = src[i, j] if 0 <= i < H and 0 <= j < W else math.nan
            elif method == 1:
                y0, x0 = math.floor(fr - 0.5), math.floor(fc - 0.5)
                ty, tx = fr - 0.5 - y0, fc - 0.5 - x0
                num = den = 0.0
                for di, wy in ((0, 1 - ty), (1, ty)):
                    for dj, wx in ((0, 1 - tx), (1, tx)):
                        i, j = y0 + di, x0 + dj
                        w = wy * wx
                        if w > 0 and 0 <= i < H and 0 <= j < W and not math.isnan(src[i, j]):
                            num += w * src[i, j]
                            den += w
                out[r, c] = num / den if den > 0 else math.nan
            else:
                # target cell bounds in source index space (ordered low to high)
                ca = (dt[2] + dt[0] * c - st[2]) / st[0]
                cb = (dt[2] + dt[0] * (c + 1) - st[2]) / st[0]
                ra = (dt[5] + dt[4] * r - st[5]) / st[4]
                rb = (dt[5] + dt[4] * (r + 1) - st[5]) / st[4]
                c0, c1 = min(ca, cb), max(ca, cb)
                r0, r1 = min(ra, rb), max(ra, rb)
                num = den = 0.0
                for i in range(max(0, math.floor(r0)), min(H, math.ceil(r1))):
                    wy = min(r1, i + 1) - max(r0, i)
                    for j in range(max(0, math.floor(c0)), min(W, math.ceil(c1))):
                        wx = min(c1, j + 1) - max(c0, j)
                        v = src[i, j]
                        if wy > 0 and wx > 0 and not math.isnan(v):
                            num += wy * wx * v
                            den += wy * wx
                out[r, c] = num / den if den > 0 else math.nan

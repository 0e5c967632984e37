"""Plain-Python reference of the tree-top search (the specification)."""

from __future__ import annotations

import math

import numpy as np


def tops(
    chm: np.ndarray,
    dx: float,
    dy: float,
    a: float,
    b: float,
    wmin: float,
    wmax: float,
    hmin: float,
    hy: int,
    hx: int,
    out: np.ndarray,
) -> None:
    H, W = out.shape
    for i in range(H):
        for j in range(W):
            r, c = i + hy, j + hx
            h = chm[r, c]
            if math.isnan(h) or h < hmin:
                continue
            rad = min(max(a + b * h, wmin), wmax) / 2.0
            ry, rx = math.floor(rad / dy + 1e-9), math.floor(rad / dx + 1e-9)
            top = True
            for u in range(r - ry, r + ry + 1):
                for v in range(c - rx, c + rx + 1):
                    if (u == r and v == c) or not (0 <= u < chm.shape[0] and 0 <= v < chm.shape[1]):
                        continue
                    if ((u - r) * dy) ** 2 + ((v - c) * dx) ** 2 > rad * rad + 1e-12:
                        continue
                    g = chm[u, v]
                    if math.isnan(g):
                        continue
                    if g > h or (g == h and (u < r or (u == r and v < c))):
                        top = False
                        break
                if not top:
                    break
            out[i, j] = top

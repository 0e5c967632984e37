"""NumPy reference of the resampling: written as separable weight matrices, apart from
the numba kernel's per-cell loops.

A north-up resampling is separable: every method is ``out = Wy @ src @ Wx.T`` with a
rows weight matrix ``Wy`` (target rows x source rows) and a columns one ``Wx``, and NaN
cells are left out by applying the same matrices to the validity mask and dividing
(``nearest``: one-hot matrices; ``bilinear``: two linear weights per target centre;
``average``: the overlap lengths of target and source cells).
"""

from __future__ import annotations

import numpy as np


def _weights(
    method: int, lo: np.ndarray, hi: np.ndarray, centre: np.ndarray, size: int
) -> np.ndarray:
    """The (targets x sources) weights along one axis; ``lo``/``hi``/``centre`` are the
    target cells' edges and centres in source index units."""
    n = len(centre)
    w = np.zeros((n, size))
    if method == 0:  # nearest: the source cell holding the centre
        idx = np.floor(centre).astype(np.int64)
        ok = (idx >= 0) & (idx < size)
        w[np.nonzero(ok)[0], idx[ok]] = 1.0
    elif method == 1:  # bilinear: the two source centres around the target centre
        left = np.floor(centre - 0.5).astype(np.int64)
        frac = centre - 0.5 - left
        for k, wk in ((left, 1.0 - frac), (left + 1, frac)):
            ok = (k >= 0) & (k < size) & (wk > 0)
            w[np.nonzero(ok)[0], k[ok]] += wk[ok]
    else:  # average: the length of each source cell inside the target cell
        edges = np.arange(size + 1, dtype=np.float64)
        a, b = np.minimum(lo, hi)[:, None], np.maximum(lo, hi)[:, None]
        w = np.clip(np.minimum(b, edges[None, 1:]) - np.maximum(a, edges[None, :-1]), 0, None)
    return w


def resample2d(
    src: np.ndarray, st: np.ndarray, dt: np.ndarray, method: int, out: np.ndarray
) -> None:
    H, W = src.shape
    rows, cols = out.shape
    # target edges and centres, mapped into source index space
    cx = np.arange(cols + 1) * dt[0] + dt[2]
    ry = np.arange(rows + 1) * dt[4] + dt[5]
    col_edges = (cx - st[2]) / st[0]
    row_edges = (ry - st[5]) / st[4]
    col_centres = ((np.arange(cols) + 0.5) * dt[0] + dt[2] - st[2]) / st[0]
    row_centres = ((np.arange(rows) + 0.5) * dt[4] + dt[5] - st[5]) / st[4]
    wy = _weights(method, row_edges[:-1], row_edges[1:], row_centres, H)
    wx = _weights(method, col_edges[:-1], col_edges[1:], col_centres, W)
    valid = ~np.isnan(src)
    num = wy @ np.where(valid, src, 0.0) @ wx.T
    den = wy @ valid.astype(np.float64) @ wx.T
    if method == 0:
        # one source cell or none: NaN where it is NaN or outside
        hit = (wy.sum(1)[:, None] * wx.sum(1)[None, :]) > 0
        out[...] = np.where(hit & (den > 0), num, np.nan)
        return
    with np.errstate(invalid="ignore", divide="ignore"):
        out[...] = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)

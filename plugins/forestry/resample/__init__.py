"""Resampling of a north-up raster onto another north-up grid of the same CRS.

Target cell centres are mapped into the source's index space
(``col = (X - c) / a``, ``row = (Y - f) / e``):

* ``nearest``: the source cell containing the target centre (``floor``);
* ``bilinear``: the four source cells around the target centre, weights from the
  distances between cell centres; NaN or outside neighbours are left out and the
  weights of the others renormalised (as GDAL does with nodata);
* ``average``: the mean of the source cells the target cell overlaps, each weighted
  by its overlapped area (GDAL's ``average`` since 3.1), NaN cells left out.

A target cell with no valid source is NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["METHODS", "resample"]

METHODS = ("nearest", "bilinear", "average")


def resample(
    src: Any,
    src_transform: Any,
    dst_transform: Any,
    dst_shape: tuple[int, int],
    method: str,
    *,
    backend: str = "cpu",
) -> np.ndarray:
    """Resample the last two dims of ``src`` onto ``dst_shape`` (float64 out).

    Parameters
    ----------
    src : ndarray, shape (..., H, W)
    src_transform, dst_transform : sequence of 6 floats
        rasterio-order affine transforms (``b = d = 0``: north-up).
    dst_shape : (rows, cols)
    method : {"nearest", "bilinear", "average"}
    backend : {"reference", "cpu"}
    """
    if method not in METHODS:
        raise ValueError(f"resample: method {method!r} is not one of {METHODS!r}")
    src = np.asarray(src, dtype=np.float64)
    st = np.asarray(src_transform, dtype=np.float64)
    dt = np.asarray(dst_transform, dtype=np.float64)
    if st[1] != 0 or st[3] != 0 or dt[1] != 0 or dt[3] != 0:
        raise ValueError("resample: only north-up (unrotated) transforms are supported")
    lead = src.shape[:-2]
    flat = src.reshape((-1, *src.shape[-2:]))
    out = np.empty((flat.shape[0], *dst_shape))
    code = METHODS.index(method)
    if backend == "reference":
        from minjiang.plugins.forestry.resample._reference import resample2d
    elif backend == "cpu":
        from minjiang.plugins.forestry.resample._cpu import resample2d
    else:
        raise ValueError(f"resample: backend {backend!r} is not 'reference' or 'cpu'")
    for k in range(flat.shape[0]):
        resample2d(np.ascontiguousarray(flat[k]), st, dt, code, out[k])
    return out.reshape((*lead, *dst_shape))

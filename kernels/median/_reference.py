"""NumPy specification of the median filter.

The median of a window is the element of rank ``n // 2`` (0-based) among its ``n``
non-NaN values, which is ``scipy.ndimage.median_filter``'s choice when nothing is NaN
(and its upper median for even window sizes). A NaN input cell stays NaN; a window
holding only NaN gives NaN.
"""

from __future__ import annotations

import numpy as np


def median_valid(padded: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """Median over windows of ``size`` that fit entirely inside ``padded``."""
    win = np.lib.stride_tricks.sliding_window_view(padded, size)
    out_shape = win.shape[: padded.ndim]
    flat = np.sort(win.reshape(*out_shape, -1), axis=-1)  # NaN sorts last
    if padded.dtype.kind == "f":
        n = np.count_nonzero(~np.isnan(flat), axis=-1)
    else:
        n = np.full(out_shape, flat.shape[-1])
    k = np.minimum(n // 2, flat.shape[-1] - 1)
    out = np.take_along_axis(flat, k[..., None], axis=-1)[..., 0]
    if padded.dtype.kind == "f":
        centre = tuple(slice(s // 2, s // 2 + o) for s, o in zip(size, out_shape, strict=True))
        out = np.where(np.isnan(padded[centre]) | (n == 0), np.nan, out).astype(padded.dtype)
    return out

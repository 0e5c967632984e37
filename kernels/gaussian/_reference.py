"""NumPy specification of the separable Gaussian filter (valid part of a padded block)."""

from __future__ import annotations

import numpy as np


def gaussian_weights(sigma: float, radius: int) -> np.ndarray:
    """Normalised order-0 Gaussian weights, computed exactly as SciPy does."""
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x**2)
    return phi / phi.sum()


def gaussian_valid(
    padded: np.ndarray, weights: list[np.ndarray | None], out_dtype: np.dtype
) -> np.ndarray:
    """Correlate ``padded`` with ``weights[d]`` along each axis d, keeping only full windows.

    ``weights[d] is None`` leaves axis d untouched. Intermediate passes are float64.
    """
    y = padded.astype(np.float64)
    for axis, w in enumerate(weights):
        if w is None:
            continue
        n_out = y.shape[axis] - (w.size - 1)
        acc = np.zeros((*y.shape[:axis], n_out, *y.shape[axis + 1 :]))
        for k in range(w.size):
            window = [slice(None)] * y.ndim
            window[axis] = slice(k, k + n_out)
            acc += w[k] * y[tuple(window)]
        y = acc
    return y.astype(out_dtype)

"""NumPy reference of the all-origins mean squared displacement (direct sum, the spec).

``msd[m, i, k] = mean over t in [0, T - m) of (x[t + m, i, k] - x[t, i, k])**2``.
"""

from __future__ import annotations

import numpy as np


def msd_per_atom(x: np.ndarray) -> np.ndarray:
    """(lag, atom, dim) float64 MSD of (frame, atom, dim) unwrapped positions."""
    x = np.asarray(x, dtype=np.float64)
    t = x.shape[0]
    out = np.zeros(x.shape, dtype=np.float64)
    for m in range(1, t):
        out[m] = ((x[m:] - x[:-m]) ** 2).mean(axis=0)
    return out

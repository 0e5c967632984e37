"""FFT algorithm of the all-origins MSD (Kneller et al., nMoldyn; as in tidynamics).

``MSD(m) = S1(m) - 2 S2(m)`` with ``S2(m) = sum_t x(t) x(t+m) / (T - m)`` (an
autocorrelation by zero-padded FFT, NumPy's pocketfft over all atoms at once) and
``S1`` from the recursion ``Q(m) = Q(m-1) - D(m-1) - D(T-m)``, ``D = x**2``, in
numba. Each atom's mean position is subtracted first: the MSD does not change, and
the two large terms then cancel with less rounding.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _s1(d: np.ndarray, out: np.ndarray) -> None:
    t, n = d.shape
    for i in range(n):
        q = 0.0
        for k in range(t):
            q += d[k, i]
        q *= 2.0
        for m in range(t):
            if m > 0:
                q = q - d[m - 1, i] - d[t - m, i]
            out[m, i] = q / (t - m)


def msd_per_atom(x: np.ndarray) -> np.ndarray:
    """(lag, atom, dim) float64 MSD of (frame, atom, dim) unwrapped positions."""
    x = np.asarray(x, dtype=np.float64)
    t = x.shape[0]
    shape = x.shape
    flat = x.reshape(t, -1)
    flat = flat - flat.mean(axis=0)
    n = 1 << int(np.ceil(np.log2(2 * t))) if t > 1 else 2
    f = np.fft.rfft(flat, n=n, axis=0)
    s2 = np.fft.irfft(f * f.conj(), n=n, axis=0)[:t] / (t - np.arange(t))[:, None]
    s1 = np.empty_like(flat)
    _s1(np.ascontiguousarray(flat * flat), s1)
    out = s1 - 2.0 * s2
    out[0] = 0.0
    return out.reshape(shape)

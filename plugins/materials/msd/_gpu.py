"""GPU path of the all-origins MSD (CuPy): the FFT algorithm as array code.

``MSD(m) = S1(m) - 2 S2(m)`` as in the CPU kernel: ``S2`` the autocorrelation of each
atom's centred coordinate by zero-padded FFT (``cupy.fft``, cuFFT, over all atoms at
once), and ``S1`` without the CPU's sequential recursion: with ``D = x**2`` and
``C(j) = sum_{k<j} D(k)`` (an exclusive prefix sum along time, ``S = C(T)``), the
recursion ``Q(m) = Q(m-1) - D(m-1) - D(T-m)``, ``Q(0) = 2 S`` unrolls to
``Q(m) = S - C(m) + C(T - m)`` and ``S1(m) = Q(m) / (T - m)``.

Written against the array module of its input (``cupy`` on the device; ``numpy``
runs the same lines, which is how ``tests/plugins/materials/test_gpu_paths.py`` checks
it on machines without a GPU). Equal to the CPU kernel within 1e-10 of the MSD's
scale, not bit for bit: cuFFT and the prefix sum add in another order than pocketfft
and the recursion.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from minjiang.kernels import array_namespace

__all__ = ["msd_per_atom"]


def msd_per_atom(x: Any) -> Any:
    """(lag, atom, dim) float64 MSD of (frame, atom, dim) unwrapped positions, on the
    device of ``x`` (a CuPy array gives a CuPy array)."""
    xp = array_namespace(x)
    x = xp.asarray(x, dtype=xp.float64)
    t = x.shape[0]
    shape = x.shape
    flat = x.reshape(t, -1)
    flat = flat - flat.mean(axis=0)
    n = 1 << int(np.ceil(np.log2(2 * t))) if t > 1 else 2
    f = xp.fft.rfft(flat, n=n, axis=0)
    lags = xp.arange(t, dtype=xp.float64)
    s2 = xp.fft.irfft(f.real**2 + f.imag**2, n=n, axis=0)[:t] / (t - lags)[:, None]
    d = flat * flat
    c = xp.zeros((t + 1, d.shape[1]), dtype=xp.float64)
    xp.cumsum(d, axis=0, out=c[1:])
    m = xp.arange(t)
    s1 = (c[t][None, :] - c[m] + c[t - m]) / (t - lags)[:, None]
    out = s1 - 2.0 * s2
    out[0] = 0.0
    return out.reshape(shape)

"""NumPy's ``linear`` percentile arithmetic, compiled by both backends.

Plain Python: ``_cpu`` compiles these with ``numba.njit`` and ``_gpu`` as
``numba.cuda`` device functions, so the two interpolate the same two order
statistics with the same operations as ``numpy.percentile`` (bit for bit).
"""

from __future__ import annotations


def virtual_index(n, q):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """NumPy's virtual index of quantile ``q`` among ``n`` sorted values (``linear``)."""
    return n * q + (1.0 + q * (1.0 - 1.0 - 1.0)) - 1.0


def lerp(x0, x1, g):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """NumPy's ``_lerp``: ``x0 + (x1 - x0) * g``, evaluated from the nearer end."""
    d = x1 - x0
    if g >= 0.5:
        return x1 - d * (1.0 - g)
    return x0 + d * g

"""Burn severity as array code for the GPU backend (CuPy; also runs on NumPy arrays,
where the tests compare it with the kernels): the reference's operations in its types
(ratios in float64, stored in the inputs' float type), so dNBR, RdNBR, RBR and the
classes equal the NumPy reference exactly, and the numba kernel to one float32 ulp."""

from __future__ import annotations

from typing import Any

from minjiang.kernels import array_namespace

__all__ = ["burn_severity"]


def burn_severity(pre: Any, post: Any, edges: tuple[float, ...]) -> dict[str, Any]:
    """dNBR (the inputs' type), RdNBR and RBR (float64 arithmetic, stored in it) and the
    severity classes (uint8) of ``pre``/``post`` on the device they live on."""
    xp = array_namespace(pre, post)
    d = pre - post
    d64, p64 = d.astype(xp.float64), pre.astype(xp.float64)
    root = xp.sqrt(xp.abs(p64))
    den = p64 + 1.001
    nan = xp.float64("nan")
    rdnbr = xp.where(root == 0, nan, d64 / xp.where(root == 0, 1.0, root))
    rbr = xp.where(den == 0, nan, d64 / xp.where(den == 0, 1.0, den))
    severity = xp.ones(d.shape, dtype=xp.uint8)
    for e in edges:
        severity += (d64 >= e).astype(xp.uint8)
    severity[xp.isnan(d64)] = 0
    return {
        "dnbr": d,
        "rdnbr": rdnbr.astype(d.dtype),
        "rbr": rbr.astype(d.dtype),
        "severity": severity,
    }

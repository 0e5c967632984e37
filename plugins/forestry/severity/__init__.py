"""Burn severity from pre- and post-fire NBR: dNBR, RdNBR, RBR and the USGS classes.

``dNBR = NBR_pre - NBR_post`` (Key & Benson 2006), ``RdNBR = dNBR / sqrt(|NBR_pre|)``
(Miller & Thode 2007), ``RBR = dNBR / (NBR_pre + 1.001)`` (Parks et al. 2014), all on
unscaled NBR (multiply by 1000 for the scaled values of those papers). A zero
denominator gives NaN. Severity classes (uint8, lower edge inclusive, on dNBR):

==== ========================== ====================
code class                      dNBR
==== ========================== ====================
0    no data                    NaN
1    enhanced regrowth, high    < -0.25
2    enhanced regrowth, low     [-0.25, -0.1)
3    unburned                   [-0.1, 0.1)
4    low severity               [0.1, 0.27)
5    moderate-low severity      [0.27, 0.44)
6    moderate-high severity     [0.44, 0.66)
7    high severity              >= 0.66
==== ========================== ====================
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["CLASS_NAMES", "EDGES", "burn_severity"]

#: lower edges of classes 2..7 (USGS FIREMON / Key & Benson 2006, as tabulated by UN-SPIDER)
EDGES = (-0.25, -0.1, 0.1, 0.27, 0.44, 0.66)
CLASS_NAMES = (
    "no data",
    "enhanced regrowth, high",
    "enhanced regrowth, low",
    "unburned",
    "low severity",
    "moderate-low severity",
    "moderate-high severity",
    "high severity",
)


def burn_severity(pre: Any, post: Any, *, backend: str = "cpu") -> dict[str, np.ndarray]:
    """dNBR, RdNBR, RBR (float, the inputs' float type) and severity (uint8).

    Parameters
    ----------
    pre, post : ndarray
        Pre- and post-fire NBR on one grid (same shape); NaN is no data.
    backend : {"reference", "cpu", "gpu"}
        NumPy reference, the numba kernel, or array code on the arrays' device (CuPy
        on the GPU backend).
    """
    if backend == "gpu":
        from minjiang.kernels import array_namespace
        from minjiang.plugins.forestry.severity._gpu import burn_severity as gpu

        xp = array_namespace(pre, post)
        if pre.shape != post.shape:
            raise ValueError(
                f"burn_severity: pre {pre.shape} and post {post.shape} must have the same shape"
            )
        dtype = xp.result_type(pre.dtype, post.dtype, xp.float32)
        return gpu(pre.astype(dtype, copy=False), post.astype(dtype, copy=False), EDGES)
    pre, post = np.asarray(pre), np.asarray(post)
    if pre.shape != post.shape:
        raise ValueError(
            f"burn_severity: pre {pre.shape} and post {post.shape} must have the same shape"
        )
    dtype = np.result_type(pre.dtype, post.dtype, np.float32)
    pre, post = pre.astype(dtype, copy=False), post.astype(dtype, copy=False)
    if backend == "reference":
        from minjiang.plugins.forestry.severity._reference import burn_severity as ref

        return ref(pre, post)
    if backend != "cpu":
        raise ValueError(f"burn_severity: backend {backend!r} is not 'reference', 'cpu' or 'gpu'")
    from minjiang.plugins.forestry.severity._cpu import burn_severity as cpu

    shape = pre.shape
    d, rd, rb = (np.empty(pre.size, dtype) for _ in range(3))
    cls = np.empty(pre.size, np.uint8)
    cpu(
        np.ascontiguousarray(pre).reshape(-1),
        np.ascontiguousarray(post).reshape(-1),
        np.asarray(EDGES, dtype=np.float64),
        d,
        rd,
        rb,
        cls,
    )
    return {
        "dnbr": d.reshape(shape),
        "rdnbr": rd.reshape(shape),
        "rbr": rb.reshape(shape),
        "severity": cls.reshape(shape),
    }

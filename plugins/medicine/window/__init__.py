"""Modality LUT (linear rescale) and VOI windowing of greyscale images (DICOM PS3.3 C.11)."""

from __future__ import annotations

from typing import Any

import numpy as np
from minjiang.kernels import resolve_backend

__all__ = ["FUNCTIONS", "voi_window"]

#: VOI LUT Function (0028,1056) values and their kernel codes.
FUNCTIONS = {"LINEAR": 0, "LINEAR_EXACT": 1, "SIGMOID": 2}


def voi_window(
    x: Any,
    center: float,
    width: float,
    function: str = "LINEAR",
    *,
    y_min: float = 0.0,
    y_max: float = 1.0,
    slope: float = 1.0,
    intercept: float = 0.0,
    dtype: str = "float32",
    backend: str | None = None,
) -> np.ndarray:
    """Map stored values through the modality LUT and a VOI window.

    ``v = x * slope + intercept`` (PS3.3 C.11.1, linear form), then ``v`` is mapped into
    ``[y_min, y_max]`` by the VOI LUT function:

    - LINEAR (C.11.2.1.2.1): ``v <= c - 0.5 - (w-1)/2`` gives ``y_min``,
      ``v > c - 0.5 + (w-1)/2`` gives ``y_max``, else
      ``((v - (c - 0.5)) / (w-1) + 0.5) * (y_max - y_min) + y_min``;
    - LINEAR_EXACT (C.11.2.1.3.2): the same with ``c`` and ``w`` as given;
    - SIGMOID (C.11.2.1.3.1): ``(y_max - y_min) / (1 + exp(-4 (v - c) / w)) + y_min``.

    Parameters
    ----------
    x
        Stored (or already rescaled) values; NaN stays NaN.
    center, width
        Window Center (0028,1050) and Window Width (0028,1051), in rescaled units.
    function
        ``"LINEAR"``, ``"LINEAR_EXACT"`` or ``"SIGMOID"``.
    y_min, y_max
        Output range.
    slope, intercept
        Rescale Slope and Intercept (identity by default, for data stored in HU).
    dtype
        Output dtype, ``"float32"`` or ``"float64"``.
    backend
        ``"reference"``, ``"cpu"`` or ``"gpu"``; ``None`` follows the array type
        (CuPy arrays run on the GPU).

    Returns
    -------
    numpy.ndarray or cupy.ndarray
        Same shape as ``x``, same array type.
    """
    chosen = resolve_backend(backend, x, kernel="voi_window", has_gpu=True)
    arr = x if chosen == "gpu" else np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"voi_window: needs real values, got dtype {arr.dtype.name!r}")
    func = str(function).upper()
    if func not in FUNCTIONS:
        raise ValueError(
            f"voi_window: unknown function {function!r}; expected one of {sorted(FUNCTIONS)!r}"
        )
    if func == "LINEAR" and not width >= 1:
        raise ValueError(f"voi_window: LINEAR needs width >= 1 (PS3.3 C.11.2.1.2.1), got {width!r}")
    if func != "LINEAR" and not width > 0:
        raise ValueError(f"voi_window: {func} needs width > 0, got {width!r}")
    values = (center, width, y_min, y_max, slope, intercept)
    if not all(np.isfinite(v) for v in values):
        raise ValueError(
            "voi_window: center, width, y_min, y_max, slope and intercept must be finite"
        )
    out_dtype = np.dtype(dtype)
    if out_dtype not in (np.float32, np.float64):
        raise ValueError(f"voi_window: dtype must be 'float32' or 'float64', got {dtype!r}")
    code = FUNCTIONS[func]
    if chosen == "gpu":
        from minjiang.plugins.medicine.window import _gpu

        return _gpu.voi_window(arr, slope, intercept, center, width, code, y_min, y_max, out_dtype)
    if chosen == "reference":
        from minjiang.plugins.medicine.window import _reference

        return _reference.voi_window(
            arr, slope, intercept, center, width, code, y_min, y_max, out_dtype
        )
    from minjiang.plugins.medicine.window import _cpu

    flat = np.ascontiguousarray(arr).reshape(-1)
    out = np.empty(flat.size, dtype=out_dtype)
    _cpu.voi_window(
        flat,
        out,
        float(slope),
        float(intercept),
        float(center),
        float(width),
        code,
        float(y_min),
        float(y_max),
    )
    return out.reshape(arr.shape)

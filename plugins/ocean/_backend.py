"""Backend resolution of the ocean entry points: it follows the input array type.

As :func:`minjiang.kernels._dispatch.resolve_backend`: ``None`` picks ``"gpu"`` for
CuPy input and ``"cpu"`` (numba) for NumPy input; ``"reference"`` is the NumPy
specification. One addition: under numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``)
``"gpu"`` also accepts NumPy arrays, so that the ``numba.cuda`` kernels can be checked
on machines without a GPU. Nothing here imports CuPy or numba.cuda.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from minjiang.core.errors import ParameterError
from minjiang.kernels._dispatch import BACKENDS, is_gpu_array, resolve_backend

__all__ = ["array_module", "resolve", "to_host"]


def resolve(backend: str | None, *arrays: Any, what: str) -> str:
    """The backend that runs ``arrays``: ``backend`` if given, else from their type.

    Parameters
    ----------
    backend
        ``"reference"``, ``"cpu"``, ``"gpu"`` or ``None`` (follow the arrays).
    *arrays
        The array inputs (``None`` entries are ignored).
    what
        Operator name for error messages.

    Returns
    -------
    str
        ``"reference"``, ``"cpu"`` or ``"gpu"``.

    Raises
    ------
    ParameterError
        For an unknown backend name.
    TypeError
        When the backend does not match where the arrays live.
    """
    if backend is not None and backend not in BACKENDS:
        raise ParameterError(
            f"{what}: backend {backend!r} is not available; use 'cpu' (numba), 'gpu' "
            "(numba.cuda on CuPy arrays) or 'reference' (NumPy)"
        )
    if backend == "gpu" and not any(is_gpu_array(a) for a in arrays):
        from minjiang.kernels._cuda import simulator

        if simulator():
            return "gpu"
    return resolve_backend(backend, *arrays, kernel=what, has_gpu=True)


def array_module(x: Any) -> Any:
    """``cupy`` for a CuPy array, ``numpy`` otherwise (CuPy is imported only then)."""
    if is_gpu_array(x):
        import cupy

        return cupy
    return np


def to_host(x: Any) -> np.ndarray:
    """A NumPy array of ``x`` (a copy from the device for CuPy arrays)."""
    if is_gpu_array(x):
        return x.get()
    return np.asarray(x)

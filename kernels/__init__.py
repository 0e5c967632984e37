"""minjiang.kernels: generic array kernels (NumPy reference, numba CPU, CuPy GPU).

Each kernel folder (``minjiang.kernels.gaussian``, ``...median``, ...) exports its
validated wrappers. This package exports the dispatch helpers that kernel wrappers,
in minjiang and in plugins, use to follow the input array type:

* :func:`is_gpu_array` – a CuPy array? (checked without importing CuPy);
* :func:`array_backend` – ``"gpu"`` or ``"cpu"`` for a set of arrays (mixing raises);
* :func:`resolve_backend` – the implementation to run: ``"reference"``, ``"cpu"`` or
  ``"gpu"``, from an explicit choice or the array type, with the errors that name the fix;
* :func:`array_namespace` – ``cupy`` or ``numpy`` for array code that runs on both;
* :func:`to_host` – a NumPy array of a NumPy or CuPy array.

The helpers of ``numba.cuda`` kernels (per-device kernel cache, launch on CuPy's
stream, the simulator switch) are in :mod:`minjiang.kernels.cuda`.
"""

from __future__ import annotations

if __name__ != "minjiang.kernels":  # this folder is only importable as minjiang.kernels
    raise ImportError(
        f"'{__name__}' is minjiang.kernels: install minjiang (`make demo` or `pip install -e .`) and `import minjiang.kernels`"
    )

from minjiang.kernels._dispatch import (
    BACKENDS,
    Backend,
    array_backend,
    array_namespace,
    is_gpu_array,
    resolve_backend,
    to_host,
)

__all__ = [
    "BACKENDS",
    "Backend",
    "array_backend",
    "array_namespace",
    "is_gpu_array",
    "resolve_backend",
    "to_host",
]

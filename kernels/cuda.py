"""Helpers for ``numba.cuda`` kernels on CuPy arrays (the ``_gpu.py`` module of a kernel).

* :func:`cached` – the compiled kernel for a key on the current device, built once;
* :func:`launch` – run a kernel over ``n`` work items on CuPy's current stream;
* :func:`blocks_for`, :data:`THREADS` – the launch geometry (grid-stride loops);
* :func:`array_module` – ``cupy`` for CuPy arrays; NumPy arrays are accepted only under
  numba's CUDA simulator, and refused otherwise (the guard against running a GPU
  kernel on host memory);
* :func:`simulator` – whether ``NUMBA_ENABLE_CUDASIM=1`` is on, so that ``numba.cuda``
  kernels can be tested on machines without a GPU;
* :func:`device_id`, :func:`to_host`.

Nothing here imports CuPy or ``numba.cuda`` until a helper needs it. Import the module
under a name that does not shadow numba's ``cuda``::

    from minjiang.kernels import cuda as _cuda
    from numba import cuda
"""

from __future__ import annotations

from minjiang.kernels._cuda import (
    THREADS,
    array_module,
    blocks_for,
    cached,
    device_id,
    launch,
    simulator,
    to_host,
)

__all__ = [
    "THREADS",
    "array_module",
    "blocks_for",
    "cached",
    "device_id",
    "launch",
    "simulator",
    "to_host",
]

"""Shared helpers of the GPU kernels (the ``_gpu.py`` module of each kernel folder).

* :func:`cached` keeps compiled kernels per device: a dict keyed by the CUDA device id
  and whatever else specialises the kernel (dtypes, window size, expression), so a
  kernel is built once per process and device and never rebuilt per call.
* :func:`launch` starts a ``numba.cuda`` kernel on CuPy arrays, on CuPy's current
  stream, without the host synchronisation numba would otherwise do for every array
  that arrives through ``__cuda_array_interface__``.
* :func:`array_module` gives the array module of the data: CuPy for CuPy arrays and
  NumPy for NumPy arrays, which only reach a ``_gpu`` module under numba's CUDA
  simulator (``NUMBA_ENABLE_CUDASIM=1``), where the same ``numba.cuda`` kernels run on
  the CPU. That is how ``tests/kernels/test_cudasim.py`` checks the GPU logic on
  machines without a GPU.

Nothing here imports CuPy or numba at module import time.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
from minjiang.kernels._dispatch import is_gpu_array, to_host

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

#: threads per block of the 1-D launches
THREADS = 256
# Enough blocks of THREADS to fill any current GPU several times over (an H200 has 132
# multiprocessors of up to 2048 resident threads); grid-stride loops cover the rest.
_MAX_BLOCKS = 65_535
_MAX_CACHED = 512  # oldest compiled kernels are dropped beyond this
_SIM_BLOCKS = 3
_SIM_THREADS = 16

_KERNELS: dict[tuple[Hashable, ...], Any] = {}
_LOCK = threading.Lock()


def simulator() -> bool:
    """True when numba's CUDA simulator is on (``NUMBA_ENABLE_CUDASIM=1`` at import)."""
    from numba import config

    flag = getattr(config, "ENABLE_CUDASIM", None)
    if flag is None:  # a numba whose CUDA target (numba-cuda) keeps its own configuration
        flag = os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")
    return bool(flag)


def array_module(*arrays: Any) -> Any:
    """``cupy`` for CuPy arrays, ``numpy`` otherwise (NumPy only under the simulator)."""
    if any(is_gpu_array(a) for a in arrays):
        import cupy

        return cupy
    if not simulator():
        raise TypeError(
            "GPU kernels need CuPy arrays; NumPy arrays reach them only under numba's CUDA "
            "simulator (NUMBA_ENABLE_CUDASIM=1)"
        )
    return np


def device_id() -> int:
    """The current CUDA device (0 under the simulator)."""
    if simulator():
        return 0
    import cupy

    return int(cupy.cuda.runtime.getDevice())


def cached(key: tuple[Hashable, ...], build: Callable[[], Any]) -> Any:
    """The kernel ``build()`` makes for ``key`` on the current device, built once.

    Parameters
    ----------
    key : tuple
        What specialises the kernel besides the device: its name, dtypes, sizes.
    build : callable
        Makes the kernel (a ``numba.cuda`` dispatcher or a CuPy kernel object).

    Returns
    -------
    object
        The cached kernel for ``(device_id(), *key)``.
    """
    full = (device_id(), *key)
    kernel = _KERNELS.get(full)
    if kernel is None:
        with _LOCK:
            kernel = _KERNELS.get(full)
            if kernel is None:
                kernel = build()
                if len(_KERNELS) >= _MAX_CACHED:
                    del _KERNELS[next(iter(_KERNELS))]
                _KERNELS[full] = kernel
    return kernel


def blocks_for(n: int, threads: int = THREADS) -> int:
    """Blocks of ``threads`` for ``n`` work items (kernels use grid-stride loops)."""
    return max(1, min(_MAX_BLOCKS, -(-int(n) // threads)))


def launch(kernel: Any, n: int, *args: Any, threads: int = THREADS) -> None:
    """Run a ``numba.cuda`` kernel over ``n`` work items on CuPy's current stream.

    Parameters
    ----------
    kernel : numba.cuda dispatcher
        A kernel whose work items are covered by a grid-stride loop.
    n : int
        Number of work items; nothing is launched for 0.
    *args
        Kernel arguments: CuPy arrays (or NumPy arrays under the simulator) and scalars.
    threads : int
        Threads per block.
    """
    if n <= 0:
        return
    blocks = blocks_for(n, threads)
    if simulator():
        # The simulator runs every thread as a Python thread: a few small blocks keep it
        # fast, and the grid-stride loops still cover every item across several blocks.
        kernel[min(blocks, _SIM_BLOCKS), min(threads, _SIM_THREADS)](*args)
        return
    import cupy
    from numba import cuda

    ptr = cupy.cuda.get_current_stream().ptr
    stream = cuda.external_stream(ptr) if ptr else cuda.default_stream()
    # sync=False: the kernel runs on the stream the arrays were produced on, so numba
    # need not wait for that stream on the host before launching.
    converted = [cuda.as_cuda_array(a, sync=False) if is_gpu_array(a) else a for a in args]
    kernel[blocks, threads, stream](*converted)

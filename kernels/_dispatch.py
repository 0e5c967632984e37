"""Backend selection for kernels: the backend follows the input array type.

CuPy is never imported to find out: an array is a GPU array when its type comes from
the ``cupy`` module (the array-api-compat trick). NumPy arrays run on the numba CPU
kernel unless ``backend="reference"`` asks for the NumPy specification; CuPy arrays
run on the GPU kernel. A kernel without a GPU implementation refuses CuPy input with a
clear error rather than copying to the host behind the caller's back.

Under numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) an explicit ``"gpu"`` also
accepts NumPy arrays, so that ``numba.cuda`` kernels can be checked on machines
without a GPU. The public names are re-exported by :mod:`minjiang.kernels`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from minjiang.core.errors import ParameterError

if TYPE_CHECKING:
    import numpy as np

Backend = Literal["reference", "cpu", "gpu"]
BACKENDS: tuple[Backend, ...] = ("reference", "cpu", "gpu")
_BY_NAME: dict[str, Backend] = {b: b for b in BACKENDS}

__all__ = [
    "BACKENDS",
    "Backend",
    "array_backend",
    "array_namespace",
    "is_gpu_array",
    "resolve_backend",
    "to_host",
]


def is_gpu_array(x: Any) -> bool:
    """True for CuPy arrays (checked without importing CuPy)."""
    return type(x).__module__.split(".", 1)[0] == "cupy"


def array_backend(*arrays: Any) -> Literal["cpu", "gpu"]:
    """``"gpu"`` when every array is a CuPy array, ``"cpu"`` when none is; mixing raises.

    ``None`` entries are ignored. Raises ``TypeError`` when NumPy and CuPy arrays mix.
    """
    kinds = {is_gpu_array(a) for a in arrays if a is not None}
    if kinds == {True}:
        return "gpu"
    if len(kinds) > 1:
        raise TypeError(
            "kernel inputs mix NumPy and CuPy arrays; move them to one device first "
            "(cupy.asarray(...) or cupy.asnumpy(...))"
        )
    return "cpu"


def array_namespace(*arrays: Any) -> Any:
    """The array module of ``arrays``: ``cupy`` when one is a CuPy array, else ``numpy``.

    For array code that runs on both devices (``xp = array_namespace(x); xp.sum(x)``).
    CuPy is imported only when a CuPy array is given.
    """
    if any(is_gpu_array(a) for a in arrays):
        import cupy

        return cupy
    import numpy

    return numpy


def to_host(x: Any) -> np.ndarray:
    """A NumPy array of ``x``: a copy from the device for a CuPy array, else ``asarray``."""
    if is_gpu_array(x):
        return x.get()
    import numpy

    return numpy.asarray(x)


def resolve_backend(
    backend: str | None, *arrays: Any, kernel: str, has_gpu: bool = False
) -> Backend:
    """Pick the implementation that runs ``arrays``: ``backend`` if given, else their type.

    Parameters
    ----------
    backend : {"reference", "cpu", "gpu"} or None
        The implementation asked for; ``None`` follows the arrays (``"gpu"`` for CuPy
        arrays, ``"cpu"`` for NumPy arrays).
    *arrays
        The array inputs (``None`` entries are ignored).
    kernel : str
        The kernel's (or operator's) name, for error messages.
    has_gpu : bool
        Whether the kernel has a GPU implementation.

    Returns
    -------
    {"reference", "cpu", "gpu"}

    Raises
    ------
    ParameterError
        For an unknown backend name (a ``ValueError``).
    TypeError
        When the backend does not match where the arrays live, or ``"gpu"`` is asked of
        a kernel without a GPU implementation.
    """
    found = array_backend(*arrays)
    chosen: Backend | None = found if backend is None else _BY_NAME.get(backend)
    if chosen is None:
        raise ParameterError(
            f"{kernel}: unknown backend {backend!r}; expected one of {BACKENDS!r} "
            "('cpu' is numba, 'gpu' needs CuPy arrays, 'reference' is the NumPy specification)"
        )
    if chosen == "gpu" and found != "gpu":
        if backend == "gpu" and has_gpu:
            from minjiang.kernels._cuda import simulator

            if simulator():  # numba.cuda kernels run on NumPy arrays under the simulator
                return "gpu"
        raise TypeError(
            f"{kernel}: backend 'gpu' needs CuPy arrays; got NumPy arrays (use cupy.asarray)"
        )
    if chosen != "gpu" and found == "gpu":
        raise TypeError(
            f"{kernel}: backend {chosen!r} needs NumPy arrays; got CuPy arrays (use cupy.asnumpy)"
        )
    if chosen == "gpu" and not has_gpu:
        raise TypeError(
            f"{kernel}: has no GPU implementation; pass NumPy arrays to run it on the CPU"
        )
    return chosen

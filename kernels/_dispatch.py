"""Backend selection for kernels: the backend follows the input array type.

CuPy is never imported to find out: an array is a GPU array when its type comes from
the ``cupy`` module (the array-api-compat trick). NumPy arrays run on the numba CPU
kernel unless ``backend="reference"`` asks for the NumPy specification; CuPy arrays
run on the GPU kernel. A kernel without a GPU implementation refuses CuPy input with a
clear error rather than copying to the host behind the caller's back.
"""

from __future__ import annotations

from typing import Any, Literal

Backend = Literal["reference", "cpu", "gpu"]
BACKENDS: tuple[str, ...] = ("reference", "cpu", "gpu")

__all__ = ["BACKENDS", "Backend", "array_backend", "is_gpu_array", "resolve_backend"]


def is_gpu_array(x: Any) -> bool:
    """True for CuPy arrays (checked without importing CuPy)."""
    return type(x).__module__.split(".", 1)[0] == "cupy"


def array_backend(*arrays: Any) -> Backend:
    """``"gpu"`` when every array is a CuPy array, ``"cpu"`` when none is; mixing raises."""
    kinds = {is_gpu_array(a) for a in arrays if a is not None}
    if kinds == {True}:
        return "gpu"
    if len(kinds) > 1:
        raise TypeError(
            "kernel inputs mix NumPy and CuPy arrays; move them to one device first "
            "(cupy.asarray(...) or cupy.asnumpy(...))"
        )
    return "cpu"


def resolve_backend(
    backend: str | None, *arrays: Any, kernel: str, has_gpu: bool = False
) -> Backend:
    """Pick the implementation for ``arrays``: ``backend`` if given, else from their type.

    Raises ``ValueError`` for an unknown backend name and ``TypeError`` when the
    requested backend does not match where the data lives.
    """
    found = array_backend(*arrays)
    if backend is None:
        chosen: str = found
    elif backend not in BACKENDS:
        raise ValueError(f"{kernel}: unknown backend {backend!r}; expected one of {BACKENDS!r}")
    else:
        chosen = backend
    if chosen == "gpu" and found != "gpu":
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
    return chosen  # type: ignore[return-value]

"""GPU devices: what a process sees, how much of a device a task takes, and the
host-device copies of a GPU task.

Nothing here imports CuPy at module level: ``import minjiang`` stays CPU-only, and
these functions import it when a GPU is actually in use.

Copies. A GPU task reads its blocks from Zarr in one of two ways (``gpu_read``):

``pinned`` (default)
    Chunks are decoded on the host straight into a page-locked (pinned) buffer, slab by
    slab along the first axis, and each slab is copied to the device asynchronously on
    a copy stream while the next one decodes. Pinned copies run at the link's full
    speed and overlap the decoding.
``zarr``
    Zarr's own GPU buffers (``zarr.core.buffer.gpu``): the store's bytes are placed in
    device buffers and the chunks assembled on the device. Zarr's CPU codecs (Blosc,
    CRC-32C) still run on the host, so with compressed arrays each chunk crosses the
    link more than once; it pays only where the codecs run on the device.

``benchmarks/_gpu.py --part end-to-end`` measures both on a GPU node.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable
from typing import Any

__all__ = [
    "GPU_READ_MODES",
    "MAX_TASKS_PER_GPU",
    "DeviceReport",
    "device_report",
    "gpu_share",
    "read_to_device",
    "slab_rows",
    "to_device_slabs",
    "to_host_pinned",
]

#: How a GPU task's inputs reach the device.
GPU_READ_MODES = ("pinned", "zarr")

#: At most this many tasks share one device (each holds its own CUDA context).
MAX_TASKS_PER_GPU = 4

#: Fraction of a device's free memory the tasks sharing it may project to use; the
#: rest is left for CUDA contexts, CuPy's pools and compiled kernels.
DEVICE_HEADROOM = 0.8


@dataclasses.dataclass(frozen=True)
class DeviceReport:
    """One GPU as a process sees it, or why it cannot use one (``error``)."""

    node: str = ""
    model: str = ""
    compute_capability: str = ""
    memory_total: int = 0
    memory_free: int = 0
    cupy: str = ""
    cuda_runtime: str = ""
    cuda_driver: str = ""
    error: str = ""

    @property
    def usable(self) -> bool:
        return not self.error

    def lineage(self) -> dict[str, str]:
        """What a record keeps: the model and the software, not the momentary memory."""
        return {
            "model": self.model,
            "compute_capability": self.compute_capability,
            "cupy": self.cupy,
            "cuda_runtime": self.cuda_runtime,
            "cuda_driver": self.cuda_driver,
        }


def _cuda_version(v: int) -> str:
    # CUDA encodes 12.8 as 12080
    return f"{v // 1000}.{(v % 1000) // 10}"


_REPORTS: dict[int, DeviceReport] = {}


def device_report(*, fresh: bool = False) -> DeviceReport:
    """The current CUDA device of this process, or the reason there is none.

    The static part (model, versions) is cached per device; ``memory_free`` is read
    again when ``fresh``.
    """
    import socket

    node = socket.gethostname()
    try:
        import cupy
    except Exception as err:  # ImportError, or a CuPy built for another CUDA
        return DeviceReport(
            node=node, error=f"CuPy is not importable ({type(err).__name__}: {err})"
        )
    try:
        dev = int(cupy.cuda.runtime.getDevice())
        report = _REPORTS.get(dev)
        if report is None:
            props = cupy.cuda.runtime.getDeviceProperties(dev)
            name = props["name"]
            report = DeviceReport(
                node=node,
                model=name.decode() if isinstance(name, bytes) else str(name),
                compute_capability=f"{props['major']}.{props['minor']}",
                memory_total=int(props["totalGlobalMem"]),
                cupy=cupy.__version__,
                cuda_runtime=_cuda_version(int(cupy.cuda.runtime.runtimeGetVersion())),
                cuda_driver=_cuda_version(int(cupy.cuda.runtime.driverGetVersion())),
            )
            _REPORTS[dev] = report
            fresh = True
        if fresh:
            free = int(cupy.cuda.runtime.memGetInfo()[0])
            report = dataclasses.replace(report, memory_free=free)
            _REPORTS[dev] = report
        return report
    except Exception as err:  # no device visible, driver too old, ...
        return DeviceReport(node=node, error=f"no usable CUDA device ({type(err).__name__}: {err})")


def gpu_share(task_memory: int, device_free: int) -> float:
    """The fraction of one GPU a task asks Ray for.

    ``1 / n`` for the largest ``n`` (at most :data:`MAX_TASKS_PER_GPU`) such that ``n``
    tasks' projected memory fits in :data:`DEVICE_HEADROOM` of the device's free
    memory; a whole GPU when the free memory is unknown (0) or one task fills it.
    """
    if device_free <= 0 or task_memory <= 0:
        return 1.0 if device_free <= 0 else 1.0 / MAX_TASKS_PER_GPU
    n = int(DEVICE_HEADROOM * device_free // task_memory)
    n = max(1, min(MAX_TASKS_PER_GPU, n))
    # Ray keeps four decimals of a resource: round down so n shares still fit in 1
    return math.floor(10_000 / n) / 10_000


#: A pinned slab holds at least this much (smaller slabs cost more in read calls than
#: their overlap wins back).
SLAB_BYTES = 16 << 20


def slab_rows(start: int, stop: int, chunk: int, row_bytes: int) -> list[slice]:
    """Rows ``start:stop`` of the first axis cut into slabs along its chunk boundaries.

    Slabs are whole multiples of ``chunk`` (counted from the array's origin, so no
    chunk is decoded twice), at least :data:`SLAB_BYTES` and about an eighth of the
    block each; the result is relative to ``start``.
    """
    n = stop - start
    if n <= 0:
        return []
    chunk = max(1, chunk)
    target = max(SLAB_BYTES, n * row_bytes // 8)
    step = chunk * max(1, round(target / max(1, chunk * row_bytes)))
    cuts = [start, *range((start // step + 1) * step, stop, step), stop]
    return [slice(a - start, b - start) for a, b in itertools.pairwise(cuts)]


def to_device_slabs(
    shape: tuple[int, ...],
    dtype: Any,
    rows: list[slice],
    read_into: Callable[[slice | None, Any], None],
    stream: Any,
    keep: list[Any],
) -> Any:
    """A device array filled slab by slab through a pinned host buffer.

    ``read_into(rows, out)`` decodes rows ``rows`` of the first axis (``None``: the
    whole block, for 0-d and empty blocks) into the pinned NumPy view ``out``; each
    slab's copy to the device is queued on ``stream`` and runs while the next slab
    decodes. The pinned buffer is appended to ``keep``: it must stay alive until
    ``stream`` is synchronised.
    """
    import cupy
    import cupyx

    host = cupyx.empty_pinned(shape, dtype=dtype)
    dev = cupy.empty(shape, dtype=dtype)
    keep.append(host)
    if not shape or not rows:
        if host.size:
            read_into(None, host)
        dev.set(host, stream=stream)
        return dev
    for r in rows:
        read_into(r, host[r])
        dev[r].set(host[r], stream=stream)
    return dev


def read_to_device(
    store: Any,
    info: Any,
    region: tuple[slice, ...],
    mode: str = "pinned",
    *,
    stream: Any = None,
    keep: list[Any] | None = None,
) -> Any:
    """Read ``region`` of a stored array onto the current CUDA device.

    ``mode`` is ``"pinned"`` or ``"zarr"`` (see the module docstring). With ``stream``
    (pinned mode) the copies are queued on it and the caller synchronises it, keeping
    the pinned buffers in ``keep`` alive until then; without, the copy is complete on
    return.
    """
    import cupy
    import numpy as np
    from minjiang.storage import read_region

    if mode == "zarr":
        return read_region(store, info, region, device=True)
    if mode != "pinned":
        raise ValueError(f"gpu_read {mode!r} is not one of {GPU_READ_MODES!r}")
    shape = tuple(s.stop - s.start for s in region)
    dtype = np.dtype(info.dtype)
    first = region[0].start if region else 0
    rows = (
        slab_rows(first, region[0].stop, info.chunks[0], dtype.itemsize * math.prod(shape[1:]))
        if shape
        else []
    )

    def read_into(sub: slice | None, buf: Any) -> None:
        part = region if sub is None else (slice(first + sub.start, first + sub.stop), *region[1:])
        read_region(store, info, part, out=buf)

    own = stream is None
    stream = cupy.cuda.Stream(non_blocking=True) if own else stream
    held: list[Any] = [] if keep is None else keep
    dev = to_device_slabs(shape, dtype, rows, read_into, stream, held)
    if own:
        stream.synchronize()
    return dev


def to_host_pinned(x: Any) -> Any:
    """A CuPy array copied to a pinned host buffer (a NumPy array)."""
    import cupy
    import cupyx

    x = cupy.ascontiguousarray(x)
    out = cupyx.empty_pinned(x.shape, dtype=x.dtype)
    x.get(out=out)
    return out

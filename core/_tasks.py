"""The task driver: what every task does on a worker, whatever its chunk pattern.

A task reads what its pattern's step asks for (input regions with their halos,
partial states, partial parts), runs the step's kernel, writes whole chunks (or table
parts) through the dataset's :class:`minjiang.storage.Staging`, and writes its
manifest last. Only small metadata (a :class:`TaskResult`) goes back to the driver.

What a task reads, computes and writes is its pattern's business: each
``core/_patterns/<pattern>.py`` module defines a frozen task payload (a
:class:`TaskStep`) with ``read``, ``compute`` and ``write``. This module is the one
generic loop around them, plus the helpers those steps share.

Every task is idempotent: it rewrites the same chunks with the same bytes, so a retry
after a killed worker, or a re-run after a killed driver, is safe. On resume the driver
verifies the digests a manifest lists and skips the task when they all match.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from minjiang.core._events import TaskResult
from minjiang.core._operator import BlockContext
from minjiang.core.errors import ExecutionError

if TYPE_CHECKING:
    import numpy as np
    from minjiang.core._planner import TaskSpec

__all__ = [
    "Outputs",
    "PartialKernels",
    "TaskIO",
    "TaskStep",
    "run_task",
    "sub_spec",
    "task_fingerprint",
]

_THREADS_SET: list[int] = []


class TaskStep(Protocol):
    """A pattern's task payload: frozen, picklable, kernels named by dotted path."""

    @property
    def kernels(self) -> tuple[str, ...]:
        """The kernels the task runs (dotted paths), for lineage and fingerprints."""
        ...

    @property
    def threaded(self) -> bool:
        """Whether the kernel runs numba threads (capped to the task's CPUs)."""
        ...

    def read(self, io: TaskIO, spec: TaskSpec) -> Any: ...

    def compute(self, data: Any, spec: TaskSpec) -> Any: ...

    def write(self, io: TaskIO, spec: TaskSpec, result: Any) -> None: ...


@dataclasses.dataclass(frozen=True)
class Outputs:
    """What a kernel is expected to return: arrays (dims and stored dtype) and tables
    (declared columns, possibly none)."""

    dims: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    dtypes: Mapping[str, str] = dataclasses.field(default_factory=dict)
    tables: Mapping[str, Mapping[str, str]] = dataclasses.field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.dims, *self.tables)


@dataclasses.dataclass(frozen=True)
class PartialKernels:
    """The ``partial`` → ``combine`` → ``finalize`` kernels (dotted paths) that the task
    payloads of the Reduce and Aggregate patterns carry."""

    partial: str
    combine: str
    finalize: str

    @property
    def kernels(self) -> tuple[str, ...]:
        return (self.partial, self.combine, self.finalize)

    @property
    def threaded(self) -> bool:
        return True


def task_fingerprint(spec: TaskSpec) -> str:
    """What a task writes, so a manifest from a differently shaped plan never counts."""
    parts = [
        repr(spec.payload),
        repr(spec.region),
        *(f"{w.array}{w.region!r}{w.scratch}" for w in spec.writes),
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _cap_numba_threads(cpus: float) -> None:
    # numba threads inside a task are capped to the task's CPUs: no oversubscription.
    n = max(1, int(cpus))
    if _THREADS_SET and _THREADS_SET[0] == n:
        return
    import numba

    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))  # type: ignore[attr-defined]
    _THREADS_SET[:] = [n]


def pad(block: np.ndarray, pad: tuple[tuple[int, int], ...], mode: str) -> np.ndarray:
    if not any(lo or hi for lo, hi in pad):
        return block
    from minjiang.kernels.gaussian import pad_boundary

    return pad_boundary(block, pad, mode)


#: Boundary modes whose padding reads only cells near the edge it extends, so it can
#: be filled in place slab by slab (``wrap`` reads the far end of the axis).
_IN_PLACE_MODES = frozenset({"reflect", "mirror", "nearest", "constant"})


def _padded_empty(
    info: Any, region: tuple[slice, ...], pads: tuple[tuple[int, int], ...]
) -> tuple[np.ndarray, tuple[slice, ...]]:
    """An uninitialised block of ``region`` plus ``pads``, and its interior."""
    import numpy as np

    shape = tuple(s.stop - s.start + lo + hi for s, (lo, hi) in zip(region, pads, strict=True))
    interior = tuple(
        slice(lo, lo + s.stop - s.start) for s, (lo, _) in zip(region, pads, strict=True)
    )
    return np.empty(shape, dtype=info.dtype), interior


def pad_in_place(full: np.ndarray, pads: tuple[tuple[int, int], ...], mode: str) -> np.ndarray:
    """Fill the borders of ``full`` (whose interior holds the block) as :func:`pad` would.

    Axis by axis, as ``numpy.pad`` goes: each border is made by padding the thin slab
    of cells next to it (the cells the mode reads: those within ``pad + 1`` of the
    edge), across the borders of the axes already done and the interior of the rest.
    Only for the modes in ``_IN_PLACE_MODES``.
    """
    from minjiang.kernels.gaussian import pad_boundary

    ndim = full.ndim
    for axis, (lo, hi) in enumerate(pads):
        if not (lo or hi):
            continue
        n = full.shape[axis] - lo - hi

        def index(sl: slice, axis: int = axis) -> tuple[slice, ...]:
            return tuple(
                sl
                if j == axis
                else slice(None)
                if j < axis
                else slice(pads[j][0], full.shape[j] - pads[j][1])
                for j in range(ndim)
            )

        widths = [(0, 0)] * ndim
        if lo:
            k = min(n, lo + 1)
            widths[axis] = (lo, 0)
            slab = full[index(slice(lo, lo + k))]
            full[index(slice(0, lo))] = pad_boundary(slab, tuple(widths), mode)[
                tuple(slice(0, lo) if j == axis else slice(None) for j in range(ndim))
            ]
        if hi:
            k = min(n, hi + 1)
            widths[axis] = (0, hi)
            end = lo + n
            slab = full[index(slice(end - k, end))]
            full[index(slice(end, end + hi))] = pad_boundary(slab, tuple(widths), mode)[
                tuple(slice(k, k + hi) if j == axis else slice(None) for j in range(ndim))
            ]
    return full


def to_host(x: Any) -> Any:
    """A kernel's result on the host: CuPy arrays come back through a pinned buffer."""
    if type(x).__module__.split(".", 1)[0] == "cupy":
        from minjiang.core._devices import to_host_pinned

        return to_host_pinned(x)
    return x


def _tile_filter(tile: tuple[tuple[str, int, int], ...] | None) -> Callable[[str], bool] | None:
    """The part-name predicate of a tiled table read (``None``: every part)."""
    if tile is None:
        return None
    from minjiang.storage import tile_overlaps

    region = {d: (lo, hi) for d, lo, hi in tile}
    return lambda part: tile_overlaps(part, region)


def to_arrow(obj: Any, columns: Mapping[str, str] | None = None) -> Any:
    import pyarrow as pa

    if isinstance(obj, pa.Table):
        table = obj
    elif hasattr(obj, "to_dict") and hasattr(obj, "columns"):  # pandas
        table = pa.Table.from_pandas(obj, preserve_index=False)
    else:
        table = pa.table({k: to_host(v) for k, v in dict(obj).items()})
    if columns:
        schema = pa.schema([(name, pa.type_for_alias(t)) for name, t in columns.items()])
        missing = [c for c in schema.names if c not in table.column_names]
        if missing:
            raise ExecutionError(f"table output lacks declared columns {missing!r}")
        table = table.select(schema.names).cast(schema)
    return table


class TaskIO:
    """The task's view of the store (through its Staging) and what it reported: the
    digests of what it wrote and the bytes it moved."""

    def __init__(self, spec: TaskSpec) -> None:
        from minjiang.storage import Staging, open_store

        self.spec = spec
        self.store = open_store(spec.store_url, storage_options=spec.store_options or None)
        self.staging = Staging(self.store, spec.dataset_id, recompute=spec.recompute)
        self.bytes_read = 0
        self.bytes_written = 0
        # what the reads through this object decoded, and the bytes_read they account
        # for (reads a pattern makes on its own count as decoded byte for byte)
        self.bytes_decoded = 0
        self._read_counted = 0
        self.summary_cpu_s = 0.0
        # [seconds, CPU seconds] a streamed task spent reading and writing while it
        # computed (run_task books them as reading and writing, not kernel time)
        self.streamed: dict[str, list[float]] = {"read": [0.0, 0.0], "write": [0.0, 0.0]}
        self.checksums: dict[str, dict[str, str]] = {}
        self.tables: dict[str, dict[str, str]] = {}
        self.summaries: dict[str, dict[str, Any]] = {}

    def read_inputs(
        self, spec: TaskSpec, buffers: dict[str, np.ndarray] | None = None
    ) -> dict[str, Any]:
        """The task's inputs, padded with their boundary halos; on the device for GPU
        tasks (tables stay on the host). ``buffers``, when given, holds host blocks to
        decode into again (one per input, reused while its shape holds; unpadded
        reads only): a streamed task's steps then fault no fresh pages."""
        from minjiang.core._planner import ArrayRead
        from minjiang.storage import read_region, read_table
        from minjiang.storage._reader import decoded_nbytes

        gpu = spec.backend == "gpu"
        out: dict[str, Any] = {}
        if gpu:
            out = self._read_device(spec)
        for r in spec.reads:
            if not isinstance(r, ArrayRead):
                table = read_table(self.store, r.dataset_id, r.table, parts=_tile_filter(r.tile))
                self._count_read(table.nbytes, table.nbytes)
                out[r.input] = table
                continue
            decoded = decoded_nbytes(r.info, r.read)
            if gpu:  # counted as read by _read_device
                block = out[r.input]
                self.bytes_decoded += decoded
                self._read_counted += block.nbytes
                out[r.input] = pad(block, r.pad, r.boundary)
                continue
            if r.boundary in _IN_PLACE_MODES:
                # decoded straight into the interior of the padded block, then padded in
                # place: no second copy of the block
                padded, interior = _padded_empty(r.info, r.read, r.pad)
                if buffers is not None and not any(lo or hi for lo, hi in r.pad):
                    old = buffers.get(r.input)
                    if old is not None and (old.shape, old.dtype) == (padded.shape, padded.dtype):
                        padded = old
                    buffers[r.input] = padded
                read_region(self.store, r.info, r.read, out=padded[interior])
                self._count_read(padded[interior].nbytes, decoded)
                out[r.input] = pad_in_place(padded, r.pad, r.boundary)
                continue
            block = read_region(self.store, r.info, r.read)
            self._count_read(block.nbytes, decoded)
            out[r.input] = pad(block, r.pad, r.boundary)
        return out

    def stream_inputs(
        self, spec: TaskSpec, step: tuple[int, ...], outputs: Outputs | None
    ) -> Iterator[tuple[TaskSpec, dict[str, Any]]]:
        """The task's block in steps of ``step`` cells (C order): each step's spec
        (:func:`sub_spec`, writing ``outputs``; None: the steps write nothing, the task
        writes once at its end) and its inputs, decoded into the same buffers step
        after step. A step's arrays are overwritten by the next: keep nothing of them."""
        from minjiang.core._blocks import iter_blocks

        buffers: dict[str, np.ndarray] = {}
        origin = tuple(s.start for s in spec.region)
        extent = tuple(s.stop - s.start for s in spec.region)
        for rel in iter_blocks(extent, step):
            region = tuple(slice(o + s.start, o + s.stop) for o, s in zip(origin, rel, strict=True))
            sub = sub_spec(spec, region, outputs)
            with self.phase("read"):
                data = self.read_inputs(sub, buffers)
            yield sub, data

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time a streamed task's reading or writing (``name``), done while it computes."""
        t, c = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.streamed[name][0] += time.perf_counter() - t
            self.streamed[name][1] += time.process_time() - c

    def _count_read(self, nbytes: int, decoded: int) -> None:
        self.bytes_read += nbytes
        self.bytes_decoded += decoded
        self._read_counted += nbytes

    def decoded_total(self) -> int:
        """Bytes the task decoded: its counted reads, plus reads a pattern made on its
        own (whole chunks or parts: decoded byte for byte)."""
        return self.bytes_decoded + max(self.bytes_read - self._read_counted, 0)

    def _read_device(self, spec: TaskSpec) -> dict[str, Any]:
        """The task's array blocks on the current CUDA device (``spec.gpu_read``)."""
        import cupy
        from minjiang.core._devices import read_to_device
        from minjiang.core._planner import ArrayRead

        out: dict[str, Any] = {}
        keep: list[Any] = []  # pinned buffers, alive until the copies finish
        stream = cupy.cuda.Stream(non_blocking=True)
        for r in spec.reads:
            if isinstance(r, ArrayRead):
                block = read_to_device(
                    self.store, r.info, r.read, spec.gpu_read, stream=stream, keep=keep
                )
                self.bytes_read += block.nbytes
                out[r.input] = block
        stream.synchronize()
        return out

    def write_array(
        self, name: str, region: tuple[slice, ...], data: np.ndarray, *, scratch: bool
    ) -> dict[str, str]:
        writer = self.staging.scratch if scratch else self.staging.writer
        sums = writer.write_region(name, region, data)
        self.bytes_written += data.nbytes
        if not scratch:  # what the dataset holds, block by block (catalog summary)
            from minjiang.storage import block_summary, merge_summaries

            t = time.process_time()
            prev = self.summaries.get(name)
            part = block_summary(data)
            self.summaries[name] = merge_summaries([prev, part]) if prev else part
            self.summary_cpu_s += time.process_time() - t
        self.checksums.setdefault(self.checksum_path(name, scratch=scratch), {}).update(sums)
        return sums

    def checksum_path(self, name: str, *, scratch: bool) -> str:
        return self.staging.checksum_path(name, scratch=scratch)

    def read_part(self, part: str) -> Any:
        table = self.staging.read_partial_part(part)
        self.bytes_read += table.nbytes
        return table


def sub_spec(spec: TaskSpec, region: tuple[slice, ...], outputs: Outputs | None) -> TaskSpec:
    """The spec of a task over ``region``, a part of ``spec``'s region: its array
    reads and its writes (of ``outputs``; None: no writes) narrowed to the part and its
    coordinates sliced, as the planner would give a task of that region (so a kernel
    sees the same either way). For tasks without halo that read arrays only and write
    each output over the task's region along the output's dims."""
    from minjiang.core._planner import ArrayRead

    if any(lo or hi for lo, hi in spec.halo):
        raise ExecutionError(f"{spec.operator}: a task with a halo is not read in parts")
    pos = {d: i for i, d in enumerate(spec.dims)}

    def narrow(dims: tuple[str, ...], sl: tuple[slice, ...]) -> tuple[slice, ...]:
        return tuple(
            region[pos[d]] if d in pos and s == spec.region[pos[d]] else s
            for d, s in zip(dims, sl, strict=True)
        )

    reads = []
    for r in spec.reads:
        if not isinstance(r, ArrayRead):
            raise ExecutionError(f"{spec.operator}: a task that reads tables is not read in parts")
        reads.append(dataclasses.replace(r, read=narrow(r.info.dims, r.read)))
    writes = []
    if outputs is not None:
        for w in spec.writes:
            dims = outputs.dims.get(w.array, ())
            if len(dims) != len(w.region) or any(
                d not in pos or s != spec.region[pos[d]]
                for d, s in zip(dims, w.region, strict=True)
            ):
                raise ExecutionError(
                    f"{spec.operator}: output {w.array!r} is not written over the task's region, "
                    "so the task is not worked in parts"
                )
            writes.append(dataclasses.replace(w, region=narrow(dims, w.region)))
    coords = {}
    for d, values in spec.coords.items():
        i = pos[d]
        lo = region[i].start - spec.region[i].start
        coords[d] = values[lo : lo + region[i].stop - region[i].start]
    return dataclasses.replace(
        spec, reads=tuple(reads), writes=tuple(writes), region=region, coords=coords
    )


def context(
    spec: TaskSpec, outputs: Outputs, buffers: dict[str, np.ndarray] | None = None
) -> BlockContext:
    """What the kernel of ``spec`` knows about its block (``buffers``: the output
    buffers of a task worked in steps, which ``BlockContext.empty`` hands out again)."""
    return BlockContext(
        operator=spec.operator,
        backend=spec.backend,
        task=int(spec.key.rsplit("/", 1)[-1]),
        dims=spec.dims,
        region=dict(zip(spec.dims, spec.region, strict=True)),
        halo=dict(zip(spec.dims, spec.halo, strict=True)),
        sizes=dict(zip(spec.dims, spec.sizes, strict=True)),
        coords=dict(spec.coords),
        attrs=dict(spec.attrs),
        n_tasks=spec.n_tasks,
        outputs=outputs.names,
        dtypes=dict(outputs.dtypes),
        _buffers=buffers,
    )


def write_outputs(io: TaskIO, spec: TaskSpec, outputs: Outputs, result: Mapping[str, Any]) -> None:
    """Write a kernel's arrays (cropped to each write's region) and its table parts."""
    import numpy as np

    for w in spec.writes:
        if w.output not in result:
            raise ExecutionError(
                f"{spec.operator}: kernel returned {sorted(result)!r} but output {w.output!r} is declared"
            )
        data = np.asarray(to_host(crop(result[w.output], spec, outputs.dims[w.array], w.region)))
        # The writer encodes each chunk from a view of the block, so a cropped (strided)
        # block is not copied whole first; only a cast makes a new array.
        want = np.dtype(outputs.dtypes[w.array])
        arr = data if data.dtype == want else data.astype(want)
        io.write_array(w.array, w.region, arr, scratch=w.scratch)
    index = spec.key.rsplit("/", 1)[-1]
    for name, columns in outputs.tables.items():
        if name not in result:
            raise ExecutionError(f"{spec.operator}: kernel did not return declared table {name!r}")
        table = to_arrow(result[name], columns)
        key, digest = io.staging.write_table_part(name, index, table)
        io.tables.setdefault(name, {})[key] = digest


def run_task(spec: TaskSpec) -> TaskResult:
    """Execute one task (on a Ray worker or in-process) and write its manifest."""
    t0, c0 = time.perf_counter(), time.process_time()
    step = spec.payload
    if step.threaded:
        _cap_numba_threads(spec.cpus)
    io = TaskIO(spec)
    data = step.read(io, spec)
    read_s, c1 = time.perf_counter() - t0, time.process_time()
    t = time.perf_counter()
    result = step.compute(data, spec)
    kernel_s, c2 = time.perf_counter() - t, time.process_time()
    step.write(io, spec, result)
    total, c3 = time.perf_counter() - t0, time.process_time()
    # a streamed task reads and writes while it computes: that counts as I/O
    (sr, sr_cpu), (sw, sw_cpu) = io.streamed["read"], io.streamed["write"]
    read_s += sr
    kernel_s -= sr + sw
    cpu = {
        "read": c1 - c0 + sr_cpu,
        "kernel": c2 - c1 - sr_cpu - sw_cpu,
        "write": max(c3 - c2 + sw_cpu - io.summary_cpu_s, 0.0),
        "summary": io.summary_cpu_s,
    }
    res = TaskResult(
        key=spec.key,
        stage=spec.stage,
        checksums=io.checksums,
        tables=io.tables,
        bytes_read=io.bytes_read,
        bytes_written=io.bytes_written,
        read_s=read_s,
        kernel_s=kernel_s,
        write_s=max(0.0, total - read_s - kernel_s),
        total_s=total,
        backend=spec.backend,
        host=socket.gethostname(),
        pid=os.getpid(),
        fingerprint=task_fingerprint(spec),
        device=_device(spec),
        summaries=io.summaries,
        bytes_decoded=io.decoded_total(),
        cpu={k: round(v, 6) for k, v in cpu.items()},
    )
    io.staging.write_manifest(spec.key, res.to_json())
    return res


def crop(x: Any, spec: TaskSpec, out_dims: tuple[str, ...], region: tuple[slice, ...]) -> Any:
    """Crop a kernel result of the padded block shape down to the write region."""
    want = tuple(s.stop - s.start for s in region)
    if tuple(x.shape) == want:
        return x
    halo = dict(zip(spec.dims, spec.halo, strict=True))
    idx = []
    for d, w, n in zip(out_dims, want, x.shape, strict=True):
        lo, hi = halo.get(d, (0, 0))
        if n == w + lo + hi:
            idx.append(slice(lo, lo + w))
        elif n == w:
            idx.append(slice(None))
        else:
            raise ExecutionError(
                f"{spec.operator}: kernel returned shape {tuple(x.shape)!r} for a block of {want!r} "
                f"(dims {out_dims!r}, halo {halo!r}); return the padded or the interior shape"
            )
    return x[tuple(idx)]


def _device(spec: TaskSpec) -> dict[str, str]:
    if spec.backend != "gpu":
        return {}
    from minjiang.core._devices import device_report

    return device_report().lineage()

"""What a task does on a worker: read its region from Zarr, run the kernel, write its
chunks, record their checksums. Only small metadata (a :class:`TaskResult`) goes back.

Every task is idempotent: it rewrites the same chunks with the same bytes, so a retry
after a killed worker, or a re-run after a killed driver, is safe. A task's manifest
is written last, through the dataset's :class:`minjiang.storage.Staging` (the layout is
in ``storage/DESIGN.md``); on resume the driver verifies the checksums it lists and
skips the task when they all match.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from minjiang.core._events import TaskResult
from minjiang.core._operator import BlockContext, import_dotted
from minjiang.core.errors import ExecutionError

if TYPE_CHECKING:
    import numpy as np
    from minjiang.core._planner import TaskSpec

__all__ = ["run_task", "task_fingerprint"]

_THREADS_SET: list[int] = []


def task_fingerprint(spec: TaskSpec) -> str:
    """What a task writes, so a manifest from a differently shaped plan never counts."""
    parts = [
        spec.kind,
        repr(spec.region),
        *(f"{w.array}{w.region!r}{w.scratch}" for w in spec.writes),
        *spec.kernels,
        repr(spec.tables),
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


def _pad(block: np.ndarray, pad: tuple[tuple[int, int], ...], mode: str) -> np.ndarray:
    if not any(lo or hi for lo, hi in pad):
        return block
    from minjiang.kernels.gaussian import pad_boundary

    return pad_boundary(block, pad, mode)


def _to_host(x: Any) -> Any:
    """A kernel's result on the host: CuPy arrays come back through a pinned buffer."""
    if type(x).__module__.split(".", 1)[0] == "cupy":
        from minjiang.core._devices import to_host_pinned

        return to_host_pinned(x)
    return x


def _to_arrow(obj: Any, columns: Mapping[str, str] | None = None) -> Any:
    import pyarrow as pa

    if isinstance(obj, pa.Table):
        table = obj
    elif hasattr(obj, "to_dict") and hasattr(obj, "columns"):  # pandas
        table = pa.Table.from_pandas(obj, preserve_index=False)
    else:
        table = pa.table({k: _to_host(v) for k, v in dict(obj).items()})
    if columns:
        schema = pa.schema([(name, pa.type_for_alias(t)) for name, t in columns.items()])
        missing = [c for c in schema.names if c not in table.column_names]
        if missing:
            raise ExecutionError(f"table output lacks declared columns {missing!r}")
        table = table.select(schema.names).cast(schema)
    return table


class _IO:
    """The task's view of the store: reads, chunk writes with checksums, small files."""

    def __init__(self, spec: TaskSpec) -> None:
        from minjiang.storage import Staging, open_store

        self.spec = spec
        self.store = open_store(spec.store_url)
        self.staging = Staging(self.store, spec.dataset_id, recompute=spec.recompute)
        self.bytes_read = 0
        self.bytes_written = 0

    def read(self, spec: TaskSpec) -> dict[str, Any]:
        """The task's inputs, padded with their boundary halos; on the device for GPU
        tasks (tables stay on the host)."""
        from minjiang.core._planner import ArrayRead
        from minjiang.storage import read_region, read_table

        gpu = spec.backend == "gpu"
        out: dict[str, Any] = {}
        if gpu:
            out = self._read_device(spec)
        for r in spec.reads:
            if not isinstance(r, ArrayRead):
                table = read_table(self.store, r.dataset_id, r.table)
                self.bytes_read += table.nbytes
                out[r.input] = table
                continue
            block = out[r.input] if gpu else read_region(self.store, r.info, r.read)
            if not gpu:
                self.bytes_read += block.nbytes
            out[r.input] = _pad(block, r.pad, r.boundary)
        return out

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
        return sums

    def checksum_path(self, name: str, *, scratch: bool) -> str:
        return self.staging.checksum_path(name, scratch=scratch)

    def read_part(self, part: str) -> Any:
        table = self.staging.read_partial_part(part)
        self.bytes_read += table.nbytes
        return table


def _context(spec: TaskSpec) -> BlockContext:
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
        outputs=tuple(spec.extra.get("out_dims", {})) + tuple(spec.tables),
    )


def _crop(x: Any, spec: TaskSpec, out_dims: tuple[str, ...], region: tuple[slice, ...]) -> Any:
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


def _write_outputs(
    io_: _IO,
    spec: TaskSpec,
    result: Mapping[str, Any],
    out_dims: Mapping[str, tuple[str, ...]],
    checksums: dict[str, dict[str, str]],
    tables: dict[str, dict[str, str]],
) -> None:
    import numpy as np

    for w in spec.writes:
        if w.output not in result:
            raise ExecutionError(
                f"{spec.operator}: kernel returned {sorted(result)!r} but output {w.output!r} is declared"
            )
        data = _to_host(_crop(result[w.output], spec, out_dims[w.array], w.region))
        arr = np.ascontiguousarray(data, dtype=spec.extra["out_dtypes"][w.array])
        sums = io_.write_array(w.array, w.region, arr, scratch=w.scratch)
        checksums.setdefault(io_.checksum_path(w.array, scratch=w.scratch), {}).update(sums)
    if spec.tables:
        index = spec.key.rsplit("/", 1)[-1]
        for name in spec.tables:
            if name not in result:
                raise ExecutionError(
                    f"{spec.operator}: kernel did not return declared table {name!r}"
                )
            table = _to_arrow(result[name], spec.extra.get("table_columns", {}).get(name))
            key, digest = io_.staging.write_table_part(name, index, table)
            tables.setdefault(name, {})[key] = digest


def run_task(spec: TaskSpec) -> TaskResult:
    """Execute one task (on a Ray worker or in-process) and write its manifest."""
    t0 = time.perf_counter()
    if spec.kind != "rechunk":
        _cap_numba_threads(spec.cpus)
    io_ = _IO(spec)
    checksums: dict[str, dict[str, str]] = {}
    tables: dict[str, dict[str, str]] = {}
    read_s = kernel_s = 0.0
    out_dims: dict[str, tuple[str, ...]] = dict(spec.extra.get("out_dims", {}))

    t = time.perf_counter()
    if spec.kind == "rechunk":
        arrays = io_.read(spec)
        read_s = time.perf_counter() - t
        w = spec.writes[0]
        sums = io_.write_array(w.array, w.region, arrays[w.output], scratch=True)
        checksums[io_.checksum_path(w.array, scratch=True)] = sums
    elif spec.kind in ("block", "reduce_block"):
        arrays = io_.read(spec)
        read_s = time.perf_counter() - t
        ctx = _context(spec)
        t = time.perf_counter()
        if spec.kind == "block":
            result = import_dotted(spec.kernels[0])(arrays, spec.params, ctx)
        else:
            partial, _, finalize = (import_dotted(k) for k in spec.kernels)
            result = finalize(
                partial(arrays, spec.params, ctx), spec.params, _kept_context(spec, ctx)
            )
        kernel_s = time.perf_counter() - t
        _write_outputs(io_, spec, result, out_dims, checksums, tables)
    elif spec.kind == "reduce_partial":
        arrays = io_.read(spec)
        read_s = time.perf_counter() - t
        t = time.perf_counter()
        state = import_dotted(spec.kernels[0])(arrays, spec.params, _context(spec))
        kernel_s = time.perf_counter() - t
        _write_state(io_, spec, state, checksums)
    elif spec.kind == "reduce_combine":
        states = _read_states(io_, spec)
        read_s = time.perf_counter() - t
        t = time.perf_counter()
        _, combine, finalize = (import_dotted(k) for k in spec.kernels)
        acc = states[0]
        for s in states[1:]:
            acc = combine(acc, s, spec.params)
        result = finalize(acc, spec.params, _context(spec))
        kernel_s = time.perf_counter() - t
        _write_outputs(io_, spec, result, out_dims, checksums, tables)
    elif spec.kind == "agg_partial":
        arrays = io_.read(spec)
        read_s = time.perf_counter() - t
        t = time.perf_counter()
        state = import_dotted(spec.kernels[0])(arrays, spec.params, _context(spec))
        kernel_s = time.perf_counter() - t
        part = _to_arrow({k: _to_host(v) for k, v in state.items()})
        before = io_.staging.scratch.bytes_written
        key, digest = io_.staging.write_partial_part(spec.key.rsplit("/", 1)[-1], part)
        io_.bytes_written += io_.staging.scratch.bytes_written - before
        tables["__agg__"] = {key: digest}
    elif spec.kind == "agg_combine":
        parts = [
            {
                k: v.to_numpy(zero_copy_only=False)
                for k, v in zip(tb.column_names, tb.columns, strict=True)
            }
            for tb in (io_.read_part(f"{i:06d}") for i in range(spec.extra["n_parts"]))
        ]
        read_s = time.perf_counter() - t
        t = time.perf_counter()
        _, combine, finalize = (import_dotted(k) for k in spec.kernels)
        result = finalize(combine(parts, spec.params), spec.params)
        kernel_s = time.perf_counter() - t
        _write_outputs(io_, spec, result, out_dims, checksums, tables)
    else:
        raise ExecutionError(f"unknown task kind {spec.kind!r}")
    total = time.perf_counter() - t0
    write_s = max(0.0, total - read_s - kernel_s)
    res = TaskResult(
        key=spec.key,
        stage=spec.stage,
        checksums=checksums,
        tables=tables,
        bytes_read=io_.bytes_read,
        bytes_written=io_.bytes_written,
        read_s=read_s,
        kernel_s=kernel_s,
        write_s=write_s,
        total_s=total,
        backend=spec.backend,
        host=socket.gethostname(),
        pid=os.getpid(),
        fingerprint=task_fingerprint(spec),
        device=_device(spec),
    )
    io_.staging.write_manifest(spec.key, res.to_json())
    return res


def _device(spec: TaskSpec) -> dict[str, str]:
    if spec.backend != "gpu":
        return {}
    from minjiang.core._devices import device_report

    return device_report().lineage()


def _kept_context(spec: TaskSpec, ctx: BlockContext) -> BlockContext:
    """The context over the kept dims, for a reduction's finalize step."""
    rdims = set(spec.extra.get("reduce_dims", ()))
    keep = tuple(d for d in spec.dims if d not in rdims)
    return BlockContext(
        operator=ctx.operator,
        backend=ctx.backend,
        task=ctx.task,
        dims=keep,
        region={d: ctx.region[d] for d in keep},
        halo={d: ctx.halo[d] for d in keep},
        sizes={d: ctx.sizes[d] for d in keep},
        coords={d: v for d, v in ctx.coords.items() if d in keep},
        attrs=ctx.attrs,
        n_tasks=ctx.n_tasks,
        outputs=ctx.outputs,
    )


def _write_state(
    io_: _IO, spec: TaskSpec, state: Mapping[str, Any], checksums: dict[str, dict[str, str]]
) -> None:
    import numpy as np

    writer = io_.staging.scratch
    part, n_parts = spec.extra["part"], spec.extra["n_parts"]
    kept_region, kept_shape, kept_chunks = (
        spec.extra["kept_region"],
        spec.extra["kept_shape"],
        spec.extra["kept_chunks"],
    )
    for name, value in sorted(state.items()):
        arr = np.ascontiguousarray(_to_host(value))
        if arr.shape != tuple(r.stop - r.start for r in kept_region):
            raise ExecutionError(
                f"{spec.operator}: partial state {name!r} has shape {arr.shape!r}; it must be shaped like "
                f"the output block {tuple(r.stop - r.start for r in kept_region)!r}"
            )
        aname = f"state_{name}"
        writer.create_array(
            aname,
            shape=(n_parts, *kept_shape),
            dtype=str(arr.dtype),
            chunks=(1, *kept_chunks),
            dims=("part", *(f"d{i}" for i in range(len(kept_shape)))),
        )
        region = (slice(part, part + 1), *kept_region)
        sums = writer.write_region(aname, region, arr[None, ...])
        io_.bytes_written += arr.nbytes
        checksums.setdefault(io_.checksum_path(aname, scratch=True), {}).update(sums)


def _read_states(io_: _IO, spec: TaskSpec) -> list[dict[str, Any]]:
    import numpy as np

    group = io_.staging.scratch_group()
    n_parts = spec.extra["n_parts"]
    states: list[dict[str, Any]] = [{} for _ in range(n_parts)]
    for aname, arr in sorted(group.arrays()):
        if not aname.startswith("state_"):
            continue
        block = np.asarray(arr[(slice(0, n_parts), *spec.region)])
        io_.bytes_read += block.nbytes
        for p in range(n_parts):
            states[p][aname[len("state_") :]] = block[p]
    return states

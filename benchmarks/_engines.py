"""Engines: the systems under test, each run in its own process.

An engine process is started once per benchmark run and kept warm; the harness
sends it one command at a time (``prepare``, ``run``, ``fetch``, ``discard``) and
measures its whole process tree from outside (:mod:`benchmarks._measure`). Wall time
is taken inside the engine process around :meth:`Engine.run` only, so process start,
imports, Ray start-up and input ingest are not counted; reading the validation window
back happens after the measured section.

Registry (``ENGINES``): names to ``"module:Class"`` paths, imported lazily.

============== ===============================================================
minjiang-ray   minjiang runtime, Ray executor (a local Ray, or ``--address``)
minjiang-local minjiang runtime, in-process ``local`` executor
xarray-dask    ``open_zarr`` + dask threaded scheduler + ``to_zarr``
cubed          Cubed arrays from/to Zarr (threads executor by default)
io-floor       read + decode every input chunk, encode + write the outputs; no compute
scipy-label    ``scipy.ndimage.label`` in memory (:mod:`benchmarks._peers`)
cc3d           connected-components-3d in memory (:mod:`benchmarks._peers`)
heatwave3      ``heatwave3.detect3`` (C++), NetCDF to NetCDF (:mod:`benchmarks._peers`)
============== ===============================================================
"""

from __future__ import annotations

import abc
import dataclasses
import importlib
import os
import shutil
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from benchmarks._data import ArrayRef, BenchData, array_codecs, parse_bytes, xarray_encoding
from benchmarks._workloads import (
    GAUSSIAN_SIGMA,
    GAUSSIAN_TRUNCATE,
    QUANTILE,
    WORKLOADS,
    Workload,
    combine_partials,
    finalize_partials,
    gaussian_radius,
    label_partials,
    output_layout,
)

__all__ = [
    "ENGINES",
    "Engine",
    "EngineGone",
    "EngineOptions",
    "RunOutput",
    "create_engine",
    "serve",
]

ENGINES: dict[str, str] = {
    "minjiang-ray": "benchmarks._engine_minjiang:MinjiangRayEngine",
    "minjiang-local": "benchmarks._engine_minjiang:MinjiangLocalEngine",
    "xarray-dask": "benchmarks._engines:XarrayDaskEngine",
    "cubed": "benchmarks._engines:CubedEngine",
    "io-floor": "benchmarks._engines:IOFloorEngine",
    "scipy-label": "benchmarks._peers:ScipyLabelEngine",
    "cc3d": "benchmarks._peers:CC3DEngine",
    "heatwave3": "benchmarks._peers:Heatwave3Engine",
}


@dataclasses.dataclass(frozen=True)
class EngineOptions:
    """What every engine is told (picklable: it crosses the process boundary)."""

    cores: int
    memory_budget: str
    work_dir: str
    store: str
    address: str | None = None
    backend: str = "auto"
    cubed_executor: str = "threads"


@dataclasses.dataclass
class RunOutput:
    """What :meth:`Engine.run` hands back: a handle to its outputs and engine figures."""

    handle: Any
    details: dict[str, Any] = dataclasses.field(default_factory=dict)


class Engine(abc.ABC):
    """Base class. Subclasses implement :meth:`run` and :meth:`fetch`."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    is_floor: ClassVar[bool] = False
    #: False for an engine whose outputs are not the reference's (a peer that writes
    #: other products): its runs are timed and recorded as not compared
    validates: ClassVar[bool] = True

    def __init__(self, options: EngineOptions) -> None:
        self.options = options

    def setup(self) -> dict[str, Any]:
        """Start what the engine needs; return facts to record (executor, threads)."""
        return {}

    def supports(self, wl: Workload) -> str | None:
        """``None`` when the engine can run ``wl``, else the reason it cannot."""
        return None

    def prepare(self, data: BenchData, names: tuple[str, ...]) -> dict[str, Any]:
        """Untimed work before a workload's runs (e.g. ingesting the inputs)."""
        return {}

    @abc.abstractmethod
    def run(self, wl: Workload, data: BenchData, out_dir: Path) -> RunOutput:
        """Run ``wl`` once, timed by the caller; return what fetch and discard need."""

    @abc.abstractmethod
    def fetch(self, wl: Workload, handle: Any, window: dict[str, slice]) -> dict[str, Any]:
        """Read the validation window of every output back (after the measured run)."""

    def discard(self, handle: Any) -> None:
        """Delete a run's outputs (untimed), so every run writes afresh and disk use stays bounded."""
        if isinstance(handle, str | os.PathLike) and Path(handle).exists():
            shutil.rmtree(handle, ignore_errors=True)

    def close(self) -> None:  # noqa: B027 - optional: most engines start nothing
        """Stop what :meth:`setup` started."""


def create_engine(name: str, options: EngineOptions) -> Engine:
    """Instantiate engine ``name`` from :data:`ENGINES`."""
    try:
        path = ENGINES[name]
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; expected one of {sorted(ENGINES)!r}") from None
    module, _, cls = path.partition(":")
    return getattr(importlib.import_module(module), cls)(options)


# --------------------------------------------------------------------------- helpers


def _window_of(arr: Any, dims: tuple[str, ...], window: dict[str, slice]) -> np.ndarray:
    return np.asarray(arr[tuple(window.get(d, slice(None)) for d in dims)])


def _fetch_zarr_group(wl: Workload, group: str, window: dict[str, slice]) -> dict[str, Any]:
    """Window of each array output and each Parquet table written under ``group``."""
    import zarr

    got: dict[str, Any] = {}
    for o in wl.outputs:
        if o.kind == "table":
            p = Path(group) / f"{o.name}.parquet"
            if p.exists():
                import pyarrow.parquet as pq

                got[o.name] = {k: np.asarray(v) for k, v in pq.read_table(p).to_pydict().items()}
            continue
        try:
            arr = zarr.open_array(group, path=o.name, mode="r")
        except Exception:
            continue
        got[o.name] = _window_of(arr, o.dims, window)
    return got


def _create_outputs(
    wl: Workload, data: BenchData, path: Path, *, store_every_chunk: bool = False
) -> dict[str, Any]:
    """Empty output arrays with the workload's layout and minjiang's codec.

    ``store_every_chunk`` writes every chunk, as minjiang does, without zarr's check
    of whether a chunk equals the fill value (a pass over every value written).
    """
    import zarr

    group = zarr.open_group(str(path), mode="w", zarr_format=3)
    out = {}
    for name, shape, chunks, dims, dtype in output_layout(wl, data):
        kw, _ = array_codecs(dtype)
        arr = group.create_array(
            name,
            shape=shape,
            chunks=chunks,
            dtype=dtype,
            dimension_names=dims,
            fill_value=np.nan if np.dtype(dtype).kind == "f" else 0,
            **kw,
        )
        out[name] = arr.with_config({"write_empty_chunks": True}) if store_every_chunk else arr
    return out


def gaussian_block(block: np.ndarray) -> np.ndarray:
    """SciPy's Gaussian on one (halo-padded) block; the reference's parameters."""
    from scipy import ndimage

    return ndimage.gaussian_filter(
        block, GAUSSIAN_SIGMA, mode="reflect", truncate=GAUSSIAN_TRUNCATE
    )


# --------------------------------------------------------------------------- xarray + dask


class XarrayDaskEngine(Engine):
    """xarray on dask's threaded scheduler, written as a careful user would.

    ``open_zarr`` with the storage chunks, the idiomatic xarray operation, and
    ``to_zarr`` with minjiang's codec and the same output chunking as minjiang.
    Operations that need the whole time axis (quantile, day-of-year groupby) first
    rechunk time-chunked data to the pencil layout, as xarray requires or advises.
    """

    name = "xarray-dask"
    description = "xarray + dask (threaded scheduler)"

    def setup(self) -> dict[str, Any]:
        import dask

        dask.config.set(scheduler="threads", num_workers=self.options.cores)
        try:
            import flox  # noqa: F401

            has_flox = True
        except ImportError:
            has_flox = False
        return {"scheduler": "threads", "num_workers": self.options.cores, "flox": has_flox}

    def _open(self, ref: ArrayRef) -> Any:
        import xarray as xr

        return xr.open_zarr(ref.group, consolidated=False, chunks={})[ref.var]

    @staticmethod
    def _full_time(x: Any, data: BenchData) -> Any:
        if len(x.chunks[0]) == 1:
            return x
        _, py, px = data.pencil_chunks
        return x.chunk({"time": -1, "y": py, "x": px})

    def _write(self, arrays: dict[str, Any], wl: Workload, data: BenchData, path: Path) -> None:
        import xarray as xr

        layout = {n: (c, d) for n, _, c, d, _ in output_layout(wl, data)}
        ds = xr.Dataset(
            {
                n: a.chunk(dict(zip(layout[n][1], layout[n][0], strict=True)))
                for n, a in arrays.items()
            }
        )
        # small coordinates: in memory, written with zarr's defaults (their storage chunking
        # would clash with the re-chunked data's)
        ds = ds.assign_coords({c: ds[c].compute() for c in ds.coords}).drop_encoding()
        enc = {n: xarray_encoding(layout[n][0]) for n in arrays}
        ds.to_zarr(str(path), mode="w", zarr_format=3, consolidated=False, encoding=enc)

    def run(self, wl: Workload, data: BenchData, out_dir: Path) -> RunOutput:
        import dask

        path = out_dir / "out.zarr"
        key = wl.key
        a = self._open(data.arrays["a"])
        if key == "w1_band_math":
            b = self._open(data.arrays["b"])
            self._write({"out": (a - b) / (a + b)}, wl, data, path)
        elif key == "w2_mean":
            self._write({"mean": a.mean("time")}, wl, data, path)
        elif key == "w2_q90":
            q = self._full_time(a, data).quantile(QUANTILE, dim="time").drop_vars("quantile")
            self._write({"q90": q.astype("float32")}, wl, data, path)
        elif key == "w3_anomaly":
            g = self._full_time(a, data).groupby("time.dayofyear")
            anom = (g - g.mean("time")).drop_vars("dayofyear", errors="ignore")
            self._write({"anomaly": anom.astype("float32")}, wl, data, path)
        elif key == "w4_gaussian":
            r = gaussian_radius()
            sm = a.data.map_overlap(
                gaussian_block,
                depth=dict.fromkeys(range(3), r),
                boundary="reflect",
                dtype=np.float32,
                meta=np.array((), dtype=np.float32),
            )
            self._write({"smoothed": a.copy(data=sm)}, wl, data, path)
        elif key == "w5_label_stats":
            # xarray's groupby cannot group by a chunked label array without flox; a careful
            # dask user reduces per-block partial statistics instead (bincount, ufunc.at)
            labels = self._open(data.arrays["labels"])
            vb = a.data.to_delayed().ravel()
            lb = labels.data.to_delayed().ravel()
            parts = [dask.delayed(label_partials)(v, lab) for v, lab in zip(vb, lb, strict=True)]
            total = dask.delayed(combine_partials)(parts)
            table = dask.compute(dask.delayed(finalize_partials)(total))[0]
            path.mkdir(parents=True, exist_ok=True)
            _write_table(table, path / "stats.parquet")
        else:
            raise ValueError(f"{self.name}: no implementation of {key!r}")
        return RunOutput(str(path))

    def supports(self, wl: Workload) -> str | None:
        return None if wl.domain is None else "no xarray + dask peer for a domain plugin's analysis"

    def fetch(self, wl: Workload, handle: Any, window: dict[str, slice]) -> dict[str, Any]:
        return _fetch_zarr_group(wl, handle, window)


def _write_table(table: dict[str, Any], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({k: np.asarray(v) for k, v in table.items()}), path)


# --------------------------------------------------------------------------- cubed


def _cubed_gaussian_block(
    block: np.ndarray,
    block_id: tuple[int, ...] = (),
    numblocks: tuple[int, ...] = (),
    depth: int = 0,
) -> np.ndarray:
    """Gaussian on a Cubed overlap block whose edge padding is a constant.

    Cubed pads the true array edges with a constant only; dropping that padding and
    letting SciPy reflect at those faces gives the reflect-boundary result exactly.
    """
    crop_in, crop_out = [], []
    for ax, (i, n) in enumerate(zip(block_id, numblocks, strict=True)):
        lo = depth if i == 0 else 0  # constant padding to drop
        hi = block.shape[ax] - (depth if i == n - 1 else 0)
        crop_in.append(slice(lo, hi))
        out_lo = 0 if i == 0 else depth
        out_hi = (hi - lo) - (0 if i == n - 1 else depth)
        crop_out.append(slice(out_lo, out_hi))
    return gaussian_block(block[tuple(crop_in)])[tuple(crop_out)]


class CubedEngine(Engine):
    """Cubed arrays read from and written to Zarr, where its array API covers the workload."""

    name = "cubed"
    description = "Cubed"

    def setup(self) -> dict[str, Any]:
        import cubed

        ex = self.options.cubed_executor
        opts: dict[str, Any] = {}
        if ex in ("threads", "processes"):
            opts["max_workers"] = self.options.cores
        self.spec = cubed.Spec(
            work_dir=str(Path(self.options.work_dir) / "cubed-work"),
            allowed_mem=parse_bytes(self.options.memory_budget),
            executor_name=ex,
            executor_options=opts,
        )
        return {
            "executor": ex,
            "max_workers": self.options.cores,
            "allowed_mem": self.options.memory_budget,
        }

    def supports(self, wl: Workload) -> str | None:
        reasons = {
            "w2_q90": "the array API has no quantile",
            "w3_anomaly": "the array API has no group-by",
            "w5_label_stats": "the array API has no group-by",
        }
        if wl.domain is not None:
            return "no Cubed peer for a domain plugin's analysis"
        return reasons.get(wl.key)

    def run(self, wl: Workload, data: BenchData, out_dir: Path) -> RunOutput:
        import cubed

        path = out_dir / "out.zarr"
        targets = _create_outputs(wl, data, path)
        ref = data.arrays["a"]
        a = cubed.from_zarr(ref.group, path=ref.var, spec=self.spec)
        if wl.key == "w1_band_math":
            rb = data.arrays["b"]
            b = cubed.from_zarr(rb.group, path=rb.var, spec=self.spec)
            outs = {"out": (a - b) / (a + b)}
        elif wl.key == "w2_mean":
            outs = {"mean": cubed.mean(a, axis=0)}
        elif wl.key == "w4_gaussian":
            outs = {"smoothed": _cubed_gaussian(a, gaussian_radius())}
        else:
            raise ValueError(f"{self.name}: no implementation of {wl.key!r}")
        sources, dests = [], []
        for name, arr in outs.items():
            t = targets[name]
            if tuple(arr.chunksize) != tuple(t.chunks):
                arr = arr.rechunk(t.chunks)
            sources.append(arr)
            dests.append(t)
        cubed.store(sources, dests)
        return RunOutput(str(path))

    def fetch(self, wl: Workload, handle: Any, window: dict[str, slice]) -> dict[str, Any]:
        return _fetch_zarr_group(wl, handle, window)

    def discard(self, handle: Any) -> None:
        super().discard(handle)
        shutil.rmtree(Path(self.options.work_dir) / "cubed-work", ignore_errors=True)


def _cubed_gaussian(a: Any, r: int) -> Any:
    import functools

    import cubed

    fn = functools.partial(_cubed_gaussian_block, numblocks=a.numblocks, depth=r)
    return cubed.map_overlap(fn, a, dtype=np.float32, chunks=a.chunks, depth=r, boundary=0.0)


# --------------------------------------------------------------------------- I/O floor


#: Input bytes the I/O floor's price calibration reads and writes (at most).
CALIBRATION_BYTES = 256 << 20


def io_price(data: BenchData, names: tuple[str, ...], work_dir: Path) -> dict[str, Any]:
    """The floor's CPU seconds per GB of reading + decoding and of encoding + writing.

    One thread reads the inputs' chunks (up to :data:`CALIBRATION_BYTES`) one at a
    time and writes each to an array of the same chunks and codec, storing every
    chunk; the process's CPU clock (zarr's codec threads included) is read around
    each read and each write, so the two are told apart as a run on several
    threads cannot tell them.
    """
    import zarr

    from benchmarks._data import chunk_blocks

    ref = data.arrays[names[0]]
    src = zarr.open_array(ref.group, path=ref.var, mode="r")
    path = work_dir / "io-floor-price.zarr"
    shutil.rmtree(path, ignore_errors=True)
    kw, _ = array_codecs(src.dtype)
    dst = zarr.open_group(str(path), mode="w", zarr_format=3).create_array(
        "v",
        shape=src.shape,
        chunks=src.chunks,
        dtype=src.dtype,
        fill_value=np.nan if np.dtype(src.dtype).kind == "f" else 0,
        **kw,
    )
    dst = dst.with_config({"write_empty_chunks": True})
    read_s = write_s = 0.0
    nbytes = 0
    try:
        for region in chunk_blocks(tuple(src.shape), tuple(src.chunks), 1):
            t0 = time.process_time()
            block = src[region]
            t1 = time.process_time()
            dst[region] = block
            t2 = time.process_time()
            read_s += t1 - t0
            write_s += t2 - t1
            nbytes += block.nbytes
            if nbytes >= CALIBRATION_BYTES:
                break
    finally:
        shutil.rmtree(path, ignore_errors=True)
    gb = max(nbytes, 1) / 1e9
    return {
        "bytes": nbytes,
        "chunks": list(src.chunks),
        "read_cpu_s_per_gb": read_s / gb,
        "write_cpu_s_per_gb": write_s / gb,
    }


class IOFloorEngine(Engine):
    """The floor of a Zarr-to-Zarr step: read and decode every input chunk once, then
    encode and write every output chunk once (the decoded input is written back as
    the payload, so the codec sees real data), on ``cores`` threads. No compute.

    Every output chunk is stored, as minjiang stores them (no check of whether a
    chunk equals the fill value). Before a workload's runs (untimed),
    :func:`io_price` measures the floor's CPU price per GB of each of the two
    halves; every run reports it with the bytes it decoded and encoded.
    """

    name = "io-floor"
    description = "I/O floor (zarr read+decode, encode+write; no compute)"
    is_floor = True

    def setup(self) -> dict[str, Any]:
        self._prices: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}
        return {}

    def prepare(self, data: BenchData, names: tuple[str, ...]) -> dict[str, Any]:
        key = (data.tag, tuple(names))
        if key not in self._prices:
            self._prices[key] = io_price(data, tuple(names), Path(self.options.work_dir))
        return {"io_price": self._prices[key]}

    def run(self, wl: Workload, data: BenchData, out_dir: Path) -> RunOutput:
        import zarr

        from benchmarks._data import chunk_blocks

        path = out_dir / "out.zarr"
        outs = _create_outputs(wl, data, path, store_every_chunk=True)
        ins = [zarr.open_array(data.arrays[n].group, path=n, mode="r") for n in wl.inputs]
        cube = data.arrays[wl.inputs[0]].dims
        same_grid = [o for o in outs.values() if tuple(o.metadata.dimension_names) == cube]
        others = [o for o in outs.values() if tuple(o.metadata.dimension_names) != cube]
        regions = list(chunk_blocks(data.shape, data.cube_chunks, 1))  # one chunk per task
        sample: list[np.ndarray] = []

        def read_write(region: tuple[slice, ...]) -> int:
            blocks = [arr[region] for arr in ins]
            if not sample:
                sample.append(blocks[0])
            for o in same_grid:
                o[region] = blocks[0].astype(o.dtype, copy=False)
            return sum(b.nbytes for b in blocks)

        def write_only(job: tuple[Any, tuple[slice, ...]]) -> int:
            # outputs on other grids (a climatology, yearly grids, (y, x) maps): the
            # input's values as payload, so that the codec sees real data
            o, region = job
            shape = tuple(s.stop - s.start for s in region)
            o[region] = np.resize(sample[0], shape).astype(o.dtype, copy=False)
            return 0

        with ThreadPoolExecutor(max_workers=self.options.cores) as pool:
            read = sum(pool.map(read_write, regions))
            jobs = [(o, r) for o in others for r in chunk_blocks(o.shape, o.chunks, 1)]
            list(pool.map(write_only, jobs))
        if any(o.kind == "table" for o in wl.outputs):
            path.mkdir(parents=True, exist_ok=True)
        written = sum(o.nbytes for o in outs.values())
        return RunOutput(
            str(path),
            {
                "tasks": len(regions) + len(jobs),
                "bytes_decoded": int(read),
                "bytes_written": int(written),
                "io_price": self._prices.get((data.tag, tuple(wl.inputs))),
            },
        )

    def fetch(self, wl: Workload, handle: Any, window: dict[str, slice]) -> dict[str, Any]:
        return {}  # the floor computes nothing to validate


# --------------------------------------------------------------------------- server


def _error(exc: BaseException) -> dict[str, Any]:
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": "".join(tb)[-4000:]}


class EngineGone(RuntimeError):
    """The engine cannot go on (its Ray died): the process exits and is started afresh."""


def _redirect_output(log_path: str | None) -> None:
    # at the descriptor level, so that what Ray and numba print lands in the log too
    if not log_path:
        return
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def serve(conn: Any, name: str, options: EngineOptions, log_path: str | None = None) -> None:
    """The engine process: set the engine up, then answer commands until ``close``."""
    _redirect_output(log_path)
    try:
        engine = create_engine(name, options)
        info = engine.setup()
    except BaseException as exc:
        conn.send({**_error(exc), "pid": os.getpid()})
        return
    conn.send(
        {
            "ok": True,
            "pid": os.getpid(),
            "info": info,
            "description": engine.description,
            "is_floor": engine.is_floor,
            "validates": engine.validates,
        }
    )
    handles: dict[str, Any] = {}
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            break
        op = msg.get("op")
        try:
            if op == "supports":
                reply = {
                    "ok": True,
                    "supports": {k: engine.supports(WORKLOADS[k]) for k in msg["workloads"]},
                }
            elif op == "prepare":
                reply = {"ok": True, "info": engine.prepare(msg["data"], tuple(msg["names"]))}
            elif op == "run":
                wl = WORKLOADS[msg["workload"]]
                out_dir = Path(msg["out_dir"])
                out_dir.mkdir(parents=True, exist_ok=True)
                t0 = time.perf_counter()
                res = engine.run(wl, msg["data"], out_dir)
                wall = time.perf_counter() - t0
                handles[msg["run_id"]] = res.handle
                reply = {"ok": True, "wall_s": wall, "details": res.details}
            elif op == "fetch":
                wl = WORKLOADS[msg["workload"]]
                reply = {
                    "ok": True,
                    "outputs": engine.fetch(wl, handles[msg["run_id"]], msg["window"]),
                }
            elif op == "discard":
                engine.discard(handles.pop(msg["run_id"], None))
                reply = {"ok": True}
            elif op == "close":
                engine.close()
                conn.send({"ok": True})
                break
            else:
                reply = {"ok": False, "error": f"unknown command {op!r}"}
        except EngineGone as exc:
            conn.send(_error(exc))
            break
        except BaseException as exc:
            reply = _error(exc)
        conn.send(reply)
    conn.close()
    sys.stdout.flush()

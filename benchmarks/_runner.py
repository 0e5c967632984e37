"""The harness: start the engines, run every (workload, chunking) block, record.

For one block every engine that supports the workload runs on the same stored
inputs: an optional warm-up run (compiles kernels, warms the page cache; recorded
but not summarised), then ``reps`` repetitions with the engine order rotated by one
place each time, so no engine always runs first or last. Every run is validated
against the reference; its output is deleted before the next run.

Results are written to ``<results>/<name>.json`` after every block, so an interrupted
run keeps what it measured; the Markdown report and plots are rendered at the end.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import multiprocessing as mp
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from benchmarks import _data, _measure, _micro, _report
from benchmarks._engines import EngineOptions, serve
from benchmarks._workloads import WORKLOADS, Workload, compare, validation_window

__all__ = ["Config", "EngineProcess", "run"]

SCHEMA = "minjiang-bench/1"
REPO_ROOT = Path(__file__).resolve().parent.parent

Log = Callable[[str], None]


@dataclasses.dataclass
class Config:
    """Everything a benchmark run needs; built by the command line."""

    suite: str
    size: str
    name: str
    results_dir: Path
    data_dir: Path
    engines: list[str]
    workloads: list[str]
    chunkings: list[str]
    reps: int
    warmup: bool
    cores: int
    memory_budget: str
    address: str | None
    backend: str
    cubed_executor: str
    scaling_factors: list[int]
    scaling_workloads: list[str]
    scaling_engines: list[str]
    timeout_s: float
    plots: bool = True
    interval_s: float = 0.05
    command: list[str] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: str(v) if isinstance(v, Path) else v for k, v in d.items()}


# --------------------------------------------------------------------------- engine processes


class EngineError(RuntimeError):
    """An engine command failed or timed out."""


class EngineProcess:
    """One engine in its own process, driven over a pipe."""

    def __init__(
        self, name: str, options: EngineOptions, *, timeout_s: float, interval_s: float
    ) -> None:
        self.name = name
        self.options = options
        self.timeout_s = timeout_s
        self.interval_s = interval_s
        ctx = mp.get_context("spawn")
        self.log_path = Path(options.work_dir) / "logs" / f"{name}.log"
        self.conn, child = ctx.Pipe()
        # not a daemon: Cubed's process executor and Ray start processes of their own
        self.proc = ctx.Process(
            target=serve, args=(child, name, options, str(self.log_path)), name=f"bench-{name}"
        )
        self.proc.start()
        child.close()
        self._seen: dict[int, psutil.Process] = {}
        self.supported: dict[str, str | None] = {}
        hello = self._recv(max(timeout_s, 600.0))
        if not hello.get("ok"):
            self.close()
            raise EngineError(hello.get("error", "engine failed to start"))
        self.info = hello.get("info", {})
        self.description = hello.get("description", name)
        self.is_floor = bool(hello.get("is_floor"))
        self.validates = bool(hello.get("validates", True))
        self.pid = int(hello["pid"])
        self._track()

    @property
    def alive(self) -> bool:
        return self.proc.is_alive()

    def _track(self) -> None:
        try:
            root = psutil.Process(self.proc.pid)
            for p in [root, *root.children(recursive=True)]:
                self._seen.setdefault(p.pid, p)
        except psutil.Error:
            pass

    def _recv(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        try:
            while not self.conn.poll(1.0):
                if not self.proc.is_alive():
                    raise EOFError
                if time.monotonic() > deadline:
                    self.kill()
                    raise EngineError(
                        f"engine {self.name!r} did not answer within {timeout:.0f} s; stopped it"
                    )
            return self.conn.recv()
        except (EOFError, OSError):
            self.proc.join(5)
            self.kill()
            raise EngineError(
                f"engine {self.name!r} exited (code {self.proc.exitcode}); "
                f"see its log {self.log_path}"
            ) from None

    def call(self, msg: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        if not self.alive:
            raise EngineError(f"engine {self.name!r} is not running")
        self.conn.send(msg)
        reply = self._recv(timeout or self.timeout_s)
        self._track()
        if not reply.get("ok"):
            err = EngineError(reply.get("error", "failed"))
            err.traceback = reply.get("traceback", "")  # type: ignore[attr-defined]
            raise err
        return reply

    def measured_run(self, msg: dict[str, Any]) -> tuple[dict[str, Any], _measure.RunStats]:
        """Send a ``run`` command and watch the process tree while it runs."""
        mon = _measure.TreeMonitor(self.proc.pid, interval=self.interval_s)
        mon.start()
        try:
            reply = self.call(msg)
        finally:
            stats = mon.stop()
            for pid in mon.descendants_seen():
                try:
                    self._seen.setdefault(pid, psutil.Process(pid))
                except psutil.Error:
                    pass
        return reply, stats

    def close(self) -> None:
        """Ask the engine to stop what it started, then make sure its processes are gone."""
        if self.proc.is_alive():
            try:
                self.conn.send({"op": "close"})
                if self.conn.poll(120):
                    self.conn.recv()
            except (OSError, EOFError):
                pass
            self.proc.join(60)
        self.kill()

    def kill(self) -> None:
        """Stop the engine process and every process it started (by pid, ours only)."""
        self._track()
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(20)
        for p in self._seen.values():
            try:
                if (
                    p.is_running() and p.pid != os.getpid()
                ):  # is_running checks the pid was not reused
                    p.kill()
            except psutil.Error:
                pass


def _engine_options(cfg: Config) -> EngineOptions:
    return EngineOptions(
        cores=cfg.cores,
        memory_budget=cfg.memory_budget,
        work_dir=str(cfg.data_dir / "work"),
        store=str(cfg.data_dir / "minjiang-store"),
        address=cfg.address,
        backend=cfg.backend,
        cubed_executor=cfg.cubed_executor,
    )


# --------------------------------------------------------------------------- the run


class Harness:
    """State of one benchmark run: engines, references, results."""

    def __init__(self, cfg: Config, log: Log) -> None:
        self.cfg = cfg
        self.log = log
        self.options = _engine_options(cfg)
        self.procs: dict[str, EngineProcess] = {}
        self.engine_info: dict[str, Any] = {}
        self.results: dict[str, Any] = {}
        self.path = cfg.results_dir / f"{cfg.name}.json"
        self._ingest_rt: Any = None

    # -- engines
    def engine(self, name: str) -> EngineProcess | None:
        proc = self.procs.get(name)
        if proc is not None and proc.alive:
            return proc
        info = self.engine_info.get(name, {})
        if info.get("available") is False:
            return None
        self.log(f"starting engine {name}")
        try:
            proc = EngineProcess(
                name, self.options, timeout_s=self.cfg.timeout_s, interval_s=self.cfg.interval_s
            )
        except Exception as exc:
            self.engine_info[name] = {"available": False, "reason": str(exc)[:600]}
            self.log(f"  engine {name} unavailable: {str(exc)[:300]}")
            return None
        try:
            proc.supported = proc.call({"op": "supports", "workloads": sorted(WORKLOADS)})[
                "supports"
            ]
        except EngineError as exc:
            proc.close()
            self.engine_info[name] = {
                "available": False,
                "reason": f"could not list what it supports: {exc}",
            }
            return None
        self.procs[name] = proc
        self.engine_info[name] = {
            **info,
            "available": True,
            "description": proc.description,
            "info": proc.info,
            "is_floor": proc.is_floor,
            "supports": proc.supported,
            "log": str(proc.log_path),
        }
        return proc

    def close(self) -> None:
        for name, proc in list(self.procs.items()):
            self.log(f"stopping engine {name}")
            proc.close()
        self.procs.clear()
        if self._ingest_rt is not None:
            self._ingest_rt.close()
            self._ingest_rt = None

    # -- inputs
    def ingest(self, data: _data.BenchData, engines: list[str]) -> _data.BenchData:
        """Ingest the inputs into minjiang's store (untimed) and point every engine at them.

        When minjiang takes part, all engines read the ingested copy, so they read the very
        same files; the copy is checked to keep the generated chunking and codec.
        """
        if not any(e.startswith("minjiang") for e in engines):
            return data
        import importlib.util

        if importlib.util.find_spec("minjiang.core._runtime") is None:
            return data
        if self._ingest_rt is None:
            import minjiang as mj

            self._ingest_rt = mj.Runtime(store=self.options.store, executor="local", progress=False)
        import zarr

        arrays = dict(data.arrays)
        ids: dict[str, str] = {}
        entry = self.results["data"].setdefault(data.tag, {}).setdefault("ingest", {})
        for name, ref in data.arrays.items():
            if not Path(ref.group).exists():
                continue
            t0 = time.perf_counter()
            res = self._ingest_rt.ingest("array.zarr", [ref.group], name=f"bench/{data.tag}/{name}")
            src = zarr.open_array(ref.group, path=ref.var, mode="r")
            dst = zarr.open_array(res.path, path=ref.var, mode="r")
            same = (
                dst.chunks == src.chunks
                and dst.shape == src.shape
                and repr(dst.metadata.codecs) == repr(src.metadata.codecs)
            )
            entry[name] = {
                "id": res.id,
                "seconds": round(time.perf_counter() - t0, 3),
                "reused": res.reused,
                "same_chunks_and_codec": same,
            }
            ids[name] = res.id
            if same:
                arrays[name] = dataclasses.replace(ref, group=res.path)
            else:
                self.log(
                    f"  ingested {name} differs from the source in chunks or codec; peers read the source"
                )
        return dataclasses.replace(data, arrays=arrays, datasets=ids)

    # -- results
    def save(self) -> None:
        self.results["engines"] = self.engine_info
        self.cfg.results_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.results, indent=1, default=_json_default))
        tmp.replace(self.path)

    def record_data(self, data: _data.BenchData) -> None:
        entry = self.results["data"].setdefault(
            data.tag, {"shape": list(data.shape), "chunks": list(data.cube_chunks), "arrays": {}}
        )
        for name, ref in data.arrays.items():
            if not Path(ref.group).exists():
                continue
            stored = _data.stored_bytes(Path(ref.group) / ref.var)
            entry["arrays"][name] = {
                "shape": list(ref.shape),
                "chunks": list(ref.chunks),
                "dtype": ref.dtype,
                "logical_bytes": ref.nbytes,
                "stored_bytes": stored,
                "compression_ratio": ref.nbytes / stored if stored else None,
            }

    # -- one block
    def run_block(
        self,
        wl: Workload,
        data: _data.BenchData,
        engines: list[str],
        *,
        suite: str,
        factor: int = 1,
    ) -> None:
        cfg = self.cfg
        window = wl.window(data) if wl.window else validation_window(data)
        t0 = time.perf_counter()
        try:
            reference = wl.reference(data, window)
        except (
            Exception
        ) as exc:  # e.g. a domain plugin's reference is missing: nothing can be validated
            for name in engines:
                self._skip(
                    wl, data, name, f"no reference: {type(exc).__name__}: {exc}"[:300], suite
                )
            return
        ref_s = time.perf_counter() - t0
        active: list[EngineProcess] = []
        for name in engines:
            proc = self.engine(name)
            if proc is None:
                self._skip(
                    wl,
                    data,
                    name,
                    self.engine_info.get(name, {}).get("reason", "unavailable"),
                    suite,
                )
                continue
            reason = proc.supported.get(wl.key)
            if reason:
                self._skip(wl, data, name, reason, suite)
                continue
            try:
                proc.call({"op": "prepare", "data": data, "names": list(wl.inputs)})
            except EngineError as exc:
                self._skip(wl, data, name, f"prepare failed: {exc}", suite)
                continue
            active.append(proc)
        if not active:
            return
        self.log(
            f"{suite} {wl.label} {wl.key} [{data.tag}] engines {[p.name for p in active]} "
            f"(reference {ref_s:.1f} s)"
        )
        plan: list[tuple[str | int, list[EngineProcess]]] = []
        if cfg.warmup:
            plan.append(("warmup", list(active)))
        for r in range(cfg.reps):
            k = r % len(active)
            plan.append((r, active[k:] + active[:k]))
        failed: set[str] = set()
        for rep, order in plan:
            for pos, proc in enumerate(order):
                if proc.name in failed:
                    continue
                rec = self._one(proc, wl, data, window, reference, rep, pos, suite, factor)
                self.results["runs"].append(rec)
                if not rec["ok"]:
                    failed.add(proc.name)
                    if not proc.alive:  # started afresh for the next block
                        self.procs.pop(proc.name, None)
                        self.engine_info[proc.name]["restarts"] = (
                            self.engine_info[proc.name].get("restarts", 0) + 1
                        )
        self.save()

    def _skip(
        self, wl: Workload, data: _data.BenchData, engine: str, reason: str, suite: str
    ) -> None:
        entry = {
            "suite": suite,
            "workload": wl.key,
            "data": data.tag,
            "chunking": data.chunking,
            "engine": engine,
            "reason": reason,
        }
        if entry not in self.results["skipped"]:
            self.results["skipped"].append(entry)

    def _one(
        self,
        proc: EngineProcess,
        wl: Workload,
        data: _data.BenchData,
        window: dict[str, slice],
        reference: dict[str, Any],
        rep: str | int,
        pos: int,
        suite: str,
        factor: int,
    ) -> dict[str, Any]:
        run_id = f"{suite}-{data.tag}-{wl.key}-{rep}"
        out_dir = self.cfg.data_dir / "runs" / proc.name / run_id
        shutil.rmtree(out_dir, ignore_errors=True)
        rec: dict[str, Any] = {
            "suite": suite,
            "workload": wl.key,
            "label": wl.label,
            "data": data.tag,
            "size": data.size.name,
            "chunking": data.chunking,
            "factor": factor,
            "engine": proc.name,
            "rep": rep,
            "position": pos,
            "input_bytes": wl.input_bytes(data),
            "started_utc": _now(),
        }
        try:
            reply, stats = proc.measured_run(
                {
                    "op": "run",
                    "workload": wl.key,
                    "data": data,
                    "out_dir": str(out_dir),
                    "run_id": run_id,
                }
            )
        except EngineError as exc:
            rec.update(
                ok=False, error=str(exc)[:2000], traceback=getattr(exc, "traceback", "")[-3000:]
            )
            self.log(f"  {proc.name:15s} rep {rep!s:7s} FAILED: {str(exc)[:300]}")
            return rec
        rec.update(
            ok=True, wall_s=reply["wall_s"], details=reply.get("details", {}), **stats.as_dict()
        )
        if proc.is_floor:
            rec["validation"] = {"ok": None, "reason": "the I/O floor computes nothing"}
        elif not proc.validates:
            rec["validation"] = {
                "ok": None,
                "reason": f"{proc.name} writes other outputs than the reference (see its details)",
            }
        else:
            try:
                got = proc.call(
                    {"op": "fetch", "workload": wl.key, "run_id": run_id, "window": window}
                )["outputs"]
                rec["validation"] = compare(wl, got, reference)
            except EngineError as exc:
                rec["validation"] = {
                    "ok": False,
                    "reason": f"could not read the output back: {exc}",
                }
            skipped = rec["details"].get("work_skipped")
            if skipped:
                rec["validation"] = {**rec["validation"], "ok": False, "reason": skipped}
            if not rec["validation"]["ok"]:
                rec["ok"] = False
                rec["error"] = skipped or "output does not match the reference"
        try:
            proc.call({"op": "discard", "run_id": run_id})
        except EngineError:
            pass
        shutil.rmtree(out_dir, ignore_errors=True)
        v = rec["validation"]["ok"]
        self.log(
            f"  {proc.name:15s} rep {rep!s:7s} {rec['wall_s']:8.3f} s  cpu {rec['cpu_seconds']:7.2f} s  "
            f"peak {rec['peak_pss_bytes'] / 2**20:7.0f} MiB  "
            f"valid {'-' if v is None else 'yes' if v else 'NO'}  "
            f"other load {rec['foreign_cpu_seconds'] / max(rec['wall_s'], 1e-9):.2f} cores"
        )
        return rec


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return repr(obj)


def run(cfg: Config, log: Log = print) -> Path:
    """Run the benchmark described by ``cfg``; return the path of the JSON results."""
    size = _data.SIZES[cfg.size]
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    h = Harness(cfg, log)
    h.results = {
        "schema": SCHEMA,
        "name": cfg.name,
        "started_utc": _now(),
        "command": cfg.command,
        "config": cfg.as_dict(),
        "machine": _measure.machine_facts(cfg.data_dir),
        "versions": _measure.software_versions(),
        "git": _measure.git_state(REPO_ROOT),
        "codec": _data.codec_description(),
        "data": {},
        "stream": {},
        "kernels": [],
        "runs": [],
        "skipped": [],
    }
    log(f"minjiang benchmarks: suite {cfg.suite}, size {cfg.size}, {cfg.cores} cores -> {h.path}")
    do_micro = cfg.suite in ("all", "micro")
    do_workloads = cfg.suite in ("all", "workloads")
    do_scaling = cfg.suite in ("all", "scaling")
    if do_micro:
        log("memory bandwidth (STREAM-like), before the engines")
        h.results["stream"]["start"] = _micro.stream(size.stream_elements, cfg.cores)
        log(f"  numba triad {h.results['stream']['start']['numba_triad_gbs']:.1f} GB/s")
    h.save()
    try:
        if do_workloads:
            for chunking in cfg.chunkings:
                names = tuple(sorted({n for k in cfg.workloads for n in WORKLOADS[k].inputs}))
                data = _data.ensure_data(cfg.data_dir, size, chunking, names, log=log)
                h.record_data(data)
                data = h.ingest(data, cfg.engines)
                for key in cfg.workloads:
                    h.run_block(WORKLOADS[key], data, cfg.engines, suite="workloads")
        if do_scaling:
            for key in cfg.scaling_workloads:
                wl = WORKLOADS[key]
                chunking = cfg.chunkings[0]
                for f in cfg.scaling_factors:
                    data = _data.ensure_data(
                        cfg.data_dir, size.scaled(f, chunking), chunking, wl.inputs, log=log
                    )
                    h.record_data(data)
                    data = h.ingest(data, cfg.scaling_engines)
                    h.run_block(wl, data, cfg.scaling_engines, suite="scaling", factor=f)
    finally:
        h.close()
        h.save()
    if do_micro:
        log("kernel micro-benchmarks")
        h.results["kernels"] = _micro.kernel_benchmarks(size.micro_shape)
        for row in h.results["kernels"]:
            log(
                f"  {row['kernel']:32s} "
                + (
                    f"{row['gbs']:.2f} GB/s in, {row['moved_gbs']:.2f} moved"
                    if row.get("ok")
                    else row.get("error", "")
                )
            )
        log("memory bandwidth (STREAM-like), after the engines")
        h.results["stream"]["end"] = _micro.stream(size.stream_elements, cfg.cores)
    h.results["finished_utc"] = _now()
    h.results["machine"]["load_average_at_end"] = list(os.getloadavg())
    h.results.update(_report.summarise(h.results))
    h.save()
    if cfg.plots:
        written = _report.render(h.results, cfg.results_dir, cfg.name)
        log("wrote " + ", ".join(str(p) for p in [h.path, *written]))
    sys.stdout.flush()
    return h.path

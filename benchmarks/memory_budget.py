"""The runtime's own memory baseline, and the whole process tree against ``--memory-budget``.

``python -m benchmarks.memory_budget`` starts a driver process (``--driver``, below)
and samples the proportional set size (PSS) of the driver and all its descendants
from outside, every 50 ms, reading every process's ``smaps_rollup`` each time (a
fuller reading than :class:`benchmarks._measure.TreeMonitor`'s, which spares the CPU
of timed runs; PSS because Ray's processes share the object store's pages). Phases:

1. **idle, cold**: the executor is up (a local Ray: GCS, raylet, its agents and the
   prestarted workers; or the in-process ``local`` executor), nothing has run.
2. **idle, warm**: after a warm-up pipeline on a small cube, so every worker has
   imported what tasks import and compiled or loaded the kernels. This is the
   *baseline* of the memory model: what the runtime costs before any task holds data.
3. **steps**: a float32 ``(time, lat, lon)`` cube (default 512 MiB, pencil chunks)
   through ``array.gaussian`` (σ = 2, halo 8) and ``array.quantile`` (q = 0.9 over
   time) with ``--memory-budget`` (default 256 MiB) on ``--cpus`` (default 2) workers.

It prints, per phase, the tree's PSS and the largest processes, and checks the
promise ``peak ≤ warm baseline + budget``; everything goes to
``benchmarks/results/memory-budget-<date>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
MIB = 1 << 20


# --------------------------------------------------------------------------- driver
def _write_cube(path: Path, shape: tuple[int, int, int], chunks: tuple[int, int, int]) -> Path:
    """A float32 cube written slab by slab (bounded memory), with daily time coords."""
    import numpy as np
    import zarr

    nt, ny, nx = shape
    root = zarr.open_group(str(path), mode="w", zarr_format=3)
    t0 = np.datetime64("2001-01-01", "ns")
    times = t0 + np.arange(nt).astype("timedelta64[D]").astype("timedelta64[ns]")
    for name, values, dims in (
        ("time", times.astype("int64"), ("time",)),
        ("lat", np.linspace(-60.0, 60.0, ny), ("lat",)),
        ("lon", np.linspace(0.0, 359.0, nx), ("lon",)),
    ):
        arr = root.create_array(name, shape=values.shape, dtype=values.dtype, dimension_names=dims)
        arr[:] = values
        if name == "time":
            arr.attrs.update(
                {"units": "nanoseconds since 2001-01-01", "calendar": "proleptic_gregorian"}
            )
    sst = root.create_array(
        "sst",
        shape=shape,
        dtype="float32",
        chunks=chunks,
        dimension_names=("time", "lat", "lon"),
        fill_value=float("nan"),
    )
    sst.attrs["units"] = "degree_C"
    rng = np.random.default_rng(1)
    step = chunks[1]
    season = (3 * np.sin(2 * np.pi * np.arange(nt) / 365.0)).astype(np.float32)[:, None, None]
    for y0 in range(0, ny, step):
        band = rng.standard_normal((nt, min(step, ny - y0), nx), dtype=np.float32)
        band += 15 + season
        sst[:, y0 : y0 + band.shape[1], :] = band
    return path


def _prepare(args: argparse.Namespace) -> int:
    """Writes and ingests the cubes (in its own process, so the driver starts clean)."""
    from minjiang import Runtime

    folder = Path(args.data_dir)
    shape = tuple(int(s) for s in args.shape.split(","))
    chunks = tuple(int(s) for s in args.chunks.split(","))
    small = _write_cube(folder / "small.zarr", (shape[0], 32, 32), (shape[0], 16, 16))
    big = _write_cube(folder / "big.zarr", shape, chunks)
    with Runtime(folder / "store", executor="local") as rt:
        rt.ingest("array.zarr", [small], name="budget-small")
        rt.ingest("array.zarr", [big], name="budget-big")
    return 0


def _driver(args: argparse.Namespace) -> int:
    """Runs in the monitored process: prints phase markers, waits for ``go`` lines."""
    from minjiang import Runtime

    folder = Path(args.data_dir)

    def mark(what: str) -> None:
        print(what, flush=True)
        if sys.stdin.readline().strip() != "go":
            raise SystemExit(1)

    opts: dict[str, Any] = {"executor": args.executor, "memory_budget": args.memory_budget}
    if args.executor == "ray":
        opts["num_cpus"] = args.cpus
    rt = Runtime(folder / "store", **opts)
    src_small, src_big = "budget-small", "budget-big"
    _ = rt.executor  # start the executor (a local Ray: started here)
    time.sleep(2)
    mark("idle-cold")

    def steps(src: str) -> dict[str, Any]:
        return {
            "steps": [
                {
                    "id": "g",
                    "operator": "array.gaussian",
                    "inputs": {"x": f"{src}:sst"},
                    "params": {"sigma": 2.0},
                },
                {
                    "id": "q",
                    "operator": "array.quantile",
                    "inputs": {"x": f"{src}:sst"},
                    "params": {"q": 0.9},
                },
            ]
        }

    rt.run_pipeline(steps(src_small))
    time.sleep(2)
    mark("idle-warm")
    plan = rt.plan(steps(src_big))
    info = {
        s.step: {
            "operator": s.operator.name,
            "tasks": s.n_tasks,
            "task_memory": s.task_memory,
            "block": list(s.block.block) if s.block else None,
        }
        for s in plan.steps
        if hasattr(s, "operator")
    }
    print(
        "plan " + json.dumps({"budget": plan.budget, "workers": plan.workers, "steps": info}),
        flush=True,
    )
    rt.run_pipeline(steps(src_big))
    mark("done")
    rt.close()
    return 0


# --------------------------------------------------------------------------- monitor
def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            for line in fh:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _label(p: psutil.Process) -> str:
    try:
        cmd = p.cmdline()
        name = p.name()
    except psutil.Error:
        return "?"
    text = " ".join(cmd)
    for key, label in (
        ("gcs_server", "gcs_server"),
        ("raylet/raylet", "raylet"),
        ("dashboard/agent.py", "dashboard agent"),
        ("runtime_env/agent", "runtime-env agent"),
        ("dashboard/dashboard.py", "api server (dashboard)"),
        ("log_monitor.py", "log monitor"),
        ("monitor.py", "autoscaler monitor"),
        ("--driver", "driver"),
    ):
        if key in text:
            return label
    if name.startswith("ray::") or text.startswith("ray::"):
        return "worker " + (cmd[0] if cmd else name)
    return name


class _Sampler:
    """PSS of a process tree every ``interval`` s: the total and the peak per process."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.lock = threading.Lock()
        self.peak = 0
        self.last = 0
        self.per_pid: dict[int, tuple[int, str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._procs: list[psutil.Process] = []

    def _loop(self) -> None:
        last_refresh = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now - last_refresh > 0.25:
                try:
                    self._procs = [self.root, *self.root.children(recursive=True)]
                except psutil.Error:
                    self._procs = []
                last_refresh = now
            total = 0
            for p in self._procs:
                v = _pss(p.pid)
                total += v
                with self.lock:
                    old = self.per_pid.get(p.pid)
                    if old is None:
                        self.per_pid[p.pid] = (v, _label(p))
                    elif v > old[0]:
                        self.per_pid[p.pid] = (v, old[1])
            with self.lock:
                self.last = total
                self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread.start()

    def phase(self) -> dict[str, Any]:
        """What was seen since the last call (then starts afresh)."""
        with self.lock:
            out = {
                "peak_bytes": self.peak,
                "last_bytes": self.last,
                "processes": sorted(
                    (
                        {"pid": k, "label": lab, "peak_bytes": v}
                        for k, (v, lab) in self.per_pid.items()
                    ),
                    key=lambda r: -r["peak_bytes"],
                ),
            }
            self.peak = self.last
            self.per_pid = {}
        return out

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _run(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    common = [
        "--memory-budget",
        args.memory_budget,
        "--cpus",
        str(args.cpus),
        "--shape",
        args.shape,
        "--chunks",
        args.chunks,
        "--data-dir",
        str(data_dir),
    ]
    subprocess.run(
        [sys.executable, "-m", "benchmarks.memory_budget", "--prepare", *common],
        cwd=REPO,
        env=env,
        check=True,
    )
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.memory_budget",
        "--driver",
        "--executor",
        args.executor,
        *common,
    ]
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None and proc.stdout is not None
    sampler = _Sampler(proc.pid)
    sampler.start()
    phases: dict[str, Any] = {}
    plan: dict[str, Any] = {}
    try:
        for line in proc.stdout:
            line = line.strip()
            if line.startswith("plan "):
                plan = json.loads(line[5:])
                continue
            if line not in ("idle-cold", "idle-warm", "done"):
                continue
            if line.startswith("idle"):
                sampler.phase()  # what came before (start-up, warm-up) is not idle
                time.sleep(args.idle_seconds)
            phases[{"done": "steps"}.get(line, line)] = sampler.phase()
            proc.stdin.write("go\n")
            proc.stdin.flush()
        rc = proc.wait(timeout=120)
    finally:
        sampler.stop()
        if proc.poll() is None:
            proc.kill()
    if rc != 0:
        raise RuntimeError(f"the driver exited with status {rc}")
    return {"phases": phases, "plan": plan}


def _summary(executor: str, budget: int, res: dict[str, Any]) -> dict[str, Any]:
    ph = res["phases"]
    base = ph["idle-warm"]["last_bytes"]
    peak = ph["steps"]["peak_bytes"]
    return {
        "executor": executor,
        "idle_cold_bytes": ph["idle-cold"]["last_bytes"],
        "idle_warm_bytes": base,
        "peak_bytes": peak,
        "peak_above_baseline_bytes": peak - base,
        "budget_bytes": budget,
        "within_budget": peak <= base + budget,
        "largest_process_bytes": max(p["peak_bytes"] for p in ph["steps"]["processes"]),
    }


def _print(executor: str, s: dict[str, Any], res: dict[str, Any]) -> None:
    print(f"\n== {executor}")
    for name, ph in res["phases"].items():
        print(
            f"  {name:10} tree PSS {ph['last_bytes'] / MIB:7.0f} MiB now, {ph['peak_bytes'] / MIB:7.0f} MiB peak"
        )
        for p in ph["processes"][:12]:
            print(f"      {p['peak_bytes'] / MIB:7.1f} MiB  {p['label']}")
    if res.get("plan"):
        for step, info in res["plan"]["steps"].items():
            print(
                f"  plan {step}: {info['operator']}, {info['tasks']} tasks, {info['task_memory'] / MIB:.1f} MiB per task"
            )
    print(
        f"  baseline (idle, warm) {s['idle_warm_bytes'] / MIB:.0f} MiB + budget {s['budget_bytes'] / MIB:.0f} MiB "
        f"= {(s['idle_warm_bytes'] + s['budget_bytes']) / MIB:.0f} MiB; peak {s['peak_bytes'] / MIB:.0f} MiB "
        f"({s['peak_above_baseline_bytes'] / MIB:.0f} MiB above the baseline): "
        + ("within" if s["within_budget"] else "OVER")
    )


# ------------------------------------------------------------------ allocator timing
#: Worker settings ``--allocator-timing`` compares (zarr's chunks in flight, glibc's
#: allocator); the environment of each child process is exactly this.
ALLOCATOR_SETTINGS: dict[str, dict[str, str]] = {
    "mmap threshold 1 MiB, 4 in flight": {
        "ZARR_ASYNC__CONCURRENCY": "4",
        "MALLOC_MMAP_THRESHOLD_": str(1 << 20),
        "MALLOC_TRIM_THRESHOLD_": str(1 << 20),
        "MALLOC_ARENA_MAX": "2",
    },
    "mmap threshold 32 MiB, trim 1 MiB, 4 in flight": {
        "ZARR_ASYNC__CONCURRENCY": "4",
        "MALLOC_MMAP_THRESHOLD_": str(32 << 20),
        "MALLOC_TRIM_THRESHOLD_": str(1 << 20),
        "MALLOC_ARENA_MAX": "2",
    },
    "mmap and trim thresholds 32 MiB, 4 in flight (WORKER_ENV)": {
        "ZARR_ASYNC__CONCURRENCY": "4",
        "MALLOC_MMAP_THRESHOLD_": str(32 << 20),
        "MALLOC_TRIM_THRESHOLD_": str(32 << 20),
        "MALLOC_ARENA_MAX": "2",
    },
    "glibc adaptive, 4 in flight": {"ZARR_ASYNC__CONCURRENCY": "4"},
    "glibc adaptive, zarr's default 10 in flight": {"ZARR_ASYNC__CONCURRENCY": "10"},
}


def _timing_child(path: Path, reps: int) -> int:
    """Read a region of 6 chunks and write it as a task would, ``reps`` times; print JSON."""
    import zarr
    from minjiang.core._executors import _release_freed_memory

    src = zarr.open_array(str(path / "src"), mode="r")
    reads, writes = [], []
    for _ in range(reps):
        t = time.perf_counter()
        block = src[:, 0:64, 0:96]
        reads.append(time.perf_counter() - t)
        out = zarr.create_array(
            str(path / f"out-{os.getpid()}"),
            shape=block.shape,
            chunks=src.chunks,
            dtype=block.dtype,
            compressors=src.compressors,
            overwrite=True,
        )
        t = time.perf_counter()
        out[:] = block
        writes.append(time.perf_counter() - t)
        del block
        _release_freed_memory()  # as at the end of every task
    status = Path("/proc/self/status").read_text()
    hwm = int(status.split("VmHWM:")[1].split()[0]) * 1024
    print(json.dumps({"read_s": reads, "write_s": writes, "peak_rss_bytes": hwm}))
    return 0


def _allocator_timing(args: argparse.Namespace) -> int:
    """Time zarr reads and writes of the small W4 cube's pencil chunks under each of
    ``ALLOCATOR_SETTINGS``, in fresh processes, rounds interleaved."""
    import statistics
    import tempfile

    import numpy as np
    import zarr
    from zarr.codecs import BloscCodec

    results: dict[str, dict[str, list[float]]] = {k: {} for k in ALLOCATOR_SETTINGS}
    with tempfile.TemporaryDirectory(dir=args.data_dir) as tmp:
        path = Path(tmp)
        src = zarr.create_array(
            str(path / "src"),
            shape=(730, 96, 160),
            chunks=(730, 32, 32),
            dtype="float32",
            compressors=[BloscCodec(cname="lz4", shuffle="shuffle")],
        )
        src[:] = np.random.default_rng(0).normal(size=(730, 96, 160)).astype("float32")
        base = {
            k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "ZARR_ASYNC__"))
        }
        for _ in range(args.rounds):
            for name, env in ALLOCATOR_SETTINGS.items():
                cmd = [sys.executable, "-m", "benchmarks.memory_budget", "--timing-child", tmp]
                proc = subprocess.run(
                    cmd, env={**base, **env}, cwd=REPO, capture_output=True, text=True, check=True
                )
                got = json.loads(proc.stdout.strip().splitlines()[-1])
                for key, value in got.items():
                    values = value if isinstance(value, list) else [value]
                    results[name].setdefault(key, []).extend(values)
    summary = {}
    for name, got in results.items():
        summary[name] = {
            "read_median_s": statistics.median(got["read_s"]),
            "write_median_s": statistics.median(got["write_s"]),
            "peak_rss_median_bytes": statistics.median(got["peak_rss_bytes"]),
        }
        s = summary[name]
        print(
            f"{name:48s} read {s['read_median_s'] * 1e3:6.1f} ms  write "
            f"{s['write_median_s'] * 1e3:6.1f} ms  peak RSS {s['peak_rss_median_bytes'] / MIB:5.0f} MiB"
        )
    from benchmarks._measure import git_state, machine_facts, software_versions

    out = {
        "name": args.name,
        "command": "python -m benchmarks.memory_budget --allocator-timing",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "case": "read a (730, 64, 96) float32 region = 6 chunks of (730, 32, 32), write it back",
        "settings": ALLOCATOR_SETTINGS,
        "summary": summary,
        "samples": results,
        "machine": machine_facts(),
        "software": software_versions(),
        "git": git_state(REPO),
    }
    path = Path(args.results)
    path.mkdir(parents=True, exist_ok=True)
    (path / f"{args.name}.json").write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(f"saved {path / (args.name + '.json')}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.memory_budget", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--driver", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--executors", default="local,ray", help="comma-separated: local, ray")
    parser.add_argument("--executor", default="ray", help=argparse.SUPPRESS)
    parser.add_argument("--memory-budget", default="256MiB")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--shape", default="512,512,512", help="time,lat,lon of the float32 cube")
    parser.add_argument("--chunks", default="512,64,64")
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    parser.add_argument("--name", default=f"memory-budget-{time.strftime('%Y%m%d')}")
    parser.add_argument("--results", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--data-dir", default=None)
    parser.add_argument(
        "--allocator-timing",
        action="store_true",
        help="time zarr reads and writes under each worker allocator setting instead",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of --allocator-timing")
    parser.add_argument("--timing-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.timing_child:
        return _timing_child(Path(args.timing_child), 15)
    if args.allocator_timing:
        return _allocator_timing(args)
    if args.driver:
        return _driver(args)
    if args.prepare:
        return _prepare(args)
    import tempfile

    from minjiang.core._units import parse_memory_budget

    budget = parse_memory_budget(args.memory_budget)
    out: dict[str, Any] = {
        "name": args.name,
        "command": "python -m benchmarks.memory_budget "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "memory_budget_bytes": budget,
        "cpus": args.cpus,
        "shape": args.shape,
        "chunks": args.chunks,
        "runs": {},
    }
    ok = True
    for executor in [e for e in args.executors.split(",") if e]:
        args.executor = executor
        with tempfile.TemporaryDirectory(dir=args.data_dir) as tmp:
            res = _run(args, Path(tmp))
        s = _summary(executor, budget, res)
        _print(executor, s, res)
        out["runs"][executor] = {"summary": s, **res}
        ok = ok and s["within_budget"]
    from benchmarks._measure import git_state, machine_facts, software_versions

    out.update(machine=machine_facts(), software=software_versions(), git=git_state(REPO))
    path = Path(args.results)
    path.mkdir(parents=True, exist_ok=True)
    (path / f"{args.name}.json").write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(f"saved {path / (args.name + '.json')}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

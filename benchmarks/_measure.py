"""What the harness measures about the machine and about each run.

* :func:`machine_facts` and :func:`software_versions`: recorded once per run.
* :class:`TreeMonitor`: wall-clock-independent figures of one engine run, taken from
  *outside* the engine's process: peak proportional set size (PSS) of the engine
  process and all its descendants (Ray's raylet, GCS and workers included), sampled
  in a background thread; the per-process peak RSS (``VmHWM``, reset before the run)
  summed over the processes alive at the end, which cannot miss a short spike but
  counts shared pages once per process; CPU seconds
  of the whole tree; and the CPU time that *other* processes on the machine used
  during the run, so a figure taken on a busy machine can be recognised as such.

PSS rather than RSS: Ray workers map the same shared-memory object store, and RSS
would count those pages once per worker.

The sampling must not take the CPU it measures: reading ``smaps_rollup`` walks a
process's page tables (about 2 ms for a worker holding 1 GB), and reading it for
each of a local Ray's eleven processes twenty times a second took 0.37-0.43 of one
of this machine's two cores, against 0.20-0.24 for xarray's one process and 0.12 for
the floor's (``docs/benchmarks.md``, *The sampler's own CPU*). :class:`PssReader`
reads ``smaps_rollup`` at most once a second per process and follows its RSS in
between, and :class:`TreeMonitor` keeps its own CPU within :data:`MONITOR_DUTY` of a
core.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import platform
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import psutil

__all__ = [
    "RunStats",
    "TreeMonitor",
    "git_state",
    "machine_facts",
    "software_versions",
]

_VERSION_MODULES = (
    "numpy",
    "numba",
    "zarr",
    "numcodecs",
    "xarray",
    "dask",
    "cubed",
    "ray",
    "scipy",
    "pandas",
    "pyarrow",
    "psutil",
    "matplotlib",
    "flox",
    "minjiang",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cpu_flags() -> list[str]:
    wanted = {"avx", "avx2", "avx512f", "fma", "sse4_2", "asimd", "sve"}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return sorted(wanted & set(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return []


def _cache_sizes() -> dict[str, str]:
    out: dict[str, str] = {}
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for idx in sorted(base.glob("index*")):
        try:
            level = (idx / "level").read_text().strip()
            kind = (idx / "type").read_text().strip()
            size = (idx / "size").read_text().strip()
        except OSError:
            continue
        key = f"L{level}" + ("d" if kind == "Data" else "i" if kind == "Instruction" else "")
        out[key] = size
    return out


def _filesystem(path: Path) -> str:
    """The filesystem type that holds ``path`` (from /proc/mounts; best effort)."""
    try:
        target = str(path.resolve())
        best, fstype = "", "unknown"
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and target.startswith(parts[1]) and len(parts[1]) > len(best):
                best, fstype = parts[1], parts[2]
        return fstype
    except OSError:
        return "unknown"


def machine_facts(data_dir: Path | None = None) -> dict[str, Any]:
    """Cores, memory, CPU model, caches and OS of this machine."""
    vm = psutil.virtual_memory()
    facts: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "logical_cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "caches": _cache_sizes(),
        "ram_bytes": vm.total,
        "ram_available_bytes_at_start": vm.available,
        "os": platform.platform(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_at_start": list(os.getloadavg()),
    }
    if data_dir is not None:
        facts["data_filesystem"] = _filesystem(data_dir)
        with contextlib.suppress(OSError):
            du = psutil.disk_usage(str(data_dir))
            facts["data_disk_free_bytes"] = du.free
    return facts


def software_versions() -> dict[str, str | None]:
    """Versions of the libraries that take part (``None`` when not installed)."""
    versions: dict[str, str | None] = {}
    for name in _VERSION_MODULES:
        try:
            mod = importlib.import_module(name)
        except Exception:
            versions[name] = None
            continue
        versions[name] = str(getattr(mod, "__version__", "unknown"))
    try:
        from numcodecs import blosc

        versions["c-blosc"] = blosc.VERSION_STRING
    except Exception:
        versions["c-blosc"] = None
    return versions


def git_state(repo: Path) -> dict[str, Any]:
    """Commit and dirty flag of the working tree the benchmark ran from."""

    def _git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=20, check=False
        ).stdout.strip()

    try:
        return {
            "commit": _git("rev-parse", "HEAD") or None,
            "dirty": bool(_git("status", "--porcelain")),
        }
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


# --------------------------------------------------------------------------- monitor


def _pss_bytes(pid: int) -> int:
    """PSS of one process, from ``smaps_rollup`` (cheap) with psutil as the fallback."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            for line in fh:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return 0
    except OSError:
        pass
    try:
        return int(psutil.Process(pid).memory_full_info().pss)
    except (psutil.Error, AttributeError):
        return 0


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss_bytes(pid: int) -> int | None:
    """RSS of one process from ``statm`` (constant time), None when it is gone."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return None


#: The share of one core the monitor's sampling may use (it waits longer between
#: samples when a pass costs more).
MONITOR_DUTY = 0.05


class PssReader:
    """PSS of processes, cheap enough to sample a Ray tree often.

    Every call reads the process's RSS (``statm``, constant time); ``smaps_rollup``
    (the PSS, a walk of the page tables) is read at most once per ``max_age``
    seconds per process. In between, the PSS is the last one read plus the RSS
    change since: pages a process maps or frees on its own count in full in both, so
    the estimate differs from a fresh read only by shared pages (Ray's object store,
    libraries) that came or went since that read.
    """

    def __init__(self, max_age: float = 1.0) -> None:
        self.max_age = max_age
        self._last: dict[int, tuple[float, int, int]] = {}
        self.reads = 0

    def __call__(self, pid: int) -> int:
        rss = _rss_bytes(pid)
        if rss is None:
            self._last.pop(pid, None)
            return 0
        now = time.monotonic()
        last = self._last.get(pid)
        if last is not None and now - last[0] < self.max_age:
            return max(last[1] + rss - last[2], 0)
        pss = _pss_bytes(pid)
        self.reads += 1
        self._last[pid] = (now, pss, rss)
        return pss


def _hwm_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _reset_hwm(pid: int) -> bool:
    # Writing 5 to clear_refs resets the peak-RSS counter (Linux >= 4.0).
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _tree(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def _machine_busy_seconds() -> float:
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


@dataclasses.dataclass(frozen=True)
class RunStats:
    """What :class:`TreeMonitor` saw during one run (bytes and seconds)."""

    peak_pss_bytes: int
    baseline_pss_bytes: int
    peak_hwm_sum_bytes: int
    hwm_reset: bool
    cpu_seconds: float
    foreign_cpu_seconds: float
    harness_cpu_seconds: float
    elapsed_seconds: float
    samples: int
    pss_reads: int
    max_processes: int
    load_average: list[float]

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class TreeMonitor:
    """Samples the memory and CPU of a process and all its descendants.

    Use as ``start()`` / ``stop()`` around one run. The process list is refreshed every
    ``refresh`` seconds (walking ``/proc`` costs more than reading a few
    ``smaps_rollup`` files), PSS is summed (:class:`PssReader`) every ``interval``
    seconds, or less often when a pass would otherwise take more than ``duty`` of a
    core (its own CPU time, measured pass by pass).
    """

    def __init__(
        self,
        pid: int,
        *,
        interval: float = 0.05,
        refresh: float = 0.25,
        duty: float = MONITOR_DUTY,
    ) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.refresh = refresh
        self.duty = duty
        self._pss = PssReader()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._peak = 0
        self._samples = 0
        self._max_procs = 0
        self._procs: list[psutil.Process] = []
        self._seen: dict[int, psutil.Process] = {}

    def _remember(self, procs: list[psutil.Process]) -> None:
        for p in procs:
            self._seen.setdefault(p.pid, p)
        self._max_procs = max(self._max_procs, len(procs))

    def _sample(self) -> int:
        return sum(self._pss(p.pid) for p in self._procs)

    def _loop(self) -> None:
        last_refresh = 0.0
        while not self._stop.is_set():
            cpu = time.thread_time()
            now = time.monotonic()
            if now - last_refresh >= self.refresh:
                self._procs = _tree(self.root)
                self._remember(self._procs)
                last_refresh = now
            pss = self._sample()
            self._peak = max(self._peak, pss)
            self._samples += 1
            spent = time.thread_time() - cpu
            self._stop.wait(max(self.interval, spent / self.duty - spent))

    def start(self) -> None:
        """Take the baseline (memory, CPU) and start sampling."""
        self._procs = _tree(self.root)
        self._remember(self._procs)
        self._hwm_reset_done = {p.pid: _reset_hwm(p.pid) for p in self._procs}
        self._baseline = self._sample()
        self._peak = self._baseline
        self._cpu0 = _cpu_seconds(self._procs)
        self._busy0 = _machine_busy_seconds()
        self._self0 = _cpu_seconds([psutil.Process()])
        self._t0 = time.perf_counter()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="bench-tree-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> RunStats:
        """Stop sampling and return what was seen since :meth:`start`."""
        elapsed = time.perf_counter() - self._t0
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        procs = _tree(self.root)
        self._remember(procs)
        final = sum(_pss_bytes(p.pid) for p in procs)
        self._peak = max(self._peak, final)
        hwm = sum(_hwm_bytes(p.pid) for p in procs)
        cpu = _cpu_seconds(procs) - self._cpu0
        busy = _machine_busy_seconds() - self._busy0
        harness = _cpu_seconds([psutil.Process()]) - self._self0
        return RunStats(
            peak_pss_bytes=int(self._peak),
            baseline_pss_bytes=int(self._baseline),
            peak_hwm_sum_bytes=int(hwm),
            hwm_reset=bool(self._hwm_reset_done) and all(self._hwm_reset_done.values()),
            cpu_seconds=max(cpu, 0.0),
            foreign_cpu_seconds=max(busy - cpu - harness, 0.0),
            harness_cpu_seconds=max(harness, 0.0),
            elapsed_seconds=elapsed,
            samples=self._samples,
            pss_reads=self._pss.reads,
            max_processes=self._max_procs,
            load_average=list(os.getloadavg()),
        )

    def descendants_seen(self) -> list[int]:
        """Every pid that was part of the tree at some sample (for clean-up)."""
        return sorted(self._seen)

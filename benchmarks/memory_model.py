"""The memory model, measured: one task of every built-in operator against its projection.

``python -m benchmarks.memory_model`` runs, for every operator the ``array``, ``ocean``
and ``medicine`` plugins register (a composite through each of its sub-steps), a small
pipeline end to end through :class:`minjiang.Runtime`, and measures one task of the
operator's step in a separate, warmed-up worker process:

* **projected**: the task's ``memory`` in the plan (``TaskSpec.memory``, which
  ``StepPlan.task_memory`` reports): the operator's ``memory(TaskSize, params)`` as
  the planner calls it plus zarr's codec buffers (``codec_bytes`` in
  ``core/_planner.py``). ``planner_check`` is what the planner compared against the
  per-task budget when it chose the block: the same figure for the stage's largest
  task.
* **measured**: the worker process's peak resident set during the task minus its
  resident set just before it (``VmHWM`` after resetting it through
  ``/proc/self/clear_refs``, minus ``VmRSS``). The worker has imported everything and
  run the same step's tasks on a small input first (numba compiled or loaded from its
  cache, zarr and the codecs initialised), then ``gc.collect()`` and glibc's
  ``malloc_trim(0)`` return what those left behind; so the figure is what the task
  itself adds to a resting worker: its arrays, zarr's decode and encode buffers,
  the kernel's scratch, numba NRT allocations (invisible to ``tracemalloc``, not to
  the resident set). Page cache is not counted (chunks are read with ``read()``).

Tasks are planned as the ``ray`` executor would with ``--workers`` workers (default 2)
and ``--memory-budget`` in all (default 1 GiB, so 512 MiB per task), on inputs big
enough that one task holds tens of MiB of arrays; the task measured is the one with
the largest projection in its stage (ties: the first, a corner block, which pads its
halo). The other tasks run in-process, so each step commits as in a real run.

Results: a table on stdout and ``benchmarks/results/memory-model-<date>.json``
(``--name`` and ``--results`` change that). ``--operators`` takes a comma-separated
subset (case names as in the table, e.g. ``array.gaussian,medicine.label_blocks``).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CASES",
    "Case",
    "Measurement",
    "MemoryProbe",
    "main",
]

REPO = Path(__file__).resolve().parents[1]
MIB = 1 << 20
#: Task kinds whose projected memory is the operator's formula (the other kinds,
#: rechunk and the combine stages, are sized by the planner itself): a task's payload
#: type (``core/_patterns``), or the ``kind`` string of planners before them.
OPERATOR_KINDS = (
    "BlockTask",
    "ReduceBlockTask",
    "ReducePartialTask",
    "AggregatePartialTask",
    "block",
    "reduce_block",
    "reduce_partial",
    "agg_partial",
)


def _kind(spec: Any) -> str:
    kind = getattr(spec, "kind", None)
    return str(kind) if kind else type(spec.payload).__name__


# --------------------------------------------------------------------------- worker side
def _proc_kib(field: bytes) -> int:
    with open("/proc/self/status", "rb") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM to the current VmRSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def _trim() -> None:
    import ctypes

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _child() -> int:
    """The measuring worker: pickled ``(command, TaskSpec)`` in on stdin, results out."""
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not corrupt the pipe
    inp = sys.stdin.buffer
    from minjiang.core._tasks import run_task

    while True:
        try:
            cmd, spec = pickle.load(inp)
        except EOFError:
            return 0
        if cmd == "exit":
            return 0
        try:
            if cmd == "warm":
                reply: Any = ("ok", run_task(spec), {})
            else:
                _trim()
                time.sleep(0.05)
                rss0 = _proc_kib(b"VmRSS:")
                reset = _reset_peak()
                t0 = time.perf_counter()
                res = run_task(spec)
                seconds = time.perf_counter() - t0
                peak = _proc_kib(b"VmHWM:")
                figures = {
                    "baseline_rss_bytes": rss0 * 1024,
                    "peak_rss_bytes": peak * 1024,
                    "measured_bytes": max(0, peak - rss0) * 1024 if reset else None,
                    "hwm_reset": reset,
                    "task_seconds": seconds,
                }
                reply = ("ok", res, figures)
        except BaseException as err:  # reported to the parent, which raises it
            import traceback

            reply = ("error", f"{type(err).__name__}: {err}\n{traceback.format_exc()}", {})
        pickle.dump(reply, out)
        out.flush()


# --------------------------------------------------------------------------- parent side
class _Worker:
    """One measuring worker process (``python -m benchmarks.memory_model --child``)."""

    def __init__(self) -> None:
        from minjiang.core._executors import WORKER_ENV

        env = dict(os.environ)
        # the environment a local Ray gives its workers (zarr's concurrency, malloc)
        env.update({k: v for k, v in WORKER_ENV.items() if k not in env})
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.memory_model", "--child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO,
            env=env,
        )

    def call(self, cmd: str, spec: Any) -> tuple[Any, dict[str, Any]]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        pickle.dump((cmd, spec), self.proc.stdin)
        self.proc.stdin.flush()
        status, value, figures = pickle.load(self.proc.stdout)
        if status != "ok":
            raise RuntimeError(f"measuring worker failed on task {spec.key}: {value}")
        return value, figures

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                pickle.dump(("exit", None), self.proc.stdin)
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def _executor_base() -> type:
    from minjiang.core._executors import Executor

    return Executor


class _Measured(Exception):
    """Every target is measured: the probe stops the run there."""


class MemoryProbe:
    """Runs a step's tasks like the ``local`` executor, except the target operator's
    tasks: in the warm-up phase they all run in the measuring worker; in the measure
    phase the one with the largest projection runs there, measured."""

    def __init__(self, worker: _Worker, targets: Sequence[str], n_workers: int) -> None:
        self.worker = worker
        self.targets = tuple(targets)
        self.n_workers = n_workers
        self.phase = "warm"
        self.measured: list[tuple[Any, dict[str, Any]]] = []

    def run(self, tasks: Sequence[Any], on_result: Callable[[Any], None]) -> None:
        from minjiang.core._tasks import run_task

        mine = [t for t in tasks if t.operator in self.targets and _kind(t) in OPERATOR_KINDS]
        chosen = None
        if mine and self.phase == "measure":
            top = max(t.memory for t in mine)
            chosen = next(t for t in mine if t.memory == top)
        for spec in tasks:
            if spec is chosen:
                res, figures = self.worker.call("measure", spec)
                self.measured.append((spec, figures))
                if {s.operator for s, _ in self.measured} >= set(self.targets):
                    raise _Measured  # the rest of the run is not needed
            elif spec in mine and self.phase == "warm":
                res, _ = self.worker.call("warm", spec)
            else:
                res = run_task(spec)
            on_result(res)


def _probe_runtime(store: Path, budget: int, probe: MemoryProbe) -> Any:
    """A Runtime whose executor is ``probe`` (planned as ``probe.n_workers`` workers)."""
    from minjiang import Runtime

    base = _executor_base()

    class _Exec(base):  # type: ignore[misc, valid-type]
        name = "local"

        def workers(self) -> int:
            return probe.n_workers

        def run(self, tasks: Sequence[Any], on_result: Callable[[Any], None]) -> None:
            probe.run(tasks, on_result)

    class _Runtime(Runtime):
        @property
        def executor(self) -> Any:
            return self._probe_executor

    rt = _Runtime(store, executor="local", memory_budget=budget)
    rt._probe_executor = _Exec()
    return rt


# --------------------------------------------------------------------------- inputs
@dataclasses.dataclass(frozen=True)
class Scale:
    """Input sizes: a float32 (time, lat, lon) cube and a float32 (z, y, x) volume."""

    cube: tuple[int, int, int]
    cube_chunks: tuple[int, int, int]
    volume: tuple[int, int, int]
    volume_chunks: tuple[int, int, int]


WARM = Scale((730, 16, 16), (730, 8, 8), (32, 32, 32), (16, 16, 16))
LARGE = Scale((730, 160, 160), (730, 10, 10), (256, 256, 256), (32, 32, 32))


def _write_group(path: Path, arrays: dict[str, Any], coords: dict[str, Any]) -> Path:
    import xarray as xr

    ds = xr.Dataset(
        {k: (dims, v, attrs) for k, (dims, v, attrs, _) in arrays.items()}, coords=coords
    )
    enc = {k: {"chunks": ch} for k, (_, _, _, ch) in arrays.items()}
    ds.to_zarr(path, mode="w", zarr_format=3, consolidated=False, encoding=enc)
    return path


def _cube_values(shape: tuple[int, int, int]) -> np.ndarray:
    nt, ny, nx = shape
    t = np.arange(nt, dtype=np.float32)[:, None, None]
    y = np.linspace(-1, 1, ny, dtype=np.float32)[None, :, None]
    x = np.linspace(0, 6, nx, dtype=np.float32)[None, None, :]
    rng = np.random.default_rng(20261206)
    out = 15 + 3 * np.sin(2 * np.pi * t / 365.0) + 2 * y + np.sin(x)
    out = out + rng.standard_normal(shape, dtype=np.float32)
    return out.astype(np.float32)


def _volume_fields(shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nz, ny, nx = shape
    z = np.arange(nz, dtype=np.float32)[:, None, None]
    y = np.arange(ny, dtype=np.float32)[None, :, None]
    x = np.arange(nx, dtype=np.float32)[None, None, :]
    blobs = np.sin(z / 5.0) * np.sin(y / 7.0) * np.sin(x / 9.0)
    rng = np.random.default_rng(7)
    image = (400 * blobs + 20 * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)
    mask = (blobs > 0.3).astype(np.uint8)
    regions = 1 + (z // 32) * 64 + (y // 32) * 8 + x // 32
    labels = np.where(mask > 0, regions, 0).astype(np.int32)
    return image, mask, labels


class Inputs:
    """The ingested input datasets of one scale (made once per store)."""

    def __init__(self, rt: Any, folder: Path, scale: Scale, tag: str) -> None:
        time_ = np.arange(np.datetime64("2001-01-01"), np.datetime64("2001-01-01") + scale.cube[0])
        lat = np.linspace(-20.0, 20.0, scale.cube[1])
        lon = np.linspace(140.0, 220.0, scale.cube[2])
        cube = _cube_values(scale.cube)
        src = _write_group(
            folder / f"cube-{tag}.zarr",
            {"sst": (("time", "lat", "lon"), cube, {"units": "degree_C"}, scale.cube_chunks)},
            {"time": time_, "lat": lat, "lon": lon},
        )
        del cube
        self.cube = rt.ingest("array.zarr", [src]).id
        nl = scale.cube
        labels = ((np.arange(nl[1])[:, None] // 4) * 8 + np.arange(nl[2])[None, :] // 20) % 65
        lab = np.broadcast_to(labels.astype(np.uint8), nl).copy()
        src = _write_group(
            folder / f"labels-{tag}.zarr",
            {"labels": (("time", "lat", "lon"), lab, {}, scale.cube_chunks)},
            {"time": time_, "lat": lat, "lon": lon},
        )
        del lab
        self.cube_labels = rt.ingest("array.zarr", [src]).id
        image, mask, vlabels = _volume_fields(scale.volume)
        attrs = {"spacing": [1.0, 1.0, 1.0], "window_center": 40.0, "window_width": 400.0}
        ch = scale.volume_chunks
        src = _write_group(
            folder / f"volume-{tag}.zarr",
            {
                "image": (("z", "y", "x"), image, attrs, ch),
                "ct": (("z", "y", "x"), image.astype(np.int16), attrs, ch),
                "mask": (("z", "y", "x"), mask, {"spacing": [1.0, 1.0, 1.0]}, ch),
                "labels": (("z", "y", "x"), vlabels, {"spacing": [1.0, 1.0, 1.0]}, ch),
            },
            {},
        )
        self.volume = rt.ingest("array.zarr", [src]).id


# --------------------------------------------------------------------------- cases
@dataclasses.dataclass(frozen=True)
class Case:
    """One pipeline, ``steps(inputs)``, and the operators measured in it (registered
    operators, or the sub-operators a composite expands into), one task each."""

    name: str
    targets: tuple[str, ...]
    steps: Callable[[Inputs], list[dict[str, Any]]]
    #: the run's memory budgets (warm scale, large scale) for this case (None: the
    #: session's), for a composite that takes another path under a smaller budget:
    #: the warm run must take the same path to load and compile what it runs
    budgets: tuple[int, int] | None = None


def _one(op: str, inputs: dict[str, str], params: dict[str, Any] | None = None) -> Any:
    return lambda i: [
        {"id": "s", "operator": op, "inputs": _fill(inputs, i), "params": params or {}}
    ]


def _fill(inputs: dict[str, str], i: Inputs) -> dict[str, str]:
    return {
        k: v.format(cube=i.cube, labels=i.cube_labels, volume=i.volume) for k, v in inputs.items()
    }


def _with_clim(op: str, inputs: dict[str, str], params: dict[str, Any] | None = None) -> Any:
    def steps(i: Inputs) -> list[dict[str, Any]]:
        return [
            {"id": "clim", "operator": "ocean.climatology", "inputs": {"sst": f"{i.cube}:sst"}},
            {"id": "s", "operator": op, "inputs": _fill(inputs, i), "params": params or {}},
        ]

    return steps


def _doy_anomaly(i: Inputs) -> list[dict[str, Any]]:
    return [
        {"id": "clim", "operator": "array.doy_climatology", "inputs": {"x": f"{i.cube}:sst"}},
        {
            "id": "s",
            "operator": "array.doy_anomaly",
            "inputs": {"x": f"{i.cube}:sst", "climatology": "clim:climatology"},
        },
    ]


_SST = {"sst": "{cube}:sst"}
_X = {"x": "{cube}:sst"}
_IMG = {"image": "{volume}:image"}
_EOF = {"n_modes": 4}

CASES: tuple[Case, ...] = (
    Case(
        "array.band_math",
        ("array.band_math",),
        _one(
            "array.band_math",
            {"a": "{cube}:sst", "b": "{cube}:sst"},
            {"expression": "(a - b) / (a + b)"},
        ),
    ),
    Case("array.gaussian", ("array.gaussian",), _one("array.gaussian", _X, {"sigma": 2.0})),
    Case(
        "array.reduce",
        ("array.reduce",),
        _one("array.reduce", _X, {"dims": ["time"], "stat": "std"}),
    ),
    Case(
        # across the chunks: partial states when the whole cube is over a task's budget
        "array.reduce spatial",
        ("array.reduce",),
        _one("array.reduce", _X, {"dims": ["lat", "lon"], "stat": "var"}),
    ),
    Case("array.quantile", ("array.quantile",), _one("array.quantile", _X, {"q": 0.9})),
    Case("array.doy_climatology", ("array.doy_climatology",), _one("array.doy_climatology", _X)),
    Case("array.doy_anomaly", ("array.doy_anomaly",), _doy_anomaly),
    Case("array.deseason", ("array.deseason",), _one("array.deseason", _X)),
    Case(
        "array.resample_time",
        ("array.resample_time",),
        _one("array.resample_time", _X, {"freq": "month", "how": "mean"}),
    ),
    Case(
        "array.regrid",
        ("array.regrid",),
        _one(
            "array.regrid",
            _X,
            {"method": "bilinear", "lat": [-19.5, 19.5, 0.5], "lon": [140.5, 219.5, 0.5]},
        ),
    ),
    Case(
        "array.label_stats",
        ("array.label_stats",),
        _one("array.label_stats", {"values": "{cube}:sst", "labels": "{labels}:labels"}),
    ),
    Case("ocean.climatology", ("ocean.climatology",), _one("ocean.climatology", _SST)),
    Case(
        "ocean.anomaly",
        ("ocean.anomaly",),
        _with_clim("ocean.anomaly", {"sst": "{cube}:sst", "seas": "clim:seas"}),
    ),
    Case(
        "ocean.marine_heatwaves",
        ("ocean.marine_heatwaves",),
        _with_clim(
            "ocean.marine_heatwaves",
            {"sst": "{cube}:sst", "seas": "clim:seas", "thresh": "clim:thresh"},
            {"years": [2001, 2002]},
        ),
    ),
    Case(
        "ocean.regional_mean",
        ("ocean.regional_mean",),
        _one("ocean.regional_mean", _SST, {"regions": ["global", "nino34"], "weights": "cos_lat"}),
    ),
    Case(
        "ocean.running_mean",
        ("ocean.running_mean",),
        _one("ocean.running_mean", _X, {"window": 31}),
    ),
    Case("ocean.eof", ("ocean.eof_gram", "ocean.eof_project"), _one("ocean.eof", _X, _EOF)),
    Case("medicine.hu_window", ("medicine.hu_window",), _one("medicine.hu_window", _IMG)),
    Case(
        "medicine.hu_window int16",
        ("medicine.hu_window",),
        _one("medicine.hu_window", {"image": "{volume}:ct"}),
    ),
    Case(
        "medicine.gaussian",
        ("medicine.gaussian",),
        _one("medicine.gaussian", _IMG, {"sigma_mm": 2.0}),
    ),
    Case(
        "medicine.gaussian int16",
        ("medicine.gaussian",),
        _one("medicine.gaussian", {"image": "{volume}:ct"}, {"sigma_mm": 2.0}),
    ),
    Case("medicine.median", ("medicine.median",), _one("medicine.median", _IMG, {"size_mm": 3.0})),
    Case(
        "medicine.threshold",
        ("medicine.value_range", "medicine.otsu", "medicine.threshold_apply"),
        _one("medicine.threshold", _IMG, {"method": "otsu"}),
    ),
    Case(
        "medicine.label",  # the volume's one task fits the budget
        ("medicine.label_volume",),
        _one("medicine.label", {"mask": "{volume}:mask"}, {"connectivity": 6}),
    ),
    Case(
        "medicine.label blocks",  # it does not: blocks, equivalences, relabel
        ("medicine.label_blocks", "medicine.label_equivalences", "medicine.label_relabel"),
        _one("medicine.label", {"mask": "{volume}:mask"}, {"connectivity": 6}),
        budgets=(512 << 10, 128 << 20),
    ),
    Case(
        "medicine.volumetrics",
        ("medicine.volumetrics",),
        _one("medicine.volumetrics", {"labels": "{volume}:labels", "image": "{volume}:image"}),
    ),
)


# --------------------------------------------------------------------------- one case
@dataclasses.dataclass(frozen=True)
class Measurement:
    """One task of one operator: what the plan projected and what the task used."""

    case: str
    operator: str
    kind: str
    tasks: int
    block: tuple[int, ...]
    input_bytes: int
    output_bytes: int
    projected_bytes: int
    planner_check_bytes: int
    measured_bytes: int
    baseline_rss_bytes: int
    task_seconds: float

    @property
    def ratio(self) -> float:
        """Projected ÷ measured."""
        return self.projected_bytes / max(self.measured_bytes, 1)

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "ratio": self.ratio}


def _read_bytes(spec: Any) -> int:
    total = 0
    for r in spec.reads:
        info = getattr(r, "info", None)
        if info is None:
            continue
        cells = math.prod(
            (s.stop - s.start) + lo + hi for s, (lo, hi) in zip(r.read, r.pad, strict=True)
        )
        total += cells * np.dtype(info.dtype).itemsize
    return total


def _write_bytes(spec: Any, step: Any) -> int:
    """Bytes the task writes to arrays (partial states, not in the plan's arrays: float64)."""
    arrays = getattr(step, "arrays", {}) or {}
    total = 0
    for w in spec.writes:
        cells = math.prod(s.stop - s.start for s in w.region)
        a = arrays.get(w.array)
        total += cells * np.dtype(a.dtype if a is not None else "float64").itemsize
    return total


class Session:
    """A store with the inputs of both scales, and one measuring worker per case."""

    def __init__(self, folder: Path, *, budget: int = 1 << 30, workers: int = 2) -> None:
        from minjiang import Runtime

        self.folder = folder
        self.store = folder / "store"
        self.budget = budget
        self.workers = workers
        with Runtime(self.store, executor="local", memory_budget=budget) as rt:
            self.warm = Inputs(rt, folder, WARM, "warm")
            self.large = Inputs(rt, folder, LARGE, "large")

    def measure(self, case: Case) -> list[Measurement]:
        """Run ``case`` at both scales and measure one task of each of its targets."""
        worker = _Worker()
        try:
            probe = MemoryProbe(worker, case.targets, self.workers)
            warm, large = case.budgets or (self.budget, self.budget)
            rt = _probe_runtime(self.store, warm, probe)
            rt.run_pipeline({"steps": case.steps(self.warm)})
            probe.phase = "measure"
            rt.memory_budget = large
            plan = rt.plan({"steps": case.steps(self.large)})
            try:
                rt.run_pipeline({"steps": case.steps(self.large)})
            except _Measured:
                pass
        finally:
            worker.close()
        out = []
        for spec, fig in probe.measured:
            step = next(
                s
                for s in plan.steps
                if getattr(s, "dataset_id", None) == spec.dataset_id
                and getattr(s, "operator", None) is not None
            )
            tasks = [t for st in step.stages for t in st.tasks if _kind(t) in OPERATOR_KINDS]
            if fig.get("measured_bytes") is None:
                raise RuntimeError("cannot reset the peak resident set (/proc/self/clear_refs)")
            out.append(
                Measurement(
                    case=case.name,
                    operator=spec.operator,
                    kind=_kind(spec),
                    tasks=len(tasks),
                    block=tuple(s.stop - s.start for s in spec.region),
                    input_bytes=_read_bytes(spec),
                    output_bytes=_write_bytes(spec, step),
                    projected_bytes=int(spec.memory),
                    planner_check_bytes=int(step.block.task_memory)
                    if step.block
                    else int(spec.memory),
                    measured_bytes=int(fig["measured_bytes"]),
                    baseline_rss_bytes=int(fig["baseline_rss_bytes"]),
                    task_seconds=float(fig["task_seconds"]),
                )
            )
        missing = set(case.targets) - {m.operator for m in out}
        if missing:
            raise RuntimeError(
                f"{case.name}: no task of {sorted(missing)!r} ran (a step reused from an "
                "earlier run?); measure in a fresh store"
            )
        return out


# --------------------------------------------------------------------------- report
def _table(rows: Sequence[Measurement]) -> str:
    head = (
        f"{'operator':30} {'kind':20} {'tasks':>5} {'in MiB':>7} {'out MiB':>7} "
        f"{'proj MiB':>8} {'meas MiB':>8} {'proj/meas':>9} {'base MiB':>8}"
    )
    lines = [head, "-" * len(head)]
    for m in rows:
        lines.append(
            f"{m.operator:30} {m.kind:20} {m.tasks:5d} {m.input_bytes / MIB:7.1f} "
            f"{m.output_bytes / MIB:7.1f} {m.projected_bytes / MIB:8.1f} "
            f"{m.measured_bytes / MIB:8.1f} {m.ratio:9.2f} {m.baseline_rss_bytes / MIB:8.1f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.memory_model", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--operators", default="", help="comma-separated case names (default: all)")
    parser.add_argument(
        "--memory-budget", default="1GiB", help="total budget the plans are made with"
    )
    parser.add_argument("--workers", type=int, default=2, help="workers the plans are made for")
    parser.add_argument("--name", default=f"memory-model-{time.strftime('%Y%m%d')}")
    parser.add_argument("--results", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument(
        "--data-dir", default=None, help="scratch folder (default: a temporary one)"
    )
    args = parser.parse_args(argv)
    if args.child:
        return _child()
    from minjiang.core._units import parse_memory_budget

    budget = parse_memory_budget(args.memory_budget)
    wanted = [s for s in args.operators.split(",") if s]
    unknown = sorted(set(wanted) - {c.name for c in CASES})
    if unknown:
        parser.error(f"unknown cases {unknown!r}; choose from {[c.name for c in CASES]!r}")
    cases = [c for c in CASES if not wanted or c.name in wanted]
    with tempfile.TemporaryDirectory(dir=args.data_dir) as tmp:
        t0 = time.perf_counter()
        session = Session(Path(tmp), budget=budget, workers=args.workers)
        rows = []
        failed = []
        for case in cases:
            try:
                ms = session.measure(case)
            except Exception as err:  # one broken case must not hide the others' figures
                failed.append({"case": case.name, "error": f"{type(err).__name__}: {err}"})
                print(
                    f"{case.name}: FAILED {type(err).__name__}: {err}", file=sys.stderr, flush=True
                )
                continue
            rows.extend(ms)
            for m in ms:
                print(
                    f"{m.operator}: projected {m.projected_bytes / MIB:.1f} MiB, measured "
                    f"{m.measured_bytes / MIB:.1f} MiB (x{m.ratio:.2f})",
                    file=sys.stderr,
                    flush=True,
                )
        elapsed = time.perf_counter() - t0
    print(_table(rows))
    from benchmarks._measure import git_state, machine_facts, software_versions

    doc = {
        "name": args.name,
        "command": "python -m benchmarks.memory_model "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "memory_budget_bytes": budget,
        "workers": args.workers,
        "per_task_budget_bytes": budget // max(args.workers, 1),
        "elapsed_seconds": elapsed,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_facts(),
        "software": software_versions(),
        "git": git_state(REPO),
        "cases": [m.as_dict() for m in rows],
        "failed": failed,
    }
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{args.name}.json"
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"saved {path}")
    for f in failed:
        print(f"FAILED {f['case']}: {f['error']}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

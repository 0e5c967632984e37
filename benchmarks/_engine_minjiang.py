"""minjiang as a benchmark engine: the Ray executor and the in-process ``local`` one.

The harness ingests the generated inputs into the store once (untimed) and hands
every engine the ingested Zarr arrays, so minjiang and its peers read the same files;
every measured run passes ``reuse=False`` so the catalog never short-cuts the work.
The runtime's own task events, timestamped as they arrive, give the per-task
breakdown (read + decode, kernel, encode + write, the rest of a task) and the
driver's phases (planning, commit).
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from benchmarks._data import BenchData
from benchmarks._engines import Engine, EngineGone, RunOutput
from benchmarks._workloads import BAND_MATH, GAUSSIAN_SIGMA, QUANTILE, Workload, mhw_years

__all__ = ["MinjiangLocalEngine", "MinjiangRayEngine", "summarise_steps"]

# the canonical output names of the workloads -> minjiang's output array names
_OUTPUT_NAMES = {
    "out": "result",
    "mean": "mean",
    "q90": "quantile",
    "anomaly": "anomaly",
    "smoothed": "x",
}


class _MinjiangEngine(Engine):
    executor: ClassVar[str] = ""

    def setup(self) -> dict[str, Any]:
        if importlib.util.find_spec("minjiang.core._runtime") is None:
            raise RuntimeError(
                "minjiang's runtime (minjiang.core._runtime) is not in this checkout"
            )
        import minjiang as mj

        kw: dict[str, Any] = {
            "store": self.options.store,
            "executor": self.executor,
            "num_cpus": self.options.cores,
            "memory_budget": self.options.memory_budget,
            "backend": self.options.backend,
            "progress": False,
        }
        if self.executor == "ray" and self.options.address:
            kw["address"] = self.options.address
        self.rt = mj.Runtime(**kw)
        self.clock: list[tuple[float, Any]] = []
        self.rt.subscribe(lambda ev: self.clock.append((time.perf_counter(), ev)))
        # start the executor (a local Ray: the Ray executor connects only when asked
        # about the cluster or given tasks) now, outside every measured run
        described = self.rt.executor.describe()
        self.workers = int(self.rt.executor.workers())
        self._produced: list[str] = []
        return {
            "executor": self.executor,
            "workers": self.workers,
            "num_cpus": self.options.cores,
            "memory_budget": self.options.memory_budget,
            "address": self.options.address,
            "backend": self.options.backend,
            "store": self.options.store,
            "cluster": described,
        }

    def supports(self, wl: Workload) -> str | None:
        missing = [op for op in wl.operators if op not in self.rt.operators]
        return f"operators not registered: {missing!r}" if missing else None

    def prepare(self, data: BenchData, names: tuple[str, ...]) -> dict[str, Any]:
        missing = [n for n in names if n not in data.datasets]
        if missing:
            raise RuntimeError(f"inputs {missing!r} were not ingested into the store")
        return {}

    def _run(
        self, op: str, inputs: dict[str, Any], params: dict[str, Any], steps: list[dict[str, Any]]
    ) -> Any:
        self.clock.clear()
        t0 = time.perf_counter()
        res = self.rt.run(op, inputs=inputs, params=params, reuse=False)
        steps.append(_step_figures(op, t0, time.perf_counter(), self.clock))
        # every dataset the call computed, hidden sub-steps of a composite included
        self._produced += [ev.dataset_id for _, ev in self.clock if ev.kind == "step_started"]
        return res

    def _check_alive(self) -> None:
        if self.executor != "ray":
            return
        import ray

        try:
            alive = ray.is_initialized() and any(n.get("Alive") for n in ray.nodes())
        except Exception:
            alive = False
        if not alive:
            raise EngineGone(
                "the engine's Ray cluster is gone (its raylet was stopped); restarting the engine"
            )

    def run(self, wl: Workload, data: BenchData, out_dir: Path) -> RunOutput:
        self._check_alive()
        self._produced = []
        try:
            return self._run_workload(wl, data)
        except BaseException:
            # a failed run must not leave half-made datasets for the next engine to trip on
            self._forget(
                sorted(
                    {
                        *self._produced,
                        *(ev.dataset_id for _, ev in self.clock if ev.kind == "step_started"),
                    }
                )
            )
            raise

    def _run_workload(self, wl: Workload, data: BenchData) -> RunOutput:
        ids = data.datasets
        a = ids.get("a")
        steps: list[dict[str, Any]] = []
        if wl.key == "w1_band_math":
            out = {
                "out": self._run(
                    "array.band_math", {"a": a, "b": ids["b"]}, {"expression": BAND_MATH}, steps
                )
            }
        elif wl.key == "w2_mean":
            out = {
                "mean": self._run(
                    "array.reduce", {"x": a}, {"dims": ["time"], "stat": "mean"}, steps
                )
            }
        elif wl.key == "w2_q90":
            out = {
                "q90": self._run("array.quantile", {"x": a}, {"dim": "time", "q": QUANTILE}, steps)
            }
        elif wl.key == "w3_anomaly":
            out = {"anomaly": self._run("array.deseason", {"x": a}, {}, steps)}
        elif wl.key == "w4_gaussian":
            out = {
                "smoothed": self._run("array.gaussian", {"x": a}, {"sigma": GAUSSIAN_SIGMA}, steps)
            }
        elif wl.key == "w5_label_stats":
            out = {
                "stats": self._run(
                    "array.label_stats", {"values": a, "labels": ids["labels"]}, {}, steps
                )
            }
        elif wl.key == "ocean_mhw":
            clim = self._run("ocean.climatology", {"sst": a}, {}, steps)
            y0, y1 = mhw_years(data.shape[0])
            mhw = self._run(
                "ocean.marine_heatwaves",
                {"sst": a, "seas": f"{clim.id}:seas", "thresh": f"{clim.id}:thresh"},
                {"years": [y0, y1]},
                steps,
            )
            out = {"seas": clim, "thresh": clim, "count": mhw, "days": mhw}
        elif wl.key == "medicine_label":
            out = {
                "labels": self._run(
                    "medicine.label", {"mask": ids["mask"]}, {"connectivity": 6}, steps
                )
            }
        else:
            raise ValueError(f"minjiang engine: no implementation of {wl.key!r}")
        events = summarise_steps(steps, self.workers)
        details: dict[str, Any] = {"events": events, "ids": {k: v.id for k, v in out.items()}}
        if events["tasks_skipped"]:
            details["work_skipped"] = (
                f"the runtime skipped {events['tasks_skipped']} of "
                f"{events['tasks'] + events['tasks_skipped']} tasks as already done"
            )
        return RunOutput({"outputs": out, "produced": sorted(set(self._produced))}, details)

    def fetch(self, wl: Workload, handle: Any, window: dict[str, slice]) -> dict[str, Any]:
        got: dict[str, Any] = {}
        for o in wl.outputs:
            res = handle["outputs"][o.name]
            if o.kind == "table":
                got[o.name] = {k: np.asarray(v) for k, v in res.table(o.name).to_pydict().items()}
                continue
            ds = res.to_xarray()
            var = _OUTPUT_NAMES.get(o.name, o.name)
            # an output named like a dimension ('x') opens as a coordinate: look in variables
            da = ds[var if var in ds.variables else next(iter(ds.data_vars))]
            got[o.name] = da.isel({d: s for d, s in window.items() if d in da.dims}).values
        return got

    def discard(self, handle: Any) -> None:
        """Delete every dataset the run computed (untimed, between runs).

        Each measured run then starts from a store without its outputs and computes and
        commits them, as a first run does. (A repeated ``reuse=False`` run of a dataset
        that is already committed would instead skip the tasks whose manifests an earlier
        recompute left behind, and a dataset id planned with another executor's chunking
        would clash with the one in the store.)
        """
        self._forget((handle or {}).get("produced", []))

    def _forget(self, dataset_ids: list[str]) -> None:
        for did in dataset_ids:  # the store layout of docs/architecture.md
            self.rt.store.delete(f"catalog/records/{did}.json")
            self.rt.store.delete_prefix(f"datasets/{did}")

    def close(self) -> None:
        rt = getattr(self, "rt", None)
        if rt is not None:
            rt.close()


def _step_figures(op: str, t0: float, t1: float, clock: list[tuple[float, Any]]) -> dict[str, Any]:
    """One ``rt.run`` call: its task totals and the driver's phases, from timed events."""
    tasks = [ev.task for _, ev in clock if ev.kind == "task_finished" and ev.task is not None]
    skipped = sum(1 for _, ev in clock if ev.kind in ("task_skipped", "step_reused"))
    times = {ev.kind: t for t, ev in clock if ev.kind in ("run_started", "run_finished")}
    task_times = [t for t, ev in clock if ev.kind == "task_finished"]
    started = [t for t, ev in clock if ev.kind == "step_started"]
    committed = [t for t, ev in clock if ev.kind == "step_committed"]
    fig: dict[str, Any] = {
        "operator": op,
        "wall_s": t1 - t0,
        "tasks": len(tasks),
        "tasks_skipped": skipped,
        "stages": sorted({t.stage for t in tasks}),
        "task_s": sum(t.total_s for t in tasks),
        "read_s": sum(t.read_s for t in tasks),
        "kernel_s": sum(t.kernel_s for t in tasks),
        "write_s": sum(t.write_s for t in tasks),
        "bytes_read": sum(t.bytes_read for t in tasks),
        "bytes_written": sum(t.bytes_written for t in tasks),
        # what the tasks decoded (halo reads decode whole neighbouring chunks) and the
        # CPU seconds of each phase, all threads of the task's process
        "bytes_decoded": sum(getattr(t, "bytes_decoded", t.bytes_read) for t in tasks),
        **{f"{k}_cpu_s": sum(_cpu(t).get(k, 0.0) for t in tasks) for k in _CPU_PHASES},
        "backends": sorted({t.backend for t in tasks}),
        "worker_pids": len({t.pid for t in tasks}),
        "plan_s": times.get("run_started", t0) - t0,
        "finish_s": t1 - times.get("run_finished", t1),
        "commit_s": 0.0,
    }
    # last task done -> step committed is the driver alone (consolidate, record, publish)
    if task_times and committed:
        fig["commit_s"] = max(max(committed) - max(task_times), 0.0)
    if task_times and started:
        fig["first_task_s"] = min(task_times) - min(started)
    fig["decode_amplification"] = (
        fig["bytes_decoded"] / fig["bytes_read"] if fig["bytes_read"] else None
    )
    # per stage of the step (a rechunk and the full-axis tasks after it read differently)
    fig["by_stage"] = {
        stage: {
            "tasks": len(ts),
            "bytes_read": sum(t.bytes_read for t in ts),
            "bytes_decoded": sum(getattr(t, "bytes_decoded", t.bytes_read) for t in ts),
            "bytes_written": sum(t.bytes_written for t in ts),
            **{f"{k}_cpu_s": sum(_cpu(t).get(k, 0.0) for t in ts) for k in _CPU_PHASES},
        }
        for stage in fig["stages"]
        for ts in [[t for t in tasks if t.stage == stage]]
    }
    return fig


_CPU_PHASES = ("read", "kernel", "write", "summary")


def _cpu(task: Any) -> dict[str, float]:
    """A task's CPU seconds by phase (empty from a runtime that does not measure them)."""
    return dict(getattr(task, "cpu", None) or {})


def summarise_steps(steps: list[dict[str, Any]], workers: int) -> dict[str, Any]:
    """Totals over the steps of one workload run, in the harness's overhead format."""
    keys = (
        "task_s",
        "read_s",
        "kernel_s",
        "write_s",
        "plan_s",
        "commit_s",
        "finish_s",
        "bytes_read",
        "bytes_written",
        "bytes_decoded",
        *(f"{k}_cpu_s" for k in _CPU_PHASES),
    )
    tot: dict[str, Any] = {k: sum(s.get(k, 0.0) for s in steps) for k in keys}
    tot["tasks"] = sum(s["tasks"] for s in steps)
    tot["tasks_skipped"] = sum(s["tasks_skipped"] for s in steps)
    tot["steps"] = len(steps)
    tot["workers"] = workers
    tot["other_task_s"] = max(tot["task_s"] - tot["read_s"] - tot["kernel_s"] - tot["write_s"], 0.0)
    tot["driver_s"] = tot["plan_s"] + tot["commit_s"] + tot["finish_s"]
    tot["decode_amplification"] = (
        tot["bytes_decoded"] / tot["bytes_read"] if tot["bytes_read"] else None
    )
    tot["per_step"] = steps
    return tot


class MinjiangRayEngine(_MinjiangEngine):
    """minjiang on Ray (a local Ray started by the runtime, or ``--address``)."""

    name = "minjiang-ray"
    description = "minjiang, Ray executor"
    executor = "ray"


class MinjiangLocalEngine(_MinjiangEngine):
    """minjiang's in-process, sequential ``local`` executor."""

    name = "minjiang-local"
    description = "minjiang, local executor"
    executor = "local"

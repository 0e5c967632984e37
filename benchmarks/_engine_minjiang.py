"""minjiang as a benchmark engine: the Ray executor and the in-process ``local`` one.

Inputs are ingested once per engine process (untimed) from the same generated Zarr
groups the peers read; every measured run passes ``reuse=False`` so the catalog
never short-cuts the work. The runtime's own task events are summarised into the
per-task breakdown (read + decode, kernel, encode + write, the rest).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, ClassVar

from benchmarks._data import BenchData
from benchmarks._engines import Engine, RunOutput
from benchmarks._workloads import BAND_MATH, GAUSSIAN_SIGMA, QUANTILE, Workload

__all__ = ["MinjiangLocalEngine", "MinjiangRayEngine"]


class _MinjiangEngine(Engine):
    executor: ClassVar[str] = ""

    def setup(self) -> dict[str, Any]:
        if importlib.util.find_spec("minjiang.core._runtime") is None:
            raise RuntimeError("minjiang's runtime (minjiang.core._runtime) is not in this checkout")
        import minjiang as mj

        kw: dict[str, Any] = {
            "store": self.options.store,
            "executor": self.executor,
            "num_cpus": self.options.cores,
            "memory_budget": self.options.memory_budget,
            "progress": False,
        }
        if self.executor == "ray" and self.options.address:
            kw["address"] = self.options.address
        self.rt = mj.Runtime(**kw)
        self.datasets: dict[tuple[str, str], Any] = {}
        return {"executor": self.executor, "num_cpus": self.options.cores,
                "memory_budget": self.options.memory_budget, "address": self.options.address,
                "backend": self.options.backend}

    def _operator_names(self) -> set[str]:
        for attr in ("operators", "registry"):
            ops = getattr(self.rt, attr, None)
            if ops is not None:
                ops = ops() if callable(ops) else ops
                return {getattr(o, "name", o) for o in ops}
        return set()

    def supports(self, wl: Workload) -> str | None:
        missing = [op for op in wl.operators if op not in self._operator_names()]
        return f"operators not registered: {missing!r}" if missing else None

    def prepare(self, data: BenchData, names: tuple[str, ...]) -> dict[str, Any]:
        for n in names:
            key = (data.tag, n)
            if key not in self.datasets:
                ref = data.arrays[n]
                self.datasets[key] = self.rt.ingest("array.zarr", [ref.group], name=f"bench/{data.tag}/{n}")
        return {}

    def _run(self, op: str, inputs: dict[str, Any], params: dict[str, Any], events: list[Any]) -> Any:
        kw: dict[str, Any] = {"reuse": False}
        if self.options.backend != "auto":
            kw["backend"] = self.options.backend
        res = self.rt.run(op, inputs=inputs, params=params, **kw)
        events.extend(getattr(self.rt, "last_run_events", []) or [])
        return res

    def run(self, wl: Workload, data: BenchData, out_dir: Path) -> RunOutput:
        a = self.datasets[(data.tag, "a")]
        events: list[Any] = []
        if wl.key == "w1_band_math":
            b = self.datasets[(data.tag, "b")]
            out = {"out": self._run("array.band_math", {"a": a, "b": b}, {"expression": BAND_MATH}, events)}
        elif wl.key == "w2_mean":
            out = {"mean": self._run("array.reduce", {"x": a}, {"dims": ["time"], "stat": "mean"}, events)}
        elif wl.key == "w2_q90":
            out = {"q90": self._run("array.quantile", {"x": a}, {"dim": "time", "q": QUANTILE}, events)}
        elif wl.key == "w3_anomaly":
            clim = self._run("array.doy_climatology", {"x": a}, {}, events)
            out = {"anomaly": self._run("array.doy_anomaly", {"x": a, "clim": clim}, {}, events)}
        elif wl.key == "w4_gaussian":
            out = {"smoothed": self._run("array.gaussian", {"x": a}, {"sigma": GAUSSIAN_SIGMA}, events)}
        elif wl.key == "w5_label_stats":
            labels = self.datasets[(data.tag, "labels")]
            out = {"stats": self._run("array.label_stats", {"values": a, "labels": labels}, {}, events)}
        else:
            raise ValueError(f"minjiang engine: no implementation of {wl.key!r}")
        return RunOutput(out, {"events": summarise_events(events, self.options.cores, self.executor),
                               "ids": {k: getattr(v, "id", None) for k, v in out.items()}})

    def fetch(self, wl: Workload, handle: Any, window: dict[str, slice]) -> dict[str, Any]:
        got: dict[str, Any] = {}
        for o in wl.outputs:
            res = handle[o.name]
            if o.kind == "table":
                got[o.name] = res.table("stats").to_pandas()
                continue
            ds = res.to_xarray()
            var = o.name if o.name in ds.data_vars else next(iter(ds.data_vars))
            da = ds[var]
            got[o.name] = da.isel({d: s for d, s in window.items() if d in da.dims}).values
        return got

    def discard(self, handle: Any) -> None:
        """Outputs stay in the store (the next run with ``reuse=False`` rewrites them)."""

    def close(self) -> None:
        rt = getattr(self, "rt", None)
        close = getattr(rt, "close", None) or getattr(rt, "shutdown", None)
        if close is not None:
            close()
        if self.executor == "ray":
            try:
                import ray

                if ray.is_initialized():
                    ray.shutdown()
            except ImportError:
                pass


def summarise_events(events: list[Any], cores: int, executor: str) -> dict[str, Any] | None:
    """Totals of the runtime's task events: how many tasks, and where their seconds went."""
    tasks = [e for e in events if getattr(e, "kind", None) in ("task", "task_end", "task_done")]
    if not tasks:
        return None
    tot = {k: float(sum(getattr(e, k, 0.0) or 0.0 for e in tasks)) for k in ("seconds", "read_s", "kernel_s", "write_s")}
    return {
        "tasks": len(tasks),
        "steps": len({getattr(e, "step", None) for e in tasks}),
        "workers": cores if executor == "ray" else 1,
        "task_s": tot["seconds"],
        "read_s": tot["read_s"],
        "kernel_s": tot["kernel_s"],
        "write_s": tot["write_s"],
        "other_task_s": max(tot["seconds"] - tot["read_s"] - tot["kernel_s"] - tot["write_s"], 0.0),
        "bytes_read": int(sum(getattr(e, "bytes_read", 0) or 0 for e in tasks)),
        "bytes_written": int(sum(getattr(e, "bytes_written", 0) or 0 for e in tasks)),
    }


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

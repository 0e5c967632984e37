"""Time to first result: what a small job costs besides its work, cold and warm.

``python -m benchmarks.startup`` runs a two-step pipeline (ingest a small float32 SST
cube, then ``array.quantile`` q = 0.9 over time: one task each) through the command
line, each run a fresh ``minjiang`` process as a user would start it, and measures
its wall time:

* **cold, own Ray**: no cluster running; the run starts a local Ray on demand.
* **warm cluster, first run**: with ``minjiang cluster start`` running (its state in a
  temp folder), a fresh store: both steps compute.
* **warm cluster, again**: the same on another fresh store (the cluster's workers
  have imported what tasks import).
* **every step reused**: the same command again on that store (target: at most 2 s).
* **one 1-task step**: only the quantile step computes (its input is reused), on a
  fresh store each time (``--one-task-runs``); its cost over the every-reused run of
  that store, and the task's read, kernel and write seconds from the catalog record
  (target: the run at most 1 s over its kernel time), and the whole run's wall time
  over the kernel's. On a cluster with warm workers (``cluster start``'s default) the
  task runs on one; with its run service (also the default; ``--no-run-service``
  starts the cluster without it) the cluster's driver runs it.

and, against the same cube, **xarray + dask** (threaded scheduler): ``open_zarr`` then
``quantile(0.9, dim="time").compute()``, cold in a fresh process (imports included)
and warm (the same call again in that process).

Results print and go to ``benchmarks/results/startup-<date>.json``. On a busy host
the figures move a lot: the machine's load average is recorded with them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PIPELINE = """\
name: bench.first_result
version: "1"
inputs: [cube]
steps:
  - id: sst
    reader: array.zarr
    paths: $cube
  - id: p90
    operator: array.quantile
    inputs: {x: sst}
    params: {dim: time, q: 0.9}
"""
DASK = """\
import json, sys, time
t0 = time.perf_counter()
import dask
import xarray as xr
dask.config.set(scheduler="threads")
ds = xr.open_zarr(sys.argv[1])
name = list(ds.data_vars)[0]
first = ds[name].quantile(0.9, dim="time").compute()
t1 = time.perf_counter()
again = xr.open_zarr(sys.argv[1])[name].quantile(0.9, dim="time").compute()
t2 = time.perf_counter()
print(json.dumps({"cold_in_process_s": t1 - t0, "warm_s": t2 - t1}))
"""


def _minjiang(env: dict[str, str], *args: str, timeout: float = 900) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "minjiang.core.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"minjiang {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return wall, out.stdout


def _computed(stdout: str, step: str) -> tuple[float, str] | None:
    """(seconds, dataset id) of ``step`` in a run's results table, if it computed."""
    for line in stdout.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line) if c.strip()]
        if len(cells) >= 5 and cells[0] == step and cells[1] == "computed":
            return float(cells[3]), cells[4]
    return None


def _task_timings(store: Path, dataset_id: str) -> dict[str, float]:
    """The step's task timings from its catalog record (read, kernel, write seconds)."""
    from minjiang.storage import Catalog

    timings = Catalog(store).get(dataset_id).timings
    return {k: float(timings[k]) for k in ("read_s", "kernel_s", "write_s") if k in timings}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--years", type=int, default=1, help="years of daily data")
    parser.add_argument("--size", type=int, default=64, help="grid points per side")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of each Ray")
    parser.add_argument(
        "--one-task-runs", type=int, default=3, help="repetitions of the 1-task-step case"
    )
    parser.add_argument(
        "--no-run-service",
        action="store_true",
        help="start the cluster without its run service (each run drives Ray itself)",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    from minjiang.core._demo import make_demo_inputs

    work = Path(tempfile.mkdtemp(prefix="mj-startup-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(MINJIANG_CLUSTER_DIR=str(work / "cluster"), RAY_TMPDIR=str(work / "raytmp"))
    env.pop("MINJIANG_STORE", None)
    cube, _ = make_demo_inputs(work / "data", years=args.years, ny=args.size, nx=args.size)
    pipe = work / "p.yaml"
    pipe.write_text(PIPELINE)
    ingest_only = work / "ingest.yaml"
    ingest_only.write_text(PIPELINE.split("  - id: p90")[0])

    def run(store: str, *extra: str, pipeline: Path = pipe) -> tuple[float, str]:
        return _minjiang(
            env, "run", str(pipeline), "--store", str(work / store), "-i", f"cube={cube}", *extra
        )

    results: dict[str, Any] = {
        "host": {"cpus": os.cpu_count(), "load_average_1min": os.getloadavg()[0]},
        "workload": {"years": args.years, "grid": args.size, "cpus": args.cpus},
        "run_service": not args.no_run_service,
    }
    try:
        wall, _ = _minjiang(env, "version")
        results["cli_version_s"] = wall
        wall, out = run("cold", "--num-cpus", str(args.cpus))
        results["cold_own_ray_s"] = wall
        t0 = time.perf_counter()
        service = ["--no-run-service"] if args.no_run_service else []
        _minjiang(env, "cluster", "start", "--num-cpus", str(args.cpus), *service)
        results["cluster_start_s"] = time.perf_counter() - t0
        results["warm_cluster_first_run_s"], _ = run("warm1")
        results["warm_cluster_again_s"], _ = run("warm2")
        results["every_step_reused_s"], _ = run("warm2")
        steps = []
        for n in range(args.one_task_runs):  # the first may meet workers not yet warm
            store = f"one{n}"
            run(store, pipeline=ingest_only)
            reused, _ = run(store, pipeline=ingest_only)
            wall, out = run(store)
            computed = _computed(out, "p90")
            task = _task_timings(work / store, computed[1]) if computed else {}
            steps.append(
                {
                    "run_s": wall,
                    "every_reused_s": reused,
                    "over_every_reused_s": wall - reused,
                    "step_seconds": computed[0] if computed else None,
                    "task": task,
                    "over_kernel_s": wall - reused - task["kernel_s"] if task else None,
                    "run_over_kernel_s": wall - task["kernel_s"] if task else None,
                }
            )
        results["one_task_step"] = steps
        t0 = time.perf_counter()
        dask_out = subprocess.run(
            [sys.executable, "-c", DASK, str(cube)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        dask_res = json.loads(dask_out.stdout.strip().splitlines()[-1])
        results["xarray_dask_threads"] = {
            "cold_process_s": time.perf_counter() - t0,
            "cold_in_process_s": dask_res["cold_in_process_s"],
            "warm_s": dask_res["warm_s"],
        }
    finally:
        subprocess.run(
            [sys.executable, "-m", "minjiang.core.cli", "cluster", "stop"],
            env=env,
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=1))
    out_path = args.out or REPO / "benchmarks" / "results" / (
        f"startup-{time.strftime('%Y%m%d')}.json"
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"saved {out_path}")
    return results


if __name__ == "__main__":
    main()

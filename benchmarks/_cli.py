"""Command line of the benchmark harness.

::

    python -m benchmarks --suite all --size small          # what `make bench` runs
    python -m benchmarks --suite workloads --size medium --engines minjiang-ray,xarray-dask,io-floor
    python -m benchmarks --size large --workloads w2_mean,w4_gaussian --chunkings pencil
    python -m benchmarks --address ray://head:10001 ...    # minjiang on a Ray cluster
    python -m benchmarks --backend gpu ...                 # minjiang's GPU kernels
    python -m benchmarks report benchmarks/results/NAME.json   # re-render a report
    python -m benchmarks --list                            # workloads, engines, sizes
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
from pathlib import Path

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
DEFAULT_SCALING_WORKLOADS = ("w2_mean", "w4_gaussian")
DEFAULT_SCALING_ENGINES = ("minjiang-ray", "xarray-dask", "io-floor")


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _pick(names: list[str], valid: list[str], what: str) -> list[str]:
    """Resolve names or unique prefixes (``w4`` -> ``w4_gaussian``) against ``valid``."""
    out = []
    for n in names:
        hits = [v for v in valid if v == n] or [v for v in valid if v.startswith(n)]
        if len(hits) != 1:
            raise SystemExit(f"unknown or ambiguous {what} {n!r}; expected one of {valid!r}")
        out.append(hits[0])
    return out


def _parser() -> argparse.ArgumentParser:
    from benchmarks._data import CHUNKINGS, SIZES

    visible = [k for k, s in SIZES.items() if not s.hidden]
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="minjiang benchmarks: workloads on minjiang and its peers against the I/O floor "
        "and the machine's memory bandwidth, in one run.",
    )
    p.add_argument(
        "--suite",
        choices=["all", "workloads", "scaling", "micro"],
        default="all",
        help="what to run (default: all)",
    )
    p.add_argument(
        "--size",
        choices=list(SIZES),
        default="small",
        metavar="{" + ",".join(visible) + "}",
        help="data size: small finishes in minutes on 2 cores; large is bigger than RAM "
        "(default: small)",
    )
    p.add_argument("--name", help="results name (default: SUITE-SIZE-UTCDATE-TIME)")
    p.add_argument("--results", type=Path, default=HERE / "results", help="results folder")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=HERE / "data",
        help="where the generated inputs, outputs and minjiang store live (default: benchmarks/data)",
    )
    p.add_argument("--engines", type=_csv, help="comma-separated engines (default: all)")
    p.add_argument(
        "--workloads", type=_csv, help="comma-separated workloads or prefixes (default: all)"
    )
    p.add_argument(
        "--chunkings", type=_csv, default=list(CHUNKINGS), help="pencil,slab (default: both)"
    )
    p.add_argument("--reps", type=int, help="measured repetitions (default: per size, at least 3)")
    p.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up run")
    p.add_argument(
        "--cores",
        type=int,
        default=len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        help="cores every engine may use (default: all usable)",
    )
    p.add_argument(
        "--memory-budget", default="4GiB", help="minjiang's memory budget and Cubed's allowed_mem"
    )
    p.add_argument(
        "--address",
        default=None,
        help="Ray cluster address for minjiang-ray (default: a local Ray)",
    )
    p.add_argument(
        "--backend",
        choices=["auto", "cpu", "gpu"],
        default="auto",
        help="minjiang's kernel backend",
    )
    p.add_argument(
        "--cubed-executor",
        default="threads",
        choices=["threads", "processes", "ray"],
        help="Cubed's executor (default: threads)",
    )
    p.add_argument(
        "--scaling-factors",
        type=lambda s: [int(x) for x in _csv(s)],
        default=None,
        help="data multiples for the scaling series (default: 1,2,4; 1 for large)",
    )
    p.add_argument("--scaling-workloads", type=_csv, default=list(DEFAULT_SCALING_WORKLOADS))
    p.add_argument("--scaling-engines", type=_csv, default=list(DEFAULT_SCALING_ENGINES))
    p.add_argument(
        "--timeout", type=float, default=None, help="seconds one run may take (default: per size)"
    )
    p.add_argument("--no-plots", action="store_true", help="write the JSON only")
    p.add_argument(
        "--list", action="store_true", help="list workloads, engines and sizes, then exit"
    )
    return p


def _list() -> int:
    from benchmarks._data import SIZES
    from benchmarks._engines import ENGINES
    from benchmarks._workloads import WORKLOADS

    print("workloads:")
    for w in WORKLOADS.values():
        print(
            f"  {w.key:16s} {w.label:4s} {w.pattern:18s} {w.title}  [minjiang: {', '.join(w.operators)}]"
        )
    print("engines:", ", ".join(ENGINES))
    print("sizes:")
    for s in SIZES.values():
        if not s.hidden:
            print(
                f"  {s.name:7s} {s.shape} float32 = {s.nbytes / 1e9:.2f} GB per cube; chunks {dict(s.chunks)}"
            )
    return 0


def _report(argv: list[str]) -> int:
    from benchmarks import _report

    p = argparse.ArgumentParser(
        prog="python -m benchmarks report", description="re-render a report"
    )
    p.add_argument("json", type=Path)
    args = p.parse_args(argv)
    res = json.loads(args.json.read_text())
    res.update(_report.summarise(res))
    for path in _report.render(res, args.json.parent, args.json.stem):
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m benchmarks``."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "report":
        return _report(argv[1:])
    args = _parser().parse_args(argv)
    if args.list:
        return _list()
    from benchmarks._data import SIZES
    from benchmarks._engines import ENGINES
    from benchmarks._runner import Config, run
    from benchmarks._workloads import WORKLOADS

    size = SIZES[args.size]
    workloads = list(WORKLOADS)
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%d-%H%M")
    cfg = Config(
        suite=args.suite,
        size=args.size,
        name=args.name or f"{args.suite}-{args.size}-{stamp}",
        results_dir=args.results.resolve(),
        data_dir=args.data_dir.resolve(),
        engines=_pick(args.engines, list(ENGINES), "engine") if args.engines else list(ENGINES),
        workloads=_pick(args.workloads, workloads, "workload") if args.workloads else workloads,
        chunkings=_pick(args.chunkings, ["pencil", "slab"], "chunking"),
        reps=args.reps if args.reps is not None else size.reps,
        warmup=size.warmup and not args.no_warmup,
        cores=max(1, int(args.cores or 1)),
        memory_budget=args.memory_budget,
        address=args.address,
        backend=args.backend,
        cubed_executor=args.cubed_executor,
        scaling_factors=args.scaling_factors or ([1] if args.size == "large" else [1, 2, 4]),
        scaling_workloads=_pick(args.scaling_workloads, workloads, "workload"),
        scaling_engines=_pick(args.scaling_engines, list(ENGINES), "engine"),
        timeout_s=args.timeout
        or {"tiny": 300.0, "small": 900.0, "medium": 3600.0}.get(args.size, 6 * 3600.0),
        plots=not args.no_plots,
        command=["python", "-m", "benchmarks", *argv],
    )
    run(cfg)
    return 0

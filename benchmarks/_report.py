"""Summaries, the Markdown report and the plots, from the JSON results alone.

``python -m benchmarks report results/<name>.json`` re-renders a report without
re-running anything. Summaries use the measured repetitions only (never the warm-up
run); wall-time ratios are ratios of medians, and an engine whose output did not
match the reference gets no ratio at all.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["best_triad", "render", "summarise"]

FLOOR = "io-floor"
PEER = "xarray-dask"
MAIN = "minjiang-ray"
ENGINE_ORDER = ("io-floor", "minjiang-ray", "minjiang-local", "xarray-dask", "cubed")
_MIB = 2**20
_OVERHEAD_KEYS = ("read_s", "kernel_s", "write_s", "other_task_s", "driver_s", "idle_s")
_OVERHEAD_NAMES = (
    "read+decode",
    "kernel",
    "encode+write",
    "rest of task",
    "driver",
    "scheduling+idle",
)


def _order(name: str) -> tuple[int, str]:
    return (ENGINE_ORDER.index(name) if name in ENGINE_ORDER else len(ENGINE_ORDER), name)


def _wl_order(key: str) -> int:
    from benchmarks._workloads import WORKLOADS

    keys = list(WORKLOADS)
    return keys.index(key) if key in keys else len(keys)


def _median(xs: Iterable[float]) -> float | None:
    xs = list(xs)
    return statistics.median(xs) if xs else None


def best_triad(res: dict[str, Any]) -> float | None:
    """The roofline: the best numba triad of the run (start or end; a busy machine lowers one)."""
    vals = [s.get("numba_triad_gbs") for s in (res.get("stream") or {}).values() if s]
    return max((v for v in vals if v), default=None)


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """Per (suite, data, workload, engine) figures, ratios, scaling and overhead tables."""
    cores = results.get("config", {}).get("cores") or 1
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in results.get("runs", []):
        if r.get("rep") == "warmup" or "wall_s" not in r:
            continue
        groups[(r["suite"], r["data"], r["workload"], r["engine"])].append(r)
    rows: list[dict[str, Any]] = []
    for (suite, data, wl, engine), runs in groups.items():
        walls = [r["wall_s"] for r in runs]
        med = _median(walls)
        valid_flags = [r.get("validation", {}).get("ok") for r in runs]
        valid = None if all(v is None for v in valid_flags) else all(bool(v) for v in valid_flags)
        first = runs[0]
        ib = first["input_bytes"]
        rows.append(
            {
                "suite": suite,
                "data": data,
                "size": first["size"],
                "chunking": first["chunking"],
                "factor": first.get("factor", 1),
                "workload": wl,
                "label": first["label"],
                "engine": engine,
                "n": len(runs),
                "wall_min_s": min(walls),
                "wall_median_s": med,
                "cpu_median_s": _median(r["cpu_seconds"] for r in runs),
                "input_bytes": ib,
                "throughput_gbs": ib / med / 1e9 if med else None,
                "s_per_gb": med / (ib / 1e9) if ib else None,
                "peak_pss_bytes": max(r["peak_pss_bytes"] for r in runs),
                "working_set_bytes": max(
                    r["peak_pss_bytes"] - r["baseline_pss_bytes"] for r in runs
                ),
                "peak_hwm_sum_bytes": max(r["peak_hwm_sum_bytes"] for r in runs),
                "foreign_cores": _median(
                    r["foreign_cpu_seconds"] / max(r["wall_s"], 1e-9) for r in runs
                ),
                "valid": valid,
            }
        )
    by_block: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        by_block[(row["suite"], row["data"], row["workload"])][row["engine"]] = row
    for block in by_block.values():
        floor = block.get(FLOOR)
        peer = block.get(PEER)
        for row in block.values():
            ok = row["valid"] is not False
            row["x_floor"] = row["wall_median_s"] / floor["wall_median_s"] if ok and floor else None
            row["x_xarray"] = (
                row["wall_median_s"] / peer["wall_median_s"]
                if ok and peer and peer["valid"]
                else None
            )
    rows.sort(
        key=lambda r: (
            r["suite"],
            r["factor"],
            r["chunking"],
            _wl_order(r["workload"]),
            r["data"],
            _order(r["engine"]),
        )
    )
    overhead = _overhead(results, cores)
    return {
        "summary": rows,
        "headline": _headline(by_block),
        "scaling": [r for r in rows if r["suite"] == "scaling"],
        "overhead": overhead,
        "io_price": _io_price(results, overhead),
    }


def _headline(
    by_block: dict[tuple[str, str, str], dict[str, dict[str, Any]]],
) -> list[dict[str, Any]]:
    out = []
    for (suite, data, wl), block in sorted(
        by_block.items(), key=lambda kv: (kv[0][1], _wl_order(kv[0][2]))
    ):
        if suite != "workloads":
            continue
        any_row = next(iter(block.values()))
        row: dict[str, Any] = {
            "data": data,
            "chunking": any_row["chunking"],
            "workload": wl,
            "label": any_row["label"],
        }
        for engine, r in block.items():
            row[engine] = r["wall_median_s"] if r["valid"] is not False else None
            row[f"{engine}_valid"] = r["valid"]
        for engine in (MAIN, "minjiang-local"):
            r = block.get(engine)
            row[f"{engine}_x_xarray"] = r["x_xarray"] if r else None
            row[f"{engine}_x_floor"] = r["x_floor"] if r else None
        p = block.get(PEER)
        row["xarray_x_floor"] = p["x_floor"] if p else None
        out.append(row)
    return out


_CPU_KEYS = ("read_cpu_s", "kernel_cpu_s", "write_cpu_s", "summary_cpu_s")
#: Outputs smaller than this fraction of the input get no encode + write price per GB.
WRITE_PRICED_FRACTION = 0.05


def _per_gb(seconds: Any, nbytes: Any) -> float | None:
    if seconds is None or not nbytes:
        return None
    return float(seconds) / (nbytes / 1e9)


def _step_io(st: dict[str, Any]) -> dict[str, Any]:
    """One step's I/O figures: decode amplification and CPU seconds per GB, per stage."""
    return {
        "operator": st.get("operator"),
        "decode_amplification": st.get("decode_amplification"),
        "stages": {
            name: {
                "tasks": g.get("tasks"),
                "bytes_read": g.get("bytes_read"),
                "bytes_written": g.get("bytes_written"),
                "decode_amplification": g["bytes_decoded"] / g["bytes_read"]
                if g.get("bytes_read")
                else None,
                "read_cpu_s_per_gb": _per_gb(g.get("read_cpu_s"), g.get("bytes_read")),
                "write_cpu_s_per_gb": _per_gb(g.get("write_cpu_s"), g.get("bytes_written")),
            }
            for name, g in (st.get("by_stage") or {}).items()
        },
    }


def _io_price(results: dict[str, Any], overhead: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """minjiang's read+decode and encode+write CPU seconds per GB against the floor's.

    The floor's price is its calibration (:func:`benchmarks._engines.io_price`, one
    thread, read and write clocked apart), and, as a check, its measured runs' whole
    CPU over the bytes they decoded and encoded. minjiang's read price is per GB its
    tasks needed (a halo's whole decoded neighbours count against it) and per GB
    decoded; its write price excludes the data-quality summary, listed apart.
    """
    floors: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in results.get("runs", []):
        if r.get("engine") == FLOOR and r.get("rep") != "warmup" and "wall_s" in r:
            floors[(r["suite"], r["data"], r["workload"])].append(r)
    out = []
    for o in overhead:
        runs = floors.get((o["suite"], o["data"], o["workload"]), [])
        price = next(
            (r["details"]["io_price"] for r in runs if (r.get("details") or {}).get("io_price")),
            None,
        )
        whole = [
            r["cpu_seconds"]
            / ((r["details"].get("bytes_decoded", 0) + r["details"].get("bytes_written", 0)) / 1e9)
            for r in runs
            if (r.get("details") or {}).get("bytes_written") is not None
        ]
        read_gb = _per_gb(o.get("read_cpu_s"), o.get("bytes_read"))
        # a reduction or a table writes a few kB: its write phase is a per-task fixed
        # cost (opening the array, the table part), which a price per GB misreads
        small_out = (o.get("bytes_written") or 0) < WRITE_PRICED_FRACTION * (
            o.get("bytes_read") or 0
        )
        write_gb = None if small_out else _per_gb(o.get("write_cpu_s"), o.get("bytes_written"))
        io_cpu = (o.get("read_cpu_s") or 0.0) + (o.get("write_cpu_s") or 0.0)
        row = {
            "suite": o["suite"],
            "data": o["data"],
            "workload": o["workload"],
            "engine": o["engine"],
            "decode_amplification": o.get("decode_amplification"),
            "read_cpu_s_per_gb": read_gb,
            "read_cpu_s_per_gb_decoded": _per_gb(o.get("read_cpu_s"), o.get("bytes_decoded")),
            "write_cpu_s_per_gb": write_gb,
            "summary_cpu_s_per_gb": None
            if small_out
            else _per_gb(o.get("summary_cpu_s"), o.get("bytes_written")),
            "write_cpu_s": o.get("write_cpu_s"),
            "io_cpu_s_per_gb": _per_gb(
                io_cpu, (o.get("bytes_read") or 0) + (o.get("bytes_written") or 0)
            )
            if o.get("read_cpu_s") is not None
            else None,
            "floor_read_cpu_s_per_gb": price.get("read_cpu_s_per_gb") if price else None,
            "floor_write_cpu_s_per_gb": price.get("write_cpu_s_per_gb") if price else None,
            "floor_run_cpu_s_per_gb": _median(whole),
        }
        fr, fw = row["floor_read_cpu_s_per_gb"], row["floor_write_cpu_s_per_gb"]
        row["read_x_floor"] = read_gb / fr if read_gb is not None and fr else None
        row["write_x_floor"] = write_gb / fw if write_gb is not None and fw else None
        out.append(row)
    return out


def _overhead(results: dict[str, Any], cores: int) -> list[dict[str, Any]]:
    """Where minjiang's time goes, from the runtime's own task events (median run)."""
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in results.get("runs", []):
        ev = (r.get("details") or {}).get("events")
        if r.get("rep") == "warmup" or not ev or "wall_s" not in r:
            continue
        groups[(r["suite"], r["data"], r["workload"], r["engine"])].append(r)
    out = []
    for (suite, data, wl, engine), runs in sorted(
        groups.items(), key=lambda kv: (kv[0][0], kv[0][1], _wl_order(kv[0][2]), _order(kv[0][3]))
    ):
        runs.sort(key=lambda r: r["wall_s"])
        r = runs[len(runs) // 2]
        ev = r["details"]["events"]
        workers = ev.get("workers") or 1
        capacity = r["wall_s"] * workers
        parts = {
            k: float(ev.get(k, 0.0)) for k in ("read_s", "kernel_s", "write_s", "other_task_s")
        }
        busy = float(ev.get("task_s", sum(parts.values())))
        # while the driver plans and commits, every worker waits
        parts["driver_s"] = min(float(ev.get("driver_s", 0.0)) * workers, max(capacity - busy, 0.0))
        parts["idle_s"] = max(capacity - busy - parts["driver_s"], 0.0)
        out.append(
            {
                "suite": suite,
                "data": data,
                "workload": wl,
                "engine": engine,
                "wall_s": r["wall_s"],
                "workers": workers,
                "tasks": ev.get("tasks"),
                "steps": ev.get("steps"),
                "mean_task_s": busy / ev["tasks"] if ev.get("tasks") else None,
                "bytes_read": ev.get("bytes_read"),
                "bytes_written": ev.get("bytes_written"),
                "bytes_decoded": ev.get("bytes_decoded"),
                "decode_amplification": ev.get("decode_amplification"),
                **{k: ev.get(k) for k in _CPU_KEYS},
                "steps_io": [_step_io(st) for st in ev.get("per_step") or []],
                **parts,
                "fractions": {k: v / capacity for k, v in parts.items()} if capacity else {},
            }
        )
    return out


# --------------------------------------------------------------------------- markdown


def _fmt(x: Any, spec: str = ".3g") -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "**NO**"
    if isinstance(x, float):
        return format(x, spec)
    return str(x)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += [
        "| " + " | ".join(_fmt(c) if not isinstance(c, str) else c for c in row) + " |"
        for row in rows
    ]
    return lines


def _machine_lines(res: dict[str, Any]) -> list[str]:
    m = res.get("machine", {})
    v = res.get("versions", {})
    s = res.get("stream", {})
    lines = [
        f"- **Run** `{res.get('name')}` from {res.get('started_utc')} to {res.get('finished_utc', '?')}; "
        f"command `{' '.join(res.get('command') or [])}`",
        f"- **Machine**: {m.get('cpu_model')}, {m.get('logical_cores')} logical cores "
        f"({m.get('usable_cores')} usable), {m.get('ram_bytes', 0) / 2**30:.1f} GiB RAM, caches "
        f"{m.get('caches')}, {m.get('os')}; data on {m.get('data_filesystem', '?')}; load average at start "
        f"{m.get('load_average_at_start')}, at end {m.get('load_average_at_end')}",
        "- **Versions**: " + ", ".join(f"{k} {val}" for k, val in v.items() if val),
        f"- **Commit**: {res.get('git', {}).get('commit')} (dirty: {res.get('git', {}).get('dirty')})",
        f"- **Codec**: {res.get('codec', {}).get('source')}",
    ]
    for when in ("start", "end"):
        st = s.get(when)
        if st:
            copy_key = f"numba_copy_{st['numba_triad_threads']}t_gbs"
            lines.append(
                f"- **Memory bandwidth ({when})**: numba triad {st['numba_triad_gbs']:.1f} GB/s on "
                f"{st['numba_triad_threads']} threads ({st.get('numba_triad_1t_gbs', 0):.1f} GB/s on 1), "
                f"numba copy {st.get(copy_key, 0):.1f} GB/s, "
                f"NumPy copy {st['numpy_copy_gbs']:.1f} GB/s, NumPy triad (2 passes) "
                f"{st['numpy_triad_2pass_gbs']:.1f} GB/s; {st['array_bytes'] / 2**20:.0f} MiB arrays"
            )
    return lines


def markdown(res: dict[str, Any], plots: list[Path]) -> str:
    """The report as Markdown."""
    out = [f"# minjiang benchmarks: `{res.get('name')}`", ""]
    out += _machine_lines(res)
    out += ["", "## Data", ""]
    rows = []
    for tag, d in res.get("data", {}).items():
        for name, a in d.get("arrays", {}).items():
            rows.append(
                [
                    tag,
                    name,
                    "×".join(map(str, a["shape"])),
                    "×".join(map(str, a["chunks"])),
                    a["dtype"],
                    a["logical_bytes"] / 1e6,
                    a["compression_ratio"],
                ]
            )
    out += _table(
        ["data", "array", "shape", "chunks", "dtype", "MB (decoded)", "decoded/stored"], rows
    )
    head = res.get("headline", [])
    if head:
        out += ["", "## Headline (median wall seconds; ratios of medians)", ""]
        rows = [
            [
                h["label"],
                h["chunking"],
                h.get(FLOOR),
                h.get(PEER),
                h.get(MAIN),
                h.get("minjiang-local"),
                h.get("cubed"),
                h.get(f"{MAIN}_x_floor"),
                h.get(f"{MAIN}_x_xarray"),
                h.get("xarray_x_floor"),
            ]
            for h in head
        ]
        out += _table(
            [
                "workload",
                "chunking",
                "I/O floor",
                "xarray+dask",
                "minjiang (Ray)",
                "minjiang (local)",
                "Cubed",
                "minjiang ÷ floor",
                "minjiang ÷ xarray",
                "xarray ÷ floor",
            ],
            rows,
        )
    summ = [r for r in res.get("summary", []) if r["suite"] == "workloads"]
    if summ:
        out += [
            "",
            "## All figures",
            "",
            "Wall time min/median of the measured repetitions; GB/s of decoded input at the median; CPU "
            "seconds of the engine's whole process tree; peak PSS of that tree (and above its idle "
            "baseline); 'other load' is CPU used by processes outside the benchmark, in cores.",
            "",
        ]
        rows = [
            [
                r["label"],
                r["chunking"],
                r["engine"],
                r["n"],
                r["wall_min_s"],
                r["wall_median_s"],
                r["throughput_gbs"],
                r["cpu_median_s"],
                r["peak_pss_bytes"] / _MIB,
                r["working_set_bytes"] / _MIB,
                r["valid"] if r["valid"] is not None else "(floor)",
                r["x_floor"],
                r["x_xarray"],
                r["foreign_cores"],
            ]
            for r in summ
        ]
        out += _table(
            [
                "wl",
                "chunking",
                "engine",
                "n",
                "min s",
                "median s",
                "GB/s",
                "CPU s",
                "peak MiB",
                "above idle MiB",
                "valid",
                "× floor",
                "× xarray",
                "other load",
            ],
            rows,
        )
    scal = res.get("scaling", [])
    if scal:
        out += ["", "## Scaling", ""]
        rows = [
            [
                r["label"],
                r["chunking"],
                r["factor"],
                r["engine"],
                r["input_bytes"] / 1e9,
                r["wall_median_s"],
                r["s_per_gb"],
                r["peak_pss_bytes"] / _MIB,
                r["working_set_bytes"] / _MIB,
                r["valid"] if r["valid"] is not None else "(floor)",
            ]
            for r in scal
        ]
        out += _table(
            [
                "wl",
                "chunking",
                "×",
                "engine",
                "input GB",
                "median s",
                "s per GB",
                "peak MiB",
                "above idle MiB",
                "valid",
            ],
            rows,
        )
    ovh = res.get("overhead", [])
    if ovh:
        out += [
            "",
            "## Where minjiang's time goes (runtime task events, median run)",
            "",
            "Shares of wall time × workers (Ray: one per core; local: one): reading and decoding, "
            "kernel, encoding and writing, the rest of a task (opening arrays, checksums, the task "
            "manifest), the driver planning and committing (workers wait), and the rest: scheduling, "
            "task start-up, and workers idle for lack of tasks.",
            "",
        ]
        rows = []
        for o in ovh:
            f = o.get("fractions", {})
            rows.append(
                [
                    o["workload"],
                    o["data"],
                    o["engine"],
                    o["tasks"],
                    o["mean_task_s"],
                    *(f"{100 * f.get(k, 0):.0f}%" for k in _OVERHEAD_KEYS),
                ]
            )
        out += _table(
            ["workload", "data", "engine", "tasks", "mean task s", *_OVERHEAD_NAMES], rows
        )
    price = res.get("io_price", [])
    if price:
        out += [
            "",
            "## The I/O path against the floor's price (CPU seconds per GB)",
            "",
            "CPU seconds of the tasks' processes (all threads) in reading + decoding, per GB the "
            "tasks needed (and per GB decoded), and in encoding + writing per GB written, against "
            "the I/O floor's calibrated price for the same data (one thread, each half clocked "
            "apart). 'summary' is the data-quality summary of each block written, a part of the "
            "write phase kept apart here. Decode amplification: bytes decoded ÷ bytes needed. "
            "Steps whose output is under 5 % of their input (reductions, tables) get no write "
            "price per GB: their write phase is a per-task fixed cost.",
            "",
        ]
        rows = [
            [
                p["workload"],
                p["data"],
                p["engine"],
                p["decode_amplification"],
                p["read_cpu_s_per_gb"],
                p["read_cpu_s_per_gb_decoded"],
                p["floor_read_cpu_s_per_gb"],
                p["read_x_floor"],
                p["write_cpu_s_per_gb"],
                p["floor_write_cpu_s_per_gb"],
                p["write_x_floor"],
                p["summary_cpu_s_per_gb"],
                p["floor_run_cpu_s_per_gb"],
            ]
            for p in price
        ]
        out += _table(
            [
                "workload",
                "data",
                "engine",
                "decode ampl.",
                "read s/GB",
                "read s/GB decoded",
                "floor read s/GB",
                "read ÷ floor",
                "write s/GB",
                "floor write s/GB",
                "write ÷ floor",
                "summary s/GB",
                "floor run s/GB (r+w)",
            ],
            rows,
        )
        steps = [
            [
                p_o["workload"],
                p_o["data"],
                p_o["engine"],
                st["operator"],
                stage,
                g["tasks"],
                g["decode_amplification"],
                g["read_cpu_s_per_gb"],
                g["write_cpu_s_per_gb"],
            ]
            for p_o in res.get("overhead", [])
            for st in p_o.get("steps_io") or []
            for stage, g in st["stages"].items()
        ]
        if steps:
            out += ["", "Per step and stage:", ""]
            out += _table(
                [
                    "workload",
                    "data",
                    "engine",
                    "operator",
                    "stage",
                    "tasks",
                    "decode ampl.",
                    "read s/GB",
                    "write s/GB",
                ],
                steps,
            )
    kern = res.get("kernels", [])
    if kern:
        triad = best_triad(res)
        out += ["", "## Kernels in memory (vs the same run's best numba triad)", ""]
        rows = [
            [
                k["kernel"],
                "×".join(map(str, k["shape"])),
                k.get("gbs"),
                k.get("moved_gbs"),
                (k["moved_gbs"] / triad) if k.get("moved_gbs") and triad else None,
                "" if k.get("ok") else k.get("error", "")[:120],
            ]
            for k in kern
        ]
        out += _table(
            ["kernel", "block", "input GB/s", "moved GB/s", "moved ÷ triad", "note"], rows
        )
    skipped = res.get("skipped", [])
    if skipped:
        out += ["", "## Not run", ""]
        seen = set()
        for s in skipped:
            key = (s["workload"], s["engine"], s["reason"])
            if key not in seen:
                seen.add(key)
                out.append(f"- {s['engine']} × {s['workload']}: {s['reason']}")
    failures = [r for r in res.get("runs", []) if not r.get("ok")]
    if failures:
        out += ["", "## Failures", ""]
        for r in failures:
            out.append(
                f"- {r['engine']} × {r['workload']} [{r['data']}] rep {r['rep']}: "
                f"{(r.get('error') or '')[:300]}"
            )
    if plots:
        out += ["", "## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- plots


def _plots(res: dict[str, Any], out_dir: Path, name: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []
    summ = [r for r in res.get("summary", []) if r["suite"] == "workloads"]
    if summ:
        blocks = list(dict.fromkeys((r["label"], r["chunking"]) for r in summ))
        engines = sorted({r["engine"] for r in summ}, key=_order)
        fig, axes = plt.subplots(
            2, 1, figsize=(max(8, 1.1 * len(blocks) + 3), 8), constrained_layout=True
        )
        width = 0.8 / max(1, len(engines))
        for i, eng in enumerate(engines):
            xs, walls, ratios, mems = [], [], [], []
            for j, (lab, ch) in enumerate(blocks):
                r = next(
                    (
                        r
                        for r in summ
                        if r["label"] == lab and r["chunking"] == ch and r["engine"] == eng
                    ),
                    None,
                )
                if r is None:
                    continue
                xs.append(j + (i - (len(engines) - 1) / 2) * width)
                walls.append(r["x_floor"] if r["x_floor"] is not None else float("nan"))
                ratios.append(r)
                mems.append(r["peak_pss_bytes"] / _MIB)
            axes[0].bar(xs, walls, width, label=eng)
            axes[1].bar(xs, mems, width, label=eng)
        labels = [f"{lab}\n{ch}" for lab, ch in blocks]
        for ax in axes:
            ax.set_xticks(range(len(blocks)), labels)
        axes[0].axhline(1.0, color="k", lw=0.8)
        axes[0].axhline(1.5, color="k", lw=0.8, ls=":")
        axes[0].set_yscale("log")
        axes[0].set_ylabel("median wall time ÷ I/O floor")
        axes[0].set_title(f"{name}: wall time relative to the I/O floor (dotted: 1.5×)")
        axes[0].legend(ncols=min(5, len(engines)), fontsize="small")
        axes[1].set_ylabel("peak PSS of the process tree (MiB)")
        axes[1].set_title("peak memory (engine process + all its children)")
        p = out_dir / f"{name}-time-memory.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)
    scal = res.get("scaling", [])
    if scal:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
        for key in sorted(
            {(r["label"], r["engine"]) for r in scal}, key=lambda k: (k[0], _order(k[1]))
        ):
            rs = sorted(
                (r for r in scal if (r["label"], r["engine"]) == key),
                key=lambda r: r["input_bytes"],
            )
            gb = [r["input_bytes"] / 1e9 for r in rs]
            axes[0].plot(gb, [r["s_per_gb"] for r in rs], "o-", label=f"{key[0]} {key[1]}")
            axes[1].plot(
                gb, [r["peak_pss_bytes"] / _MIB for r in rs], "o-", label=f"{key[0]} {key[1]}"
            )
        axes[0].set_xlabel("input GB")
        axes[0].set_ylabel("seconds per GB of input")
        axes[1].set_xlabel("input GB")
        axes[1].set_ylabel("peak PSS (MiB)")
        axes[0].set_title("time per GB at 1×, 2×, 4× data")
        axes[1].set_title("peak memory at 1×, 2×, 4× data")
        axes[1].legend(fontsize="small")
        p = out_dir / f"{name}-scaling.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)
    ovh = [o for o in res.get("overhead", []) if o["suite"] == "workloads"]
    if ovh:
        keys, names = _OVERHEAD_KEYS, _OVERHEAD_NAMES
        fig, ax = plt.subplots(figsize=(max(8, 0.8 * len(ovh) + 3), 4.5), constrained_layout=True)
        bottom = [0.0] * len(ovh)
        for k, lab in zip(keys, names, strict=True):
            vals = [100 * o["fractions"].get(k, 0.0) for o in ovh]
            ax.bar(range(len(ovh)), vals, bottom=bottom, label=lab)
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
        ax.set_xticks(
            range(len(ovh)),
            [f"{o['workload']}\n{o['data']}\n{o['engine']}" for o in ovh],
            fontsize="x-small",
        )
        ax.set_ylabel("% of wall time × workers")
        ax.set_title("minjiang: where task time goes")
        ax.legend(fontsize="small", ncols=6)
        p = out_dir / f"{name}-overhead.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)
    kern = [k for k in res.get("kernels", []) if k.get("ok")]
    triad = best_triad(res)
    if kern:
        fig, ax = plt.subplots(figsize=(8, 4), constrained_layout=True)
        ax.barh([k["kernel"] for k in kern], [k["gbs"] for k in kern])
        if triad:
            ax.axvline(triad, color="k", ls="--", label=f"numba triad {triad:.1f} GB/s")
            ax.legend()
        ax.set_xlabel("GB/s of input, in memory")
        ax.set_title("numba kernels against the memory-bandwidth roofline")
        p = out_dir / f"{name}-kernels.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)
    return written


def render(res: dict[str, Any], out_dir: Path, name: str) -> list[Path]:
    """Write ``<name>.md`` and the PNG plots beside the JSON; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = _plots(res, out_dir, name)
    md = out_dir / f"{name}.md"
    md.write_text(markdown(res, plots), encoding="utf-8")
    return [md, *plots]

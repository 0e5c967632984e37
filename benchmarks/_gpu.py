"""GPU check: kernels on CuPy vs numba (CPU) vs NumPy, device bandwidth, Zarr -> GPU -> Zarr.

``python -m benchmarks._gpu [--out DIR] [--dry-run] [--part PART] [--only NAME ...]``

One run measures, on the same machine and the same data:

1. **Device memory bandwidth** (the roofline): a CuPy device-to-device copy and a
   STREAM triad ``a = b + s * c``, best of several runs timed with CUDA events.
2. **Kernels**, one chunk-sized block each: the minjiang GPU path (CuPy arrays through
   the public wrapper), the numba CPU path and the NumPy reference, plus the CuPy or
   cupyx alternative where one exists (``cupyx.scipy.ndimage`` filters, CuPy's NaN
   reductions, ``cupy.quantile``, ``cupy.histogram``, an unfused CuPy ufunc chain
   for band math). GPU times are device times (CUDA events, median of repeats after a
   warm-up run that compiles); host-to-device and device-to-host copies of the block
   are timed separately, as a task pays them once. Each row gives the bytes a kernel
   must move (inputs read once, outputs written once), the resulting GB/s and its
   fraction of the measured triad bandwidth, and the largest difference from the CPU
   result.
3. **End to end**: a generated cube ingested into a fresh store and
   ``array.gaussian`` and ``array.band_math`` run through
   ``minjiang.Runtime(executor="local", backend=...)`` on ``gpu`` (once per
   ``gpu_read``: ``pinned`` and ``zarr``) and on ``cpu``, reading and writing Zarr; the
   catalog record's timings are kept. Before the GPU runs, the whole cube is read onto
   the device the way GPU tasks read (``zarr_to_device``), against the host decode
   alone and a pageable copy: which way of reading is faster. GPU kernel launches
   are asynchronous, so a task's device time shows up in its ``write_s`` (the copy back
   waits for the kernel), not in ``kernel_s``.

Everything is written to ``DIR/gpu-<part>.json`` (``--part``: ``kernels``,
``end-to-end`` or ``all``; ``DIR`` is ``--out``, default ``$OUT``, else ``./gpu-results``)
and printed. ``--dry-run`` runs every part that needs no CuPy (NumPy
and numba paths on small blocks, the end-to-end run on ``cpu``) so that this script can
be smoke-tested on any machine; it never reports GPU figures.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

_GPU_REPEATS = 10
_CPU_REPEATS = 3


@dataclasses.dataclass
class Variant:
    """One implementation of a kernel: where it runs and how to call it."""

    name: str
    device: str  # "gpu" or "cpu"
    run: Callable[[dict[str, Any]], Any]
    reference: bool = False  # the NumPy specification (timed once: it is slow)


@dataclasses.dataclass
class Case:
    """A kernel on one block: data, bytes it must move, implementations."""

    name: str
    make: Callable[[np.random.Generator, bool], dict[str, np.ndarray]]
    out_bytes: Callable[[dict[str, np.ndarray]], int]
    variants: list[Variant]
    note: str = ""
    host_keys: tuple[str, ...] = ()  # metadata that stays on the host (group ids)


# ------------------------------------------------------------------ helpers


def _cupy() -> Any:
    import cupy

    return cupy


def _to_device(arrays: dict[str, np.ndarray], host_keys: tuple[str, ...] = ()) -> dict[str, Any]:
    cp = _cupy()
    return {
        k: cp.asarray(v) if isinstance(v, np.ndarray) and k not in host_keys else v
        for k, v in arrays.items()
    }


def _to_host(x: Any) -> Any:
    if type(x).__module__.split(".", 1)[0] == "cupy":
        return x.get()
    if isinstance(x, dict):
        return {k: _to_host(v) for k, v in x.items()}
    if isinstance(x, tuple):
        return tuple(_to_host(v) for v in x)
    return x


def _nbytes(x: Any) -> int:
    if isinstance(x, dict):
        return sum(_nbytes(v) for v in x.values())
    if isinstance(x, tuple | list):
        return sum(_nbytes(v) for v in x)
    return int(getattr(x, "nbytes", 0))


def _gpu_time(fn: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    """Device seconds of ``fn`` (CUDA events), after one untimed warm-up run."""
    cp = _cupy()
    result = fn()
    cp.cuda.get_current_stream().synchronize()
    times = []
    for _ in range(repeats):
        start, stop = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        result = fn()
        stop.record()
        stop.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, stop) / 1e3)
    return times, result


def _cpu_time(fn: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    result = fn()  # warm-up: numba compiles (or loads its cache)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times, result


def _max_difference(a: Any, b: Any) -> float | None:
    """Largest |a - b| relative to max(1, |b|) over finite values; None if not comparable."""
    a, b = _to_host(a), _to_host(b)
    if isinstance(a, dict) and isinstance(b, dict):
        diffs = [_max_difference(a[k], b[k]) for k in b if k in a]
        diffs = [d for d in diffs if d is not None]
        return max(diffs) if diffs else None
    if isinstance(a, tuple) and isinstance(b, tuple):
        return _max_difference(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return None
    both = np.isfinite(a) & np.isfinite(b)
    if (np.isfinite(a) != np.isfinite(b)).any():
        return float("inf")
    if not both.any():
        return 0.0
    scale = max(1.0, float(np.abs(b[both]).max()))
    return float(np.abs(a[both] - b[both]).max() / scale)


# ------------------------------------------------------------------ the cases


def _sized(full: tuple[int, ...], small: tuple[int, ...], dry: bool) -> tuple[int, ...]:
    return small if dry else full


def _cases() -> list[Case]:
    from minjiang.kernels import (
        bandmath,
        gaussian,
        groupby,
        histogram,
        labelstats,
        median,
        reductions,
    )

    cases: list[Case] = []

    # band math: EVI over three float32 bands
    evi = "2.5 * (a - b) / (a + 6 * b - 7.5 * c + 1)"
    expr = bandmath.compile_expression(evi, ["a", "b", "c"])

    def make_bands(rng: np.random.Generator, dry: bool) -> dict[str, np.ndarray]:
        shape = _sized((4096, 4096), (64, 64), dry)
        return {k: rng.uniform(0.01, 1.0, shape).astype(np.float32) for k in "abc"}

    def ufunc_chain(d: dict[str, Any]) -> Any:
        from minjiang.kernels.bandmath import _reference

        # NumPy's ufuncs dispatch to CuPy for CuPy arrays: one kernel and one
        # temporary per operation, the unfused alternative
        return _reference._eval(expr.tree, [d[n] for n in expr.names], np.float32)

    cases.append(
        Case(
            "band_math (EVI, 3 x float32)",
            make_bands,
            lambda d: d["a"].nbytes,
            [
                Variant("gpu", "gpu", lambda d: bandmath.band_math(expr, d)),
                Variant("gpu: CuPy ufunc chain", "gpu", ufunc_chain),
                Variant("cpu", "cpu", lambda d: bandmath.band_math(expr, d, backend="cpu")),
                Variant(
                    "reference",
                    "cpu",
                    lambda d: bandmath.band_math(expr, d, backend="reference"),
                    True,
                ),
            ],
        )
    )

    # gaussian: a block padded by its halo, sigma 2 on every axis
    sigma = 2.0
    radius = gaussian.gaussian_radius(sigma)

    def make_cube(rng: np.random.Generator, dry: bool) -> dict[str, np.ndarray]:
        shape = _sized((32, 512, 512), (6, 20, 24), dry)
        x = rng.standard_normal(shape).astype(np.float32)
        return {"x": gaussian.pad_boundary(x, radius, "reflect")}

    def cupyx_gaussian(d: dict[str, Any]) -> Any:
        from cupyx.scipy import ndimage

        return ndimage.gaussian_filter(d["x"], sigma, mode="reflect")  # whole padded block

    cases.append(
        Case(
            "gaussian_valid (sigma 2, float32)",
            make_cube,
            lambda d: int(np.prod([n - 2 * radius for n in d["x"].shape])) * 4,
            [
                Variant("gpu", "gpu", lambda d: gaussian.gaussian_valid(d["x"], sigma)),
                Variant("gpu: cupyx.scipy.ndimage.gaussian_filter", "gpu", cupyx_gaussian),
                Variant(
                    "cpu", "cpu", lambda d: gaussian.gaussian_valid(d["x"], sigma, backend="cpu")
                ),
                Variant(
                    "reference",
                    "cpu",
                    lambda d: gaussian.gaussian_valid(d["x"], sigma, backend="reference"),
                    True,
                ),
            ],
            note="cupyx filters the whole padded block (its output includes the halo)",
        )
    )

    # moments: over the leading axis (many outputs) and over the trailing axes
    def make_nan_cube(rng: np.random.Generator, dry: bool) -> dict[str, np.ndarray]:
        shape = _sized((32, 512, 512), (8, 24, 32), dry)
        x = rng.standard_normal(shape).astype(np.float32)
        x[rng.random(shape) < 0.05] = np.nan
        return {"x": x}

    def cupy_nan_moments(axes: tuple[int, ...]) -> Callable[[dict[str, Any]], Any]:
        def run(d: dict[str, Any]) -> Any:
            cp = _cupy()
            x = d["x"]
            return {
                "count": (~cp.isnan(x)).sum(axis=axes),
                "mean": cp.nanmean(x, axis=axes, dtype=np.float64),
                "var": cp.nanvar(x, axis=axes, dtype=np.float64),
                "min": cp.nanmin(x, axis=axes),
                "max": cp.nanmax(x, axis=axes),
            }

        return run

    for axes, label in (((0,), "over time"), ((1, 2), "over space")):
        cases.append(
            Case(
                f"moments_partial ({label}, float32)",
                make_nan_cube,
                lambda d, axes=axes: 5 * 8 * int(np.prod(np.delete(d["x"].shape, axes))),
                [
                    Variant(
                        "gpu", "gpu", lambda d, axes=axes: reductions.moments_partial(d["x"], axes)
                    ),
                    Variant("gpu: CuPy nan-reductions", "gpu", cupy_nan_moments(axes)),
                    Variant(
                        "cpu",
                        "cpu",
                        lambda d, axes=axes: reductions.moments_partial(
                            d["x"], axes, backend="cpu"
                        ),
                    ),
                    Variant(
                        "reference",
                        "cpu",
                        lambda d, axes=axes: reductions.moments_partial(
                            d["x"], axes, backend="reference"
                        ),
                        True,
                    ),
                ],
                note="the GPU state is returned on the host (its copy is in the GPU time)",
            )
        )

    # quantiles along time
    qs = [0.1, 0.5, 0.9]

    def make_series(rng: np.random.Generator, dry: bool) -> dict[str, np.ndarray]:
        shape = _sized((64, 256, 256), (16, 12, 10), dry)
        x = rng.standard_normal(shape).astype(np.float32)
        x[rng.random(shape) < 0.05] = np.nan
        return {"x": x}

    def cupy_quantile(d: dict[str, Any]) -> Any:
        # CuPy has no nanquantile: its quantile sorts the same lines but does not skip NaN
        return _cupy().quantile(d["x"].astype(np.float64), qs, axis=0)

    cases.append(
        Case(
            "nanquantile (3 q along time, float32)",
            make_series,
            lambda d: len(qs) * int(np.prod(d["x"].shape[1:])) * 4,
            [
                Variant("gpu", "gpu", lambda d: reductions.nanquantile(d["x"], qs, 0)),
                Variant("gpu: cupy.quantile (NaN not skipped)", "gpu", cupy_quantile),
                Variant(
                    "cpu", "cpu", lambda d: reductions.nanquantile(d["x"], qs, 0, backend="cpu")
                ),
                Variant(
                    "reference",
                    "cpu",
                    lambda d: reductions.nanquantile(d["x"], qs, 0, backend="reference"),
                    True,
                ),
            ],
        )
    )

    # label statistics: few labels (shared-memory atomics) and many (global atomics)
    def _label_stats_global_atomics(d: dict[str, Any]) -> Any:
        from minjiang.kernels.labelstats import _gpu

        return _gpu.label_stats_partial(d["values"], d["labels"], 0, shared=False)

    for n_labels in (6, 5000):

        def make_labels(rng: np.random.Generator, dry: bool, n_labels: int = n_labels) -> dict:
            shape = _sized((32, 512, 512), (8, 24, 32), dry)
            values = rng.standard_normal(shape).astype(np.float32)
            values[rng.random(shape) < 0.02] = np.nan
            return {"values": values, "labels": rng.integers(0, n_labels, shape).astype(np.int32)}

        cases.append(
            Case(
                f"label_stats_partial ({n_labels} labels, float32 + int32)",
                make_labels,
                lambda d, n_labels=n_labels: 6 * 8 * n_labels,
                [
                    Variant(
                        "gpu",
                        "gpu",
                        lambda d: labelstats.label_stats_partial(d["values"], d["labels"]),
                    ),
                    Variant("gpu: global atomics only", "gpu", _label_stats_global_atomics),
                    Variant(
                        "cpu",
                        "cpu",
                        lambda d: labelstats.label_stats_partial(
                            d["values"], d["labels"], backend="cpu"
                        ),
                    ),
                    Variant(
                        "reference",
                        "cpu",
                        lambda d: labelstats.label_stats_partial(
                            d["values"], d["labels"], backend="reference"
                        ),
                        True,
                    ),
                ],
                note="the GPU state is returned on the host (its copy is in the GPU time)",
            )
        )

    # day-of-year climatology and anomaly
    def make_year(rng: np.random.Generator, dry: bool) -> dict[str, np.ndarray]:
        shape = _sized((365, 128, 128), (365, 4, 5), dry)
        x = rng.standard_normal(shape).astype(np.float32)
        x[rng.random(shape) < 0.05] = np.nan
        table = rng.standard_normal((366, *shape[1:]))
        return {"x": x, "groups": np.arange(shape[0]) % 366, "table": table}

    def cupy_group_mean(d: dict[str, Any]) -> Any:
        cp = _cupy()
        groups = np.asarray(d["groups"])
        out = cp.full((366, *d["x"].shape[1:]), np.nan)
        for g in np.unique(groups):  # one masked mean per group
            out[g] = cp.nanmean(d["x"][cp.asarray(groups == g)], axis=0, dtype=np.float64)
        return out

    cases.append(
        Case(
            "group_mean (day of year, float32)",
            make_year,
            lambda d: 366 * int(np.prod(d["x"].shape[1:])) * 8,
            [
                Variant("gpu", "gpu", lambda d: groupby.group_mean(d["x"], d["groups"], 366)),
                Variant("gpu: CuPy nanmean per group", "gpu", cupy_group_mean),
                Variant(
                    "cpu",
                    "cpu",
                    lambda d: groupby.group_mean(d["x"], d["groups"], 366, backend="cpu"),
                ),
                Variant(
                    "reference",
                    "cpu",
                    lambda d: groupby.group_mean(d["x"], d["groups"], 366, backend="reference"),
                    True,
                ),
            ],
            host_keys=("groups",),
        )
    )
    cases.append(
        Case(
            "subtract_group (day of year, float32)",
            make_year,
            lambda d: d["x"].nbytes + d["table"].nbytes,
            [
                Variant(
                    "gpu", "gpu", lambda d: groupby.subtract_group(d["x"], d["groups"], d["table"])
                ),
                Variant(
                    "gpu: CuPy gather and subtract",
                    "gpu",
                    lambda d: (d["x"] - d["table"][_cupy().asarray(d["groups"])]).astype(
                        np.float32
                    ),
                ),
                Variant(
                    "cpu",
                    "cpu",
                    lambda d: groupby.subtract_group(
                        d["x"], d["groups"], d["table"], backend="cpu"
                    ),
                ),
                Variant(
                    "reference",
                    "cpu",
                    lambda d: groupby.subtract_group(
                        d["x"], d["groups"], d["table"], backend="reference"
                    ),
                    True,
                ),
            ],
            host_keys=("groups",),
        )
    )

    # median 3x3x3
    def make_median(rng: np.random.Generator, dry: bool) -> dict[str, np.ndarray]:
        shape = _sized((32, 256, 256), (6, 10, 12), dry)
        x = rng.standard_normal(shape).astype(np.float32)
        return {"x": np.pad(x, 1, mode="edge")}

    def cupyx_median(d: dict[str, Any]) -> Any:
        from cupyx.scipy import ndimage

        return ndimage.median_filter(d["x"], size=3, mode="nearest")[1:-1, 1:-1, 1:-1]

    cases.append(
        Case(
            "median_valid (3x3x3, float32)",
            make_median,
            lambda d: int(np.prod([n - 2 for n in d["x"].shape])) * 4,
            [
                Variant("gpu", "gpu", lambda d: median.median_valid(d["x"], 3)),
                Variant("gpu: cupyx.scipy.ndimage.median_filter", "gpu", cupyx_median),
                Variant("cpu", "cpu", lambda d: median.median_valid(d["x"], 3, backend="cpu")),
                Variant(
                    "reference",
                    "cpu",
                    lambda d: median.median_valid(d["x"], 3, backend="reference"),
                    True,
                ),
            ],
            note="cupyx filters the whole padded block",
        )
    )

    # histogram (256 bins) and finite range
    def make_hist(rng: np.random.Generator, dry: bool) -> dict[str, np.ndarray]:
        shape = _sized((32, 512, 512), (8, 24, 32), dry)
        x = rng.standard_normal(shape).astype(np.float32)
        x[rng.random(shape) < 0.01] = np.nan
        return {"x": x}

    def _histogram_global_atomics(x: Any) -> Any:
        from minjiang.kernels.histogram import _gpu

        return _gpu.histogram_partial(x, histogram.histogram_edges(256, (-5.0, 5.0)), shared=False)

    def cupy_histogram(d: dict[str, Any]) -> Any:
        cp = _cupy()
        x = d["x"]
        return cp.histogram(x[cp.isfinite(x)], 256, (-5.0, 5.0))[0]

    cases.append(
        Case(
            "histogram_partial (256 bins, float32)",
            make_hist,
            lambda d: 256 * 8,
            [
                Variant(
                    "gpu", "gpu", lambda d: histogram.histogram_partial(d["x"], 256, (-5.0, 5.0))
                ),
                Variant(
                    "gpu: global atomics only",
                    "gpu",
                    lambda d: _histogram_global_atomics(d["x"]),
                ),
                Variant("gpu: cupy.histogram", "gpu", cupy_histogram),
                Variant(
                    "cpu",
                    "cpu",
                    lambda d: histogram.histogram_partial(d["x"], 256, (-5.0, 5.0), backend="cpu"),
                ),
                Variant(
                    "reference",
                    "cpu",
                    lambda d: histogram.histogram_partial(
                        d["x"], 256, (-5.0, 5.0), backend="reference"
                    ),
                    True,
                ),
            ],
            note="the GPU counts are returned on the host (their copy is in the GPU time)",
        )
    )
    cases.append(
        Case(
            "finite_range (float32)",
            make_hist,
            lambda d: 24,
            [
                Variant("gpu", "gpu", lambda d: histogram.finite_range(d["x"])),
                Variant("cpu", "cpu", lambda d: histogram.finite_range(d["x"], backend="cpu")),
                Variant(
                    "reference",
                    "cpu",
                    lambda d: histogram.finite_range(d["x"], backend="reference"),
                    True,
                ),
            ],
        )
    )
    return cases


# ------------------------------------------------------------------ the measurements


def device_bandwidth(dry: bool) -> dict[str, Any]:
    """Copy and triad bandwidth of the device (the roofline of the kernels)."""
    if dry:
        return {"skipped": "dry run: no device"}
    cp = _cupy()
    n = 1 << 28  # 1 GiB of float32 per array
    a = cp.empty(n, dtype=np.float32)
    b = cp.random.standard_normal(n, dtype=np.float32)
    c = cp.random.standard_normal(n, dtype=np.float32)
    triad = cp.ElementwiseKernel("T b, T c, T s", "T a", "a = b + s * c", "minjiang_triad")
    copy_times, _ = _gpu_time(lambda: a.__setitem__(Ellipsis, b), _GPU_REPEATS)
    triad_times, _ = _gpu_time(lambda: triad(b, c, np.float32(3.0), a), _GPU_REPEATS)
    out = {
        "bytes_per_array": int(a.nbytes),
        "copy_GBps": 2 * a.nbytes / min(copy_times) / 1e9,
        "triad_GBps": 3 * a.nbytes / min(triad_times) / 1e9,
        "copy_s": copy_times,
        "triad_s": triad_times,
    }
    return out  # the arrays go back to CuPy's pool here


def run_case(case: Case, dry: bool, roofline: float | None, seed: int = 0) -> dict[str, Any]:
    """Time every variant of ``case`` on one block; GPU variants skipped on a dry run."""
    host = case.make(np.random.default_rng(seed), dry)
    in_bytes = sum(v.nbytes for v in host.values() if isinstance(v, np.ndarray))
    row: dict[str, Any] = {
        "kernel": case.name,
        "shapes": {k: list(v.shape) for k, v in host.items() if isinstance(v, np.ndarray)},
        "bytes_in": in_bytes,
        "bytes_out": case.out_bytes(host),
        "note": case.note,
        "variants": {},
    }
    moved = row["bytes_in"] + row["bytes_out"]
    results: dict[str, Any] = {}
    device: dict[str, Any] | None = None
    for variant in case.variants:
        entry: dict[str, Any] = {"device": variant.device}
        try:
            if variant.device == "gpu":
                if dry:
                    entry["skipped"] = "dry run: no CuPy"
                    row["variants"][variant.name] = entry
                    continue
                if device is None:
                    h2d, device = _gpu_time(lambda: _to_device(host, case.host_keys), 3)
                    row["h2d_s"] = statistics.median(h2d)
                times, result = _gpu_time(lambda v=variant, d=device: v.run(d), _GPU_REPEATS)
                d2h, _ = _cpu_time(lambda r=result: _to_host(r), 3)  # .get() waits for the copy
                entry["d2h_s"] = statistics.median(d2h)
            else:
                repeats = 1 if variant.reference else _CPU_REPEATS
                times, result = _cpu_time(lambda v=variant: v.run(host), repeats)
            seconds = statistics.median(times)
            entry.update(
                seconds=seconds,
                runs=times,
                GBps=moved / seconds / 1e9 if seconds > 0 else None,
                output_bytes=_nbytes(_to_host(result)),
            )
            if roofline and variant.device == "gpu":
                entry["fraction_of_triad"] = moved / seconds / 1e9 / roofline
            results[variant.name] = result
        except Exception as err:  # one failing variant must not hide the others
            entry["error"] = f"{type(err).__name__}: {err}"
            entry["traceback"] = traceback.format_exc(limit=4)
        row["variants"][variant.name] = entry
    if "cpu" in results:
        for name, result in results.items():
            if name != "cpu":
                row["variants"][name]["max_rel_difference_from_cpu"] = _max_difference(
                    result, results["cpu"]
                )
    if device is not None:
        del device
        _cupy().get_default_memory_pool().free_all_blocks()
    return row


def end_to_end(
    dry: bool,
    work: Path,
    shape: tuple[int, ...] | None = None,
    chunks: tuple[int, ...] | None = None,
) -> dict[str, Any]:
    """Zarr -> kernel -> Zarr through the runtime (local executor) on gpu and cpu."""
    import minjiang as mj
    import xarray as xr

    shape = shape or ((8, 64, 64) if dry else (32, 1024, 1024))
    chunks = chunks or ((4, 32, 32) if dry else (16, 512, 512))
    rng = np.random.default_rng(1)
    source = work / "cube.zarr"
    ds = xr.Dataset(
        {k: (("t", "y", "x"), rng.uniform(0.01, 1.0, shape).astype(np.float32)) for k in "ab"}
    )
    ds.to_zarr(
        source,
        mode="w",
        zarr_format=3,
        consolidated=False,
        encoding={k: {"chunks": chunks} for k in "ab"},
    )
    cube_bytes = int(np.prod(shape)) * 4
    steps = {
        "array.gaussian": ({"sigma": 2.0}, {"x": "a"}),
        "array.band_math": ({"expression": "(a - b) / (a + b)"}, {"a": "a", "b": "b"}),
    }
    out: dict[str, Any] = {
        "shape": list(shape),
        "chunks": list(chunks),
        "dtype": "float32",
        "runs": {},
    }
    # gpu twice, once per way of reading Zarr onto the device; then cpu
    for label, backend, gpu_read in (
        ("gpu-pinned", "gpu", "pinned"),
        ("gpu-zarr", "gpu", "zarr"),
        ("cpu", "cpu", "pinned"),
    ):
        if backend == "gpu" and dry:
            out["runs"][label] = {"skipped": "dry run: no CuPy"}
            continue
        store = work / f"store-{label}"
        try:
            with mj.Runtime(
                store=store,
                executor="local",
                backend=backend,
                gpu_read=gpu_read,
                memory_budget="1GiB" if dry else "24GiB",
            ) as rt:
                cube = rt.ingest("array.zarr", [source], name="gpucheck/cube")
                if label != "cpu":
                    out.setdefault("zarr_to_device", {})[gpu_read] = zarr_to_device(
                        rt, cube.id, "a", gpu_read
                    )
                runs = {}
                for operator, (params, inputs) in steps.items():
                    refs = {k: f"{cube.id}:{v}" for k, v in inputs.items()}
                    t0 = time.perf_counter()
                    res = rt.run(operator, inputs=refs, params=params)
                    seconds = time.perf_counter() - t0
                    n_in = len(inputs)
                    runs[operator] = {
                        "seconds": seconds,
                        "array_GBps": (n_in + 1) * cube_bytes / seconds / 1e9,
                        "backend": res.record.producer["backend"],
                        "gpu_read": res.record.producer.get("gpu_read"),
                        "devices": res.record.producer.get("devices"),
                        "timings": res.record.timings,
                    }
                out["runs"][label] = runs
        except Exception as err:
            out["runs"][label] = {
                "error": f"{type(err).__name__}: {err}",
                "traceback": traceback.format_exc(limit=6),
            }
        finally:
            shutil.rmtree(store, ignore_errors=True)
    return out


def zarr_to_device(rt: Any, dataset_id: str, array: str, mode: str, repeats: int = 3) -> dict:
    """Seconds to read a whole stored array onto the device the way GPU tasks do
    (``mode``), against the host decode alone and a pageable ``cupy.asarray`` copy."""
    from minjiang.core._devices import read_to_device
    from minjiang.storage import open_dataset_info, read_region

    cp = _cupy()
    info = open_dataset_info(rt.store, dataset_id).arrays[array]
    region = tuple(slice(0, n) for n in info.shape)

    def best(fn: Callable[[], Any]) -> float:
        times = []
        for _ in range(repeats + 1):  # the first run warms the pools
            t0 = time.perf_counter()
            fn()
            cp.cuda.Device().synchronize()
            times.append(time.perf_counter() - t0)
        return min(times[1:])

    host = best(lambda: read_region(rt.store, info, region))
    pageable = best(lambda: cp.asarray(read_region(rt.store, info, region)))
    device = best(lambda: read_to_device(rt.store, info, region, mode))
    nbytes = int(np.prod(info.shape)) * np.dtype(info.dtype).itemsize
    return {
        "bytes": nbytes,
        "host_decode_s": host,
        "pageable_copy_s": pageable,
        f"{mode}_s": device,
        f"{mode}_GBps": nbytes / device / 1e9,
        "host_decode_GBps": nbytes / host / 1e9,
    }


def environment(dry: bool) -> dict[str, Any]:
    """Versions and the device, for the record."""
    import numba

    env: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "numba_threads": numba.get_num_threads(),
        "dry_run": dry,
    }
    if not dry:
        cp = _cupy()
        props = cp.cuda.runtime.getDeviceProperties(cp.cuda.runtime.getDevice())
        env.update(
            cupy=cp.__version__,
            cuda_runtime=cp.cuda.runtime.runtimeGetVersion(),
            device=props["name"].decode() if isinstance(props["name"], bytes) else props["name"],
            compute_capability=f"{props['major']}.{props['minor']}",
            multiprocessors=props["multiProcessorCount"],
            device_memory_bytes=props["totalGlobalMem"],
        )
    return env


def _print_row(row: dict[str, Any]) -> None:
    print(
        f"\n{row['kernel']}  in {row['bytes_in'] / 2**20:.1f} MiB, out {row['bytes_out'] / 2**20:.2f} MiB"
        + (f"  (h2d {row['h2d_s'] * 1e3:.2f} ms)" if "h2d_s" in row else "")
    )
    for name, entry in row["variants"].items():
        if "seconds" in entry:
            extra = ""
            if entry.get("fraction_of_triad") is not None:
                extra += f"  {entry['fraction_of_triad']:.0%} of triad"
            if entry.get("max_rel_difference_from_cpu") is not None:
                extra += f"  diff {entry['max_rel_difference_from_cpu']:.1e}"
            print(
                f"  {name:44s} {entry['seconds'] * 1e3:10.3f} ms  {entry['GBps'] or 0:8.2f} GB/s{extra}"
            )
        else:
            print(f"  {name:44s} {entry.get('skipped') or entry.get('error')}")


def main(argv: list[str] | None = None) -> int:
    """Run the GPU check; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT") or "gpu-results")
    parser.add_argument(
        "--dry-run", action="store_true", help="no CuPy: small blocks, CPU paths only"
    )
    parser.add_argument("--only", nargs="*", default=None, help="kernel names starting with these")
    parser.add_argument(
        "--part",
        choices=("all", "kernels", "end-to-end"),
        default="all",
        help="kernels (with the device bandwidth), the end-to-end runs, or both",
    )
    args = parser.parse_args(argv)
    if not args.dry_run:
        try:
            _cupy().cuda.runtime.getDeviceCount()
        except Exception as err:
            print(
                f"no usable GPU ({type(err).__name__}: {err}); on a machine without one, "
                "run with --dry-run",
                file=sys.stderr,
            )
            return 2
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"gpu-{args.part}.json"
    report: dict[str, Any] = {"environment": environment(args.dry_run)}
    print(json.dumps(report["environment"], indent=1))

    if args.part in ("all", "kernels"):
        report["device_bandwidth"] = device_bandwidth(args.dry_run)
        if not args.dry_run:
            _cupy().get_default_memory_pool().free_all_blocks()
        triad = report["device_bandwidth"].get("triad_GBps")
        if triad:
            print(
                f"device bandwidth: copy {report['device_bandwidth']['copy_GBps']:.0f} GB/s, "
                f"triad {triad:.0f} GB/s"
            )
        report["kernels"] = []
        for case in _cases():
            if args.only and not any(case.name.startswith(p) for p in args.only):
                continue
            row = run_case(case, args.dry_run, triad)
            report["kernels"].append(row)
            _print_row(row)
            _save(path, report)  # partial results survive a timeout
    if args.part in ("all", "end-to-end"):
        with tempfile.TemporaryDirectory(prefix="minjiang-gpucheck-") as tmp:
            report["end_to_end"] = end_to_end(args.dry_run, Path(tmp))
        print("\nend to end:", json.dumps(report["end_to_end"], indent=1, default=str))
    _save(path, report)
    failures = [
        f"{row['kernel']} / {name}"
        for row in report.get("kernels", [])
        for name, entry in row["variants"].items()
        if "error" in entry
    ]
    e2e = report.get("end_to_end", {}).get("runs", {})
    failures += [f"end to end / {b}" for b, r in e2e.items() if "error" in r]
    if failures:
        print("\nfailed:", *failures, sep="\n  ")
    return 1 if failures else 0


def _save(path: Path, report: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1, default=str))
    tmp.replace(path)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())

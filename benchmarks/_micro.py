"""In-memory figures: the machine's memory bandwidth and each kernel's throughput.

STREAM-like copy and triad (``a = b + s * c``) in NumPy and numba, float64, arrays
well beyond the last-level cache, best of several runs (STREAM's convention), bytes
counted as STREAM does (copy 16 B, triad 24 B per element; write-allocate traffic not
counted). The numba triad on all cores is the roofline the kernels are read against.
NumPy has no fused triad: its figure is two passes (``multiply`` then ``add``) and is
labelled so.

Kernel micro-benchmarks call minjiang's numba kernels on an in-memory float32 block
(no Zarr, no scheduling), best of several calls after a warm-up call that compiles
them. Throughput is given twice: bytes of input per second, and bytes moved per second
(input plus the arrays the kernel returns), which is how STREAM counts the triad's.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from collections.abc import Callable
from typing import Any

import numba
import numpy as np

__all__ = ["kernel_benchmarks", "stream"]


def _best(fn: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


@numba.njit(parallel=True, cache=True)
def _triad(a, b, c, s):  # pragma: no cover - numba
    for i in numba.prange(a.shape[0]):
        a[i] = b[i] + s * c[i]


@numba.njit(parallel=True, cache=True)
def _copy(a, b):  # pragma: no cover - numba
    for i in numba.prange(a.shape[0]):
        a[i] = b[i]


def stream(n: int, cores: int, repeat: int = 8) -> dict[str, Any]:
    """Copy and triad bandwidth (GB/s) in NumPy and numba on ``n`` float64 elements."""
    triad, copy = _triad, _copy
    a = np.zeros(n)
    b = np.full(n, 1.0)
    c = np.full(n, 2.0)
    s = 3.0
    out: dict[str, Any] = {"elements": n, "array_bytes": int(a.nbytes), "repeat": repeat}

    def np_triad() -> None:
        np.multiply(c, s, out=a)
        np.add(a, b, out=a)

    out["numpy_copy_gbs"] = 16 * n / _best(lambda: np.copyto(a, b), repeat) / 1e9
    out["numpy_triad_2pass_gbs"] = 24 * n / _best(np_triad, repeat) / 1e9
    previous = numba.get_num_threads()
    try:
        for threads in sorted({1, max(1, min(cores, numba.config.NUMBA_NUM_THREADS))}):
            numba.set_num_threads(threads)
            triad(a, b, c, s)  # compile / warm
            copy(a, b)
            out[f"numba_copy_{threads}t_gbs"] = 16 * n / _best(lambda: copy(a, b), repeat) / 1e9
            out[f"numba_triad_{threads}t_gbs"] = (
                24 * n / _best(lambda: triad(a, b, c, s), repeat) / 1e9
            )
            out["numba_triad_threads"] = threads
            out["numba_triad_gbs"] = out[f"numba_triad_{threads}t_gbs"]
    finally:
        numba.set_num_threads(previous)
    if not np.allclose(a[:16], 1.0 + 3.0 * 2.0):
        raise RuntimeError("triad produced wrong values")
    return out


# --------------------------------------------------------------------------- kernels


@dataclasses.dataclass(frozen=True)
class KernelCase:
    """One kernel call to time: where the kernel lives and how to call it on a block."""

    key: str
    module: str
    function: str
    call: Callable[[Callable[..., Any], dict[str, np.ndarray]], Any]
    inputs: tuple[str, ...]
    note: str = ""


def _cases() -> list[KernelCase]:
    from benchmarks._workloads import BAND_MATH, GAUSSIAN_SIGMA, QUANTILE

    return [
        KernelCase(
            "bandmath.band_math",
            "minjiang.kernels.bandmath",
            "band_math",
            lambda f, x: f(BAND_MATH, {"a": x["a"], "b": x["b"]}),
            ("a", "b"),
        ),
        KernelCase(
            "bandmath.band_math[out]",
            "minjiang.kernels.bandmath",
            "band_math",
            lambda f, x: f(BAND_MATH, {"a": x["a"], "b": x["b"]}, out=x["out"]),
            ("a", "b"),
            "into one output array, as a task worked in steps calls it",
        ),
        KernelCase(
            "gaussian.gaussian_filter",
            "minjiang.kernels.gaussian",
            "gaussian_filter",
            lambda f, x: f(x["a"], GAUSSIAN_SIGMA, mode="reflect"),
            ("a",),
            "pads the block itself",
        ),
        KernelCase(
            "reductions.moments_partial",
            "minjiang.kernels.reductions",
            "moments_partial",
            lambda f, x: f(x["a"], (0,)),
            ("a",),
            "the full state: count, mean, m2, min, max",
        ),
        KernelCase(
            "reductions.moments_partial[mean]",
            "minjiang.kernels.reductions",
            "moments_partial",
            lambda f, x: f(x["a"], (0,), stats="mean"),
            ("a",),
            "a mean's state (count, mean), as W2a runs it",
        ),
        KernelCase(
            "reductions.nanquantile",
            "minjiang.kernels.reductions",
            "nanquantile",
            lambda f, x: f(x["a"], QUANTILE, axis=0),
            ("a",),
        ),
        KernelCase(
            "groupby.group_mean",
            "minjiang.kernels.groupby",
            "group_mean",
            lambda f, x: f(x["a"], x["doy"], 366),
            ("a",),
            "day-of-year climatology",
        ),
        KernelCase(
            "groupby.subtract_group",
            "minjiang.kernels.groupby",
            "subtract_group",
            lambda f, x: f(x["a"], x["doy"], x["clim"]),
            ("a",),
            "day-of-year anomaly",
        ),
        KernelCase(
            "labelstats.label_stats_partial",
            "minjiang.kernels.labelstats",
            "label_stats_partial",
            lambda f, x: f(x["a"], x["labels3"]),
            ("a", "labels3"),
        ),
    ]


def kernel_benchmarks(
    shape: tuple[int, int, int], repeat: int = 5, cases: list[KernelCase] | None = None
) -> list[dict[str, Any]]:
    """Time each minjiang kernel that exists on an in-memory block of ``shape``."""
    from benchmarks._data import cube_values, label_values

    region = tuple(slice(0, n) for n in shape)
    block = {
        "a": cube_values("a", shape, region),  # type: ignore[arg-type]
        "b": cube_values("b", shape, region),  # type: ignore[arg-type]
    }
    block["labels3"] = label_values(shape, region)  # type: ignore[arg-type]
    block["doy"] = (np.arange(shape[0]) % 365).astype(np.int64)
    block["clim"] = np.zeros((366, *shape[1:]), dtype=np.float32)
    block["out"] = np.zeros(shape, dtype=np.float32)  # written once: its pages are in
    results = []
    for case in cases or _cases():
        row: dict[str, Any] = {"kernel": case.key, "shape": list(shape)}
        try:
            fn = getattr(importlib.import_module(case.module), case.function)
        except (ImportError, AttributeError) as exc:
            row.update(ok=False, error=f"not available: {exc}")
            results.append(row)
            continue
        try:
            t0 = time.perf_counter()
            case.call(fn, block)  # compiles
            row["first_call_s"] = time.perf_counter() - t0
            best = _best(lambda f=fn, c=case: c.call(f, block), repeat)
        except Exception as exc:
            row.update(ok=False, error=f"{type(exc).__name__}: {exc}"[:400])
            results.append(row)
            continue
        nbytes = sum(block[n].nbytes for n in case.inputs)
        out_bytes = _nbytes(case.call(fn, block))
        row.update(
            ok=True,
            best_s=best,
            input_bytes=nbytes,
            output_bytes=out_bytes,
            gbs=nbytes / best / 1e9,
            moved_gbs=(nbytes + out_bytes) / best / 1e9,
        )
        results.append(row)
    return results


def _nbytes(result: Any) -> int:
    """Bytes of the arrays a kernel returned (an array, or a dict or tuple of them)."""
    if isinstance(result, np.ndarray):
        return int(result.nbytes)
    if isinstance(result, dict):
        return sum(_nbytes(v) for v in result.values())
    if isinstance(result, tuple | list):
        return sum(_nbytes(v) for v in result)
    return 0

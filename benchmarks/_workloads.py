"""The benchmark workloads, their outputs, and the NumPy/SciPy references.

Each workload names the stored inputs it reads, the outputs every engine must write
(same names, dims and chunking, so every engine does the same work), and a
reference computed here, independently of every engine, on a *validation window*:
the whole time axis over a ``y``/``x`` corner of the cube that crosses chunk
boundaries and touches the true array edges (where halo boundary handling shows).
A fast engine with a wrong answer is reported as failed, not as fast.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from benchmarks._data import N_LABELS, BenchData, chunk_blocks, read_window, time_coord

__all__ = [
    "GAUSSIAN_SIGMA",
    "GAUSSIAN_TRUNCATE",
    "QUANTILE",
    "WORKLOADS",
    "OutputSpec",
    "Workload",
    "compare",
    "day_of_year",
    "gaussian_radius",
    "output_layout",
    "validation_window",
]

GAUSSIAN_SIGMA = 2.0
GAUSSIAN_TRUNCATE = 4.0  # SciPy's default: radius = int(4 * sigma + 0.5) = 8 cells
QUANTILE = 0.9
BAND_MATH = "(a - b) / (a + b)"
STAT_COLUMNS = ("count", "sum", "mean", "min", "max", "std")


def gaussian_radius(sigma: float = GAUSSIAN_SIGMA, truncate: float = GAUSSIAN_TRUNCATE) -> int:
    return int(truncate * sigma + 0.5)


def day_of_year(time: np.ndarray) -> np.ndarray:
    """1-based day of the year of ``datetime64`` values (xarray's ``time.dayofyear``)."""
    t = np.asarray(time).astype("datetime64[D]")
    return (t - t.astype("datetime64[Y]")).astype(np.int64) + 1


@dataclasses.dataclass(frozen=True)
class OutputSpec:
    """One output every engine writes: an array over ``dims`` or a table."""

    name: str
    kind: str  # "array" | "table"
    dims: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Workload:
    """One benchmark workload."""

    key: str
    label: str
    title: str
    pattern: str
    inputs: tuple[str, ...]
    outputs: tuple[OutputSpec, ...]
    reference: Callable[[BenchData, Mapping[str, slice]], dict[str, Any]]
    rtol: float = 1e-4
    atol: float = 1e-4
    operators: tuple[str, ...] = ()
    domain: str | None = None
    description: str = ""

    def input_bytes(self, data: BenchData) -> int:
        return data.input_bytes(self.inputs)


def validation_window(data: BenchData) -> dict[str, slice]:
    """All of ``time``; a ``y``/``x`` corner wider than one pencil tile."""
    _, ny, nx = data.shape
    cy, cx = data.pencil_chunks[1:]
    return {"y": slice(0, min(ny, cy + 8)), "x": slice(0, min(nx, cx + 8))}


def output_layout(wl: Workload, data: BenchData) -> list[tuple[str, tuple[int, ...], tuple[int, ...], tuple[str, ...]]]:
    """``(name, shape, chunks, dims)`` of each array output (the cube's own chunking)."""
    sizes = dict(zip(("time", "y", "x"), data.shape, strict=True))
    chunk = dict(zip(("time", "y", "x"), data.cube_chunks, strict=True))
    out = []
    for o in wl.outputs:
        if o.kind != "array":
            continue
        out.append((o.name, tuple(sizes[d] for d in o.dims), tuple(chunk[d] for d in o.dims), o.dims))
    return out


# --------------------------------------------------------------------------- references


def _ref_band_math(data: BenchData, w: Mapping[str, slice]) -> dict[str, Any]:
    a = read_window(data.arrays["a"], w).astype(np.float64)
    b = read_window(data.arrays["b"], w).astype(np.float64)
    return {"out": (a - b) / (a + b)}


def _ref_mean(data: BenchData, w: Mapping[str, slice]) -> dict[str, Any]:
    return {"mean": read_window(data.arrays["a"], w).astype(np.float64).mean(axis=0)}


def _ref_q90(data: BenchData, w: Mapping[str, slice]) -> dict[str, Any]:
    a = read_window(data.arrays["a"], w).astype(np.float64)
    return {"q90": np.quantile(a, QUANTILE, axis=0, method="linear")}


def _ref_anomaly(data: BenchData, w: Mapping[str, slice]) -> dict[str, Any]:
    a = read_window(data.arrays["a"], w).astype(np.float64)
    doy = day_of_year(time_coord(a.shape[0]))
    clim = np.zeros((367, *a.shape[1:]))
    np.add.at(clim, doy, a)
    counts = np.bincount(doy, minlength=367).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        clim /= counts[:, None, None]
    return {"anomaly": a - clim[doy]}


def _ref_gaussian(data: BenchData, w: Mapping[str, slice]) -> dict[str, Any]:
    from scipy import ndimage

    r = gaussian_radius()
    ref = data.arrays["a"]
    padded = {}
    crop = []
    for d, n in zip(ref.dims, ref.shape, strict=True):
        s = w.get(d, slice(None))
        start, stop, _ = s.indices(n)
        lo, hi = max(0, start - r), min(n, stop + r)
        padded[d] = slice(lo, hi)
        crop.append(slice(start - lo, start - lo + (stop - start)))
    a = read_window(ref, padded).astype(np.float64)
    out = ndimage.gaussian_filter(a, GAUSSIAN_SIGMA, mode="reflect", truncate=GAUSSIAN_TRUNCATE)
    return {"smoothed": out[tuple(crop)]}


def label_stats_reference(data: BenchData) -> dict[str, np.ndarray]:
    """Per-label count/sum/mean/min/max/std of ``a`` over all time, streamed in slabs."""
    import zarr

    lab2d = read_window(data.arrays["labels"], {})
    arr = zarr.open_array(data.arrays["a"].group, path="a", mode="r")
    nt = arr.shape[0]
    s1 = np.zeros(lab2d.shape)
    s2 = np.zeros(lab2d.shape)
    mn = np.full(lab2d.shape, np.inf)
    mx = np.full(lab2d.shape, -np.inf)
    # walk whole chunks, so that no chunk is decoded twice (pencils hold all of time)
    for region in chunk_blocks(arr.shape, arr.chunks, 128 << 20):
        blk = np.asarray(arr[region], dtype=np.float64)
        yx = region[1:]
        s1[yx] += blk.sum(axis=0)
        s2[yx] += (blk * blk).sum(axis=0)
        np.minimum(mn[yx], blk.min(axis=0), out=mn[yx])
        np.maximum(mx[yx], blk.max(axis=0), out=mx[yx])
    labels, s1, s2, mn, mx = (v.ravel() for v in (lab2d, s1, s2, mn, mx))
    nlab = N_LABELS + 1
    count = np.bincount(labels, minlength=nlab).astype(np.float64) * nt
    total = np.bincount(labels, weights=s1, minlength=nlab)
    total2 = np.bincount(labels, weights=s2, minlength=nlab)
    lmin = np.full(nlab, np.inf)
    lmax = np.full(nlab, -np.inf)
    np.minimum.at(lmin, labels, mn)
    np.maximum.at(lmax, labels, mx)
    present = count > 0
    present[0] = False  # 0 is background
    c = count[present]
    mean = total[present] / c
    var = np.maximum(total2[present] / c - mean * mean, 0.0)
    return {
        "label": np.nonzero(present)[0].astype(np.int64),
        "count": c,
        "sum": total[present],
        "mean": mean,
        "min": lmin[present],
        "max": lmax[present],
        "std": np.sqrt(var),
    }


def _ref_label_stats(data: BenchData, w: Mapping[str, slice]) -> dict[str, Any]:
    return {"stats": label_stats_reference(data)}


# --------------------------------------------------------------------------- compare


def _as_table(obj: Any) -> dict[str, np.ndarray]:
    if hasattr(obj, "to_pydict"):  # pyarrow.Table
        obj = {k: np.asarray(v) for k, v in obj.to_pydict().items()}
    elif hasattr(obj, "to_dict") and hasattr(obj, "columns"):  # pandas.DataFrame
        obj = {c: obj[c].to_numpy() for c in obj.columns}
    return {str(k): np.asarray(v) for k, v in dict(obj).items()}


def _compare_table(got: Any, ref: Mapping[str, np.ndarray], rtol: float) -> dict[str, Any]:
    g = _as_table(got)
    key = next((k for k in ("label", "labels", "zone", "id") if k in g), None)
    if key is None:
        return {"ok": False, "reason": f"table has no label column; columns {sorted(g)!r}"}
    order = np.argsort(g[key])
    glab = g[key][order].astype(np.int64)
    keep = glab != 0
    glab = glab[keep]
    if not np.array_equal(glab, ref["label"]):
        return {"ok": False, "reason": f"labels differ: got {glab.size} labels, expected {ref['label'].size}"}
    checked, worst = [], 0.0
    for col in STAT_COLUMNS:
        if col not in g:
            continue
        gv = g[col][order][keep].astype(np.float64)
        rv = ref[col]
        err = np.abs(gv - rv) / np.maximum(np.abs(rv), 1e-12)
        # std from running sums loses digits when mean >> std; judge it on the std's scale
        if col == "std":
            err = np.abs(gv - rv) / np.maximum(np.abs(ref["mean"]), 1e-12)
        worst = max(worst, float(err.max(initial=0.0)))
        checked.append(col)
    if not {"count", "mean"} <= set(checked):
        return {"ok": False, "reason": f"table lacks count/mean; columns {sorted(g)!r}"}
    return {"ok": worst <= rtol, "columns": checked, "max_rel_err": worst}


def compare(wl: Workload, got: Mapping[str, Any], ref: Mapping[str, Any]) -> dict[str, Any]:
    """Compare an engine's window of each output with the reference."""
    report: dict[str, Any] = {"ok": True, "outputs": {}}
    for o in wl.outputs:
        if o.name not in got:
            report["outputs"][o.name] = {"ok": False, "reason": "missing"}
            report["ok"] = False
            continue
        if o.kind == "table":
            r = _compare_table(got[o.name], ref[o.name], wl.rtol)
        else:
            g = np.asarray(got[o.name], dtype=np.float64)
            e = np.asarray(ref[o.name], dtype=np.float64)
            if g.shape != e.shape:
                r = {"ok": False, "reason": f"window shape {g.shape} != reference {e.shape}"}
            else:
                scale = float(np.nanmax(np.abs(e))) if e.size else 1.0
                diff = np.abs(g - e)
                nan_mismatch = int(np.count_nonzero(np.isnan(g) != np.isnan(e)))
                max_abs = float(np.nanmax(diff)) if diff.size and not np.all(np.isnan(diff)) else 0.0
                ok = nan_mismatch == 0 and bool(
                    np.all((diff <= wl.atol * scale + wl.rtol * np.abs(e)) | np.isnan(e))
                )
                r = {"ok": ok, "max_abs_err": max_abs, "scale": scale, "nan_mismatch": nan_mismatch,
                     "cells": int(math.prod(g.shape))}
        report["outputs"][o.name] = r
        report["ok"] = report["ok"] and bool(r["ok"])
    return report


# --------------------------------------------------------------------------- registry

_CUBE = ("time", "y", "x")

WORKLOADS: dict[str, Workload] = {
    w.key: w
    for w in (
        Workload(
            "w1_band_math", "W1", "band math (a − b)/(a + b)", "map", ("a", "b"),
            (OutputSpec("out", "array", _CUBE),), _ref_band_math, operators=("array.band_math",),
        ),
        Workload(
            "w2_mean", "W2a", "per-pixel mean over time", "reduce", ("a",),
            (OutputSpec("mean", "array", ("y", "x")),), _ref_mean, operators=("array.reduce",),
        ),
        Workload(
            "w2_q90", "W2b", "per-pixel 90th percentile over time", "full_axis", ("a",),
            (OutputSpec("q90", "array", ("y", "x")),), _ref_q90, operators=("array.quantile",),
        ),
        Workload(
            "w3_anomaly", "W3", "anomaly against a day-of-year climatology", "full_axis + map", ("a",),
            (OutputSpec("anomaly", "array", _CUBE),), _ref_anomaly,
            operators=("array.doy_climatology", "array.doy_anomaly"),
        ),
        Workload(
            "w4_gaussian", "W4", f"3-D Gaussian, sigma {GAUSSIAN_SIGMA:g}, reflect edges", "map + halo",
            ("a",), (OutputSpec("smoothed", "array", _CUBE),), _ref_gaussian, operators=("array.gaussian",),
        ),
        Workload(
            "w5_label_stats", "W5", "statistics per label of a zone raster", "aggregate → table",
            ("a", "labels"), (OutputSpec("stats", "table"),), _ref_label_stats, rtol=1e-5,
            operators=("array.label_stats",),
        ),
    )
}

CORE_WORKLOADS = tuple(WORKLOADS)

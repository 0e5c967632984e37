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
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from benchmarks._data import N_LABELS, BenchData, chunk_blocks, read_window, time_coord

__all__ = [
    "BAND_MATH",
    "GAUSSIAN_SIGMA",
    "GAUSSIAN_TRUNCATE",
    "QUANTILE",
    "WORKLOADS",
    "OutputSpec",
    "Workload",
    "combine_partials",
    "compare",
    "day_of_year",
    "finalize_partials",
    "gaussian_radius",
    "label_partials",
    "label_stats_reference",
    "mhw_years",
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
    """One output every engine writes: an array over ``dims``, a label array, or a table.

    ``kind`` is ``"array"`` (compared value by value), ``"labels"`` (compared as a
    partition: the same cells grouped together, whatever the label numbers) or
    ``"table"``.
    """

    name: str
    kind: str
    dims: tuple[str, ...] = ()
    dtype: str = "float32"


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
    window: Callable[[BenchData], dict[str, slice]] | None = None

    def input_bytes(self, data: BenchData) -> int:
        return data.input_bytes(self.inputs)


def validation_window(data: BenchData) -> dict[str, slice]:
    """All of ``time``; a ``y``/``x`` corner wider than one pencil tile."""
    _, ny, nx = data.shape
    cy, cx = data.pencil_chunks[1:]
    return {"y": slice(0, min(ny, cy + 8)), "x": slice(0, min(nx, cx + 8))}


def mhw_years(n_time: int) -> tuple[int, int]:
    """First and last calendar year of a daily axis of ``n_time`` days."""
    t = time_coord(n_time).astype("datetime64[Y]").astype(int) + 1970
    return int(t[0]), int(t[-1])


def small_window(data: BenchData) -> dict[str, slice]:
    """8 × 8 cells across a pencil corner: for references that cost seconds per cell."""
    _, ny, nx = data.shape
    cy, cx = data.pencil_chunks[1:]
    y0, x0 = max(0, min(cy, ny) - 4), max(0, min(cx, nx) - 4)
    return {"y": slice(y0, min(ny, y0 + 8)), "x": slice(x0, min(nx, x0 + 8))}


def output_layout(
    wl: Workload, data: BenchData
) -> list[tuple[str, tuple[int, ...], tuple[int, ...], tuple[str, ...], str]]:
    """``(name, shape, chunks, dims, dtype)`` of each array output (the cube's chunking
    on the cube's dims; new dims such as ``doy`` or ``year`` whole)."""
    y0, y1 = mhw_years(data.shape[0])
    sizes = {
        **dict(zip(("time", "y", "x"), data.shape, strict=True)),
        "z": data.shape[0],
        "doy": 366,
        "year": y1 - y0 + 1,
    }
    chunk = {
        **dict(zip(("time", "y", "x"), data.cube_chunks, strict=True)),
        "z": data.cube_chunks[0],
    }
    out = []
    for o in wl.outputs:
        if o.kind == "table":
            continue
        out.append(
            (
                o.name,
                tuple(sizes[d] for d in o.dims),
                tuple(chunk.get(d, sizes[d]) for d in o.dims),
                o.dims,
                o.dtype,
            )
        )
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


def label_partials(values: np.ndarray, labels: np.ndarray, n: int = N_LABELS + 1) -> np.ndarray:
    """Per-label ``count, sum, sumsq, min, max`` of one block (rows 0..n-1), in NumPy."""
    lab = labels.ravel().astype(np.intp)
    v = values.ravel().astype(np.float64)
    out = np.empty((5, n))
    out[0] = np.bincount(lab, minlength=n)
    out[1] = np.bincount(lab, weights=v, minlength=n)
    out[2] = np.bincount(lab, weights=v * v, minlength=n)
    out[3] = np.inf
    out[4] = -np.inf
    np.minimum.at(out[3], lab, v)
    np.maximum.at(out[4], lab, v)
    return out


def combine_partials(parts: Iterable[np.ndarray]) -> np.ndarray:
    """Merge :func:`label_partials` results."""
    total: np.ndarray | None = None
    for p in parts:
        if total is None:
            total = p.copy()
            continue
        total[:3] += p[:3]
        np.minimum(total[3], p[3], out=total[3])
        np.maximum(total[4], p[4], out=total[4])
    if total is None:
        raise ValueError("no partial statistics to combine")
    return total


def finalize_partials(total: np.ndarray, ignore: int = 0) -> dict[str, np.ndarray]:
    """The statistics table (labels present, ``ignore`` dropped) from merged partials."""
    count = total[0]
    present = count > 0
    if 0 <= ignore < present.size:
        present[ignore] = False
    c = count[present]
    mean = total[1][present] / c
    var = np.maximum(total[2][present] / c - mean * mean, 0.0)
    return {
        "label": np.nonzero(present)[0].astype(np.int64),
        "count": c,
        "sum": total[1][present],
        "mean": mean,
        "min": total[3][present],
        "max": total[4][present],
        "std": np.sqrt(var),
    }


def label_stats_reference(data: BenchData) -> dict[str, np.ndarray]:
    """Per-label count/sum/mean/min/max/std of ``a`` (label 0 is background), whole chunks
    at a time so that no chunk is decoded twice and memory stays bounded."""
    import zarr

    va = zarr.open_array(data.arrays["a"].group, path=data.arrays["a"].var, mode="r")
    la = zarr.open_array(data.arrays["labels"].group, path=data.arrays["labels"].var, mode="r")
    parts = (
        label_partials(np.asarray(va[r]), np.asarray(la[r]))
        for r in chunk_blocks(va.shape, va.chunks, 128 << 20)
    )
    return finalize_partials(combine_partials(parts))


def _ref_label_stats(data: BenchData, w: Mapping[str, slice]) -> dict[str, Any]:
    return {"stats": label_stats_reference(data)}


def _ref_mhw(data: BenchData, w: Mapping[str, slice]) -> dict[str, Any]:
    """The ocean plugin's NumPy specification (``backend="reference"``) on the window:
    an implementation independent of the numba kernels that the runtime runs."""
    from minjiang.plugins.ocean._time import decode_time
    from minjiang.plugins.ocean.climatology import climatology
    from minjiang.plugins.ocean.mhw import detect_events, yearly_summary

    a = read_window(data.arrays["a"], w)
    cal = decode_time(time_coord(a.shape[0]))
    seas, thresh = climatology(a, cal, backend="reference")
    ev = detect_events(a, cal, seas, thresh, backend="reference")
    y0, y1 = mhw_years(a.shape[0])
    grids = yearly_summary(ev, np.arange(y0, y1 + 1), np.isfinite(a).any(axis=0).reshape(-1))
    shape = (y1 - y0 + 1, *a.shape[1:])
    return {
        "seas": seas,
        "thresh": thresh,
        "count": grids["count"].reshape(shape),
        "days": grids["days"].reshape(shape),
    }


MAX_LABEL_REFERENCE_BYTES = 2 << 30


def _ref_label(data: BenchData, w: Mapping[str, slice]) -> dict[str, Any]:
    """``scipy.ndimage.label`` (6-connectivity) of the whole mask, cut to the window."""
    from scipy import ndimage

    ref = data.arrays["mask"]
    if ref.nbytes > MAX_LABEL_REFERENCE_BYTES:
        return {"labels": None}  # too big to label in memory here: not validated
    mask = read_window(ref, {})
    labels, _ = ndimage.label(mask, structure=ndimage.generate_binary_structure(3, 1))
    return {"labels": labels[tuple(w.get(d, slice(None)) for d in ref.dims)]}


def _compare_labels(got: Any, ref: Any) -> dict[str, Any]:
    """Same partition: background agrees and (reference, got) label pairs are one-to-one."""
    if ref is None:
        return {
            "ok": True,
            "reason": "not validated: the reference does not fit in memory at this size",
        }
    g = np.asarray(got)
    if g.shape != ref.shape:
        return {"ok": False, "reason": f"window shape {g.shape} != reference {ref.shape}"}
    bg = int(np.count_nonzero((g == 0) != (ref == 0)))
    fg = ref != 0
    pairs = np.unique(np.stack([ref[fg].astype(np.int64), g[fg].astype(np.int64)]), axis=1)
    n_ref, n_got = np.unique(pairs[0]).size, np.unique(pairs[1]).size
    ok = bg == 0 and pairs.shape[1] == n_ref == n_got
    return {
        "ok": ok,
        "background_mismatch": bg,
        "components_ref": int(n_ref),
        "components_got": int(n_got),
        "pairs": int(pairs.shape[1]),
    }


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
        return {
            "ok": False,
            "reason": f"labels differ: got {glab.size} labels, expected {ref['label'].size}",
        }
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
        elif o.kind == "labels":
            r = _compare_labels(got[o.name], ref[o.name])
        else:
            g = np.asarray(got[o.name], dtype=np.float64)
            e = np.asarray(ref[o.name], dtype=np.float64)
            if g.shape != e.shape:
                r = {"ok": False, "reason": f"window shape {g.shape} != reference {e.shape}"}
            else:
                scale = float(np.nanmax(np.abs(e))) if e.size else 1.0
                diff = np.abs(g - e)
                nan_mismatch = int(np.count_nonzero(np.isnan(g) != np.isnan(e)))
                max_abs = (
                    float(np.nanmax(diff)) if diff.size and not np.all(np.isnan(diff)) else 0.0
                )
                ok = nan_mismatch == 0 and bool(
                    np.all((diff <= wl.atol * scale + wl.rtol * np.abs(e)) | np.isnan(e))
                )
                r = {
                    "ok": ok,
                    "max_abs_err": max_abs,
                    "scale": scale,
                    "nan_mismatch": nan_mismatch,
                    "cells": int(math.prod(g.shape)),
                }
        report["outputs"][o.name] = r
        report["ok"] = report["ok"] and bool(r["ok"])
    return report


# --------------------------------------------------------------------------- registry

_CUBE = ("time", "y", "x")

WORKLOADS: dict[str, Workload] = {
    w.key: w
    for w in (
        Workload(
            "w1_band_math",
            "W1",
            "band math (a − b)/(a + b)",
            "map",
            ("a", "b"),
            (OutputSpec("out", "array", _CUBE),),
            _ref_band_math,
            operators=("array.band_math",),
        ),
        Workload(
            "w2_mean",
            "W2a",
            "per-pixel mean over time",
            "reduce",
            ("a",),
            (OutputSpec("mean", "array", ("y", "x")),),
            _ref_mean,
            operators=("array.reduce",),
        ),
        Workload(
            "w2_q90",
            "W2b",
            "per-pixel 90th percentile over time",
            "full_axis",
            ("a",),
            (OutputSpec("q90", "array", ("y", "x")),),
            _ref_q90,
            operators=("array.quantile",),
        ),
        Workload(
            "w3_anomaly",
            "W3",
            "anomaly against a day-of-year climatology",
            "full_axis",
            ("a",),
            (OutputSpec("anomaly", "array", _CUBE),),
            _ref_anomaly,
            operators=("array.deseason",),
        ),
        Workload(
            "w4_gaussian",
            "W4",
            f"3-D Gaussian, sigma {GAUSSIAN_SIGMA:g}, reflect edges",
            "map + halo",
            ("a",),
            (OutputSpec("smoothed", "array", _CUBE),),
            _ref_gaussian,
            operators=("array.gaussian",),
        ),
        Workload(
            "w5_label_stats",
            "W5",
            "statistics per label of a label volume",
            "aggregate → table",
            ("a", "labels"),
            (OutputSpec("stats", "table"),),
            _ref_label_stats,
            rtol=1e-5,
            operators=("array.label_stats",),
        ),
    )
}

CORE_WORKLOADS = tuple(WORKLOADS)

# One workload per domain plugin; run where the plugin registers its operators.
WORKLOADS.update(
    {
        w.key: w
        for w in (
            Workload(
                "ocean_mhw",
                "Ocean",
                "marine heatwaves (Hobday et al. 2016): climatology + events",
                "full_axis ×2",
                ("a",),
                (
                    OutputSpec("seas", "array", ("doy", "y", "x"), "float64"),
                    OutputSpec("thresh", "array", ("doy", "y", "x"), "float64"),
                    OutputSpec("count", "array", ("year", "y", "x")),
                    OutputSpec("days", "array", ("year", "y", "x")),
                ),
                _ref_mhw,
                rtol=1e-5,
                atol=1e-5,
                operators=("ocean.climatology", "ocean.marine_heatwaves"),
                domain="ocean",
                window=small_window,
            ),
            Workload(
                "medicine_label",
                "Med",
                "3-D connected components (6-connectivity) of a mask",
                "composite",
                ("mask",),
                (OutputSpec("labels", "labels", ("z", "y", "x"), "int32"),),
                _ref_label,
                operators=("medicine.label",),
                domain="medicine",
            ),
        )
    }
)

"""Chunk kernels of the medicine operators (imported by tasks, by dotted path).

Signatures follow :mod:`minjiang.core._operator`: Map kernels take ``(arrays, params,
ctx)`` and return ``{output: block}``; aggregates have ``partial(arrays, params, ctx)``,
``combine([state, ...], params)`` and ``finalize(state, params)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from minjiang.core.errors import ExecutionError
from minjiang.plugins.medicine._geometry import affine_of, median_size, sigma_voxels, spacing_of

__all__ = [
    "equivalences_combine",
    "equivalences_finalize",
    "equivalences_partial",
    "gaussian_block",
    "label_blocks",
    "median_block",
    "otsu_combine",
    "otsu_finalize",
    "otsu_partial",
    "range_combine",
    "range_finalize",
    "range_partial",
    "relabel_block",
    "threshold_block",
    "volumetrics_combine",
    "volumetrics_finalize",
    "volumetrics_partial",
    "window_block",
]


def _interior(x: np.ndarray, ctx: Any) -> np.ndarray:
    sl = []
    for d, n in zip(ctx.dims, x.shape, strict=True):
        lo, hi = ctx.halo.get(d, (0, 0))
        sl.append(slice(lo, n - hi))
    return x[tuple(sl)]


# -- medicine.hu_window ---------------------------------------------------------------
def window_center_width(params: Any, attrs: Mapping[str, Any]) -> tuple[float, float, str]:
    """Window from the parameters, else from the image's DICOM window attributes."""
    center = params.center if params.center is not None else attrs.get("window_center")
    width = params.width if params.width is not None else attrs.get("window_width")
    function = params.function or attrs.get("voi_lut_function") or "LINEAR"
    if center is None or width is None:
        raise ExecutionError(
            "medicine.hu_window: no window given and the image carries none; pass center and width"
        )
    return float(center), float(width), str(function)


def window_block(arrays: Mapping[str, Any], params: Any, ctx: Any) -> dict[str, Any]:
    """Modality LUT then VOI window of one block."""
    from minjiang.plugins.medicine.window import voi_window

    center, width, function = window_center_width(params, ctx.attrs.get("image", {}))
    out = voi_window(
        arrays["image"],
        center,
        width,
        function,
        y_min=params.y_min,
        y_max=params.y_max,
        slope=params.slope,
        intercept=params.intercept,
        dtype=params.dtype,
        backend="reference" if ctx.backend == "reference" else None,
    )
    return {"image": out}


# -- medicine.gaussian / medicine.median ----------------------------------------------
def gaussian_block(arrays: Mapping[str, Any], params: Any, ctx: Any) -> dict[str, Any]:
    """Gaussian filter of a block padded by the kernel radius; returns the interior."""
    from minjiang.kernels.gaussian import gaussian_valid

    spacing = spacing_of(ctx.attrs.get("image", {}), params.spacing, "medicine.gaussian")
    sigma = sigma_voxels(params.sigma_mm_zyx, spacing)
    x = arrays["image"]
    dtype = params.dtype or ("float64" if x.dtype == np.float64 else "float32")
    return {"image": gaussian_valid(x.astype(dtype, copy=False), sigma, truncate=params.truncate)}


def median_block(arrays: Mapping[str, Any], params: Any, ctx: Any) -> dict[str, Any]:
    """Median filter of a block padded by the window's half size; returns the interior."""
    from minjiang.kernels.median import median_valid

    spacing = spacing_of(ctx.attrs.get("image", {}), params.spacing, "medicine.median")
    return {"image": median_valid(arrays["image"], median_size(params.size_mm_zyx, spacing))}


# -- medicine.threshold ----------------------------------------------------------------
def _scalar(table: Any, column: str) -> float:
    col = table.column(column) if hasattr(table, "column") else table[column]
    values = col.to_numpy() if hasattr(col, "to_numpy") else np.asarray(col)
    return float(values[0])


def range_partial(arrays: Mapping[str, Any], params: Any, ctx: Any) -> dict[str, np.ndarray]:
    """Finite min, max and count of one block."""
    from minjiang.kernels.histogram import finite_range

    lo, hi, n = finite_range(arrays["image"])
    return {"min": np.array([lo]), "max": np.array([hi]), "count": np.array([n], dtype=np.int64)}


def range_combine(parts: Sequence[Mapping[str, Any]], params: Any) -> dict[str, np.ndarray]:
    """Global finite min, max and count."""
    mins = np.concatenate([np.asarray(p["min"], dtype=np.float64) for p in parts])
    maxs = np.concatenate([np.asarray(p["max"], dtype=np.float64) for p in parts])
    counts = np.concatenate([np.asarray(p["count"], dtype=np.int64) for p in parts])
    return {
        "min": np.array([mins.min()]),
        "max": np.array([maxs.max()]),
        "count": np.array([counts.sum()]),
    }


def range_finalize(state: Mapping[str, Any], params: Any) -> dict[str, Any]:
    """The one-row ``range`` table."""
    return {"range": {k: np.asarray(v) for k, v in state.items()}}


def _hist_range(arrays: Mapping[str, Any], params: Any) -> tuple[float, float, bool]:
    if params.range is not None:
        return float(params.range[0]), float(params.range[1]), True
    table = arrays.get("range")
    if table is None:
        raise ExecutionError(
            "medicine.threshold: Otsu needs a 'range' parameter or a range table input"
        )
    n = _scalar(table, "count")
    return _scalar(table, "min"), _scalar(table, "max"), n > 0


def otsu_partial(arrays: Mapping[str, Any], params: Any, ctx: Any) -> dict[str, np.ndarray]:
    """Histogram counts of one block over the global range."""
    from minjiang.kernels.histogram import histogram_partial

    lo, hi, any_value = _hist_range(arrays, params)
    bins = int(params.bins)
    counts = (
        histogram_partial(arrays["image"], bins, (lo, hi))
        if any_value
        else np.zeros(bins, np.int64)
    )
    return {"count": counts, "lo": np.full(bins, lo), "hi": np.full(bins, hi)}


def otsu_combine(parts: Sequence[Mapping[str, Any]], params: Any) -> dict[str, np.ndarray]:
    """Sum of the partial histograms."""
    from minjiang.kernels.histogram import histogram_combine

    acc = np.zeros(int(params.bins), np.int64)
    for p in parts:
        acc = histogram_combine(acc, np.asarray(p["count"]))
    first = parts[0]
    return {"count": acc, "lo": np.asarray(first["lo"]), "hi": np.asarray(first["hi"])}


def otsu_finalize(state: Mapping[str, Any], params: Any) -> dict[str, Any]:
    """Otsu's threshold of the global histogram, as a one-row ``threshold`` table."""
    from minjiang.kernels.histogram import histogram_edges, otsu_threshold

    counts = np.asarray(state["count"], dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        raise ExecutionError(
            "medicine.threshold: the image has no finite value inside the histogram range; "
            "check the input (all NaN?) or the 'range' parameter"
        )
    lo, hi = float(np.asarray(state["lo"])[0]), float(np.asarray(state["hi"])[0])
    edges = histogram_edges(int(params.bins), (lo, hi))
    t = otsu_threshold(counts, edges)
    return {
        "threshold": {
            "threshold": np.array([t]),
            "lo": np.array([edges[0]]),
            "hi": np.array([edges[-1]]),
            "bins": np.array([int(params.bins)], dtype=np.int64),
            "count": np.array([total]),
        }
    }


def threshold_block(arrays: Mapping[str, Any], params: Any, ctx: Any) -> dict[str, Any]:
    """Mask (uint8 0/1) of the voxels above (or at/below) the threshold; NaN is 0."""
    t = params.value if params.value is not None else _scalar(arrays["threshold"], "threshold")
    x = arrays["image"]
    mask = (x > t) if params.direction == "above" else (x <= t)
    if x.dtype.kind == "f":
        mask &= ~np.isnan(x)
    return {"mask": mask.astype(np.uint8)}


# -- medicine.label ----------------------------------------------------------------------
def _label_dtype(ctx: Any) -> type[np.integer]:
    # labels never exceed the number of cells (1 + a global C-order index): int32 while
    # that fits, as the operators' outputs declare
    cells = 1
    for d in ctx.dims:
        cells *= int(ctx.sizes[d])
    return np.int32 if cells < (1 << 31) else np.int64


def label_blocks(arrays: Mapping[str, Any], params: Any, ctx: Any) -> dict[str, Any]:
    """Label one block; each label is 1 + the global C-order index of its first voxel."""
    from minjiang.kernels.label import label_global

    shape = tuple(int(ctx.sizes[d]) for d in ctx.dims)
    labels, _ = label_global(
        arrays["mask"], params.connectivity, ctx.origin, shape, dtype=_label_dtype(ctx)
    )
    return {"labels": labels}


def label_volume(arrays: Mapping[str, Any], params: Any, ctx: Any) -> dict[str, Any]:
    """Label the whole volume: 1..n numbered by first voxel in C order, as the blocked
    path's relabel numbers them."""
    from minjiang.kernels.label import label_local

    labels, _ = label_local(arrays["mask"], params.connectivity, dtype=_label_dtype(ctx))
    return {"labels": labels}


def equivalences_partial(arrays: Mapping[str, Any], params: Any, ctx: Any) -> dict[str, np.ndarray]:
    """Label pairs touching across this block's faces, plus (l, l) for every label in it."""
    from minjiang.kernels.label import face_equivalences, labels_present

    padded = np.asarray(arrays["labels"])
    halo = tuple(ctx.halo.get(d, (0, 0)) for d in ctx.dims)
    pairs = face_equivalences(padded, params.connectivity, halo)
    own = labels_present(_interior(padded, ctx))
    return {"a": np.concatenate([own, pairs[:, 0]]), "b": np.concatenate([own, pairs[:, 1]])}


def equivalences_combine(parts: Sequence[Mapping[str, Any]], params: Any) -> dict[str, np.ndarray]:
    """Union-find over all pairs, kept as (label, root) rows: one row per label."""
    from minjiang.kernels.label import union_find_roots

    a = (
        np.concatenate([np.asarray(p["a"], dtype=np.int64) for p in parts])
        if parts
        else np.zeros(0, np.int64)
    )
    b = (
        np.concatenate([np.asarray(p["b"], dtype=np.int64) for p in parts])
        if parts
        else np.zeros(0, np.int64)
    )
    labels, roots = union_find_roots(np.stack([a, b], axis=1), a)
    return {"a": labels, "b": roots}


def equivalences_finalize(state: Mapping[str, Any], params: Any) -> dict[str, Any]:
    """The relabelling table ``old -> new`` (consecutive, in order of first voxel)."""
    from minjiang.kernels.label import union_find_relabel

    a = np.asarray(state["a"], dtype=np.int64)
    b = np.asarray(state["b"], dtype=np.int64)
    old, new = union_find_relabel(np.stack([a, b], axis=1), a)
    return {"equivalences": {"old": old, "new": new}}


def relabel_block(arrays: Mapping[str, Any], params: Any, ctx: Any) -> dict[str, Any]:
    """Map a block of provisional labels through the ``equivalences`` table."""
    from minjiang.kernels.label import relabel

    table = arrays["equivalences"]
    old = table.column("old").to_numpy() if hasattr(table, "column") else np.asarray(table["old"])
    new = table.column("new").to_numpy() if hasattr(table, "column") else np.asarray(table["new"])
    return {"labels": relabel(arrays["labels"], old, new, dtype=_label_dtype(ctx))}


# -- medicine.volumetrics ---------------------------------------------------------------
# The geometry travels with every partial row (the same values in every block) so that
# physical quantities are derived once, at finalize, from the exactly combined integer
# counts and index sums: volumes and world centroids do not depend on the chunking.
_GEOMETRY = ("voxel_ml", *(f"a{i}{j}" for i in range(3) for j in range(4)))


def _geometry_attrs(ctx: Any, params: Any) -> tuple[tuple[float, float, float], np.ndarray]:
    attrs = dict(ctx.attrs.get("image") or {})
    if "spacing" not in attrs and params.spacing is None:
        attrs = dict(ctx.attrs.get("labels") or {})
    spacing = spacing_of(attrs, params.spacing, "medicine.volumetrics")
    return spacing, affine_of(attrs, spacing)


def volumetrics_partial(arrays: Mapping[str, Any], params: Any, ctx: Any) -> dict[str, np.ndarray]:
    """Per-label partial statistics of one block, with the image geometry on every row."""
    from minjiang.plugins.medicine.volumetry import label_stats

    spacing, affine = _geometry_attrs(ctx, params)
    stats = label_stats(arrays["labels"], arrays.get("image"), ctx.origin)
    n = stats["label"].size
    geometry = (spacing[0] * spacing[1] * spacing[2] / 1000.0, *np.asarray(affine)[:3].ravel())
    for name, value in zip(_GEOMETRY, geometry, strict=True):
        stats[name] = np.full(n, float(value))
    return stats


def volumetrics_combine(parts: Sequence[Mapping[str, Any]], params: Any) -> dict[str, np.ndarray]:
    """Merge partials label by label (integers as integers) and keep the geometry once."""
    from minjiang.plugins.medicine.volumetry import combine_stats

    out = combine_stats(parts)
    rows = [p for p in parts if np.asarray(p["label"]).size]
    geometry = np.array([[float(np.asarray(p[k])[0]) for k in _GEOMETRY] for p in rows])
    if geometry.size and not (geometry == geometry[0]).all():
        raise ExecutionError(
            "medicine.volumetrics: the blocks of one image disagree on its spacing or affine; "
            "the input's attributes changed while it was read"
        )
    first = geometry[0] if geometry.size else np.full(len(_GEOMETRY), np.nan)
    for k, value in zip(_GEOMETRY, first, strict=True):
        out[k] = np.full(out["label"].size, value)
    return out


def volumetrics_finalize(state: Mapping[str, Any], params: Any) -> dict[str, Any]:
    """The ``volumes`` table: one row per label."""
    s = {k: np.asarray(v) for k, v in state.items()}
    n = s["count"].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(s["valid"] > 0, s["isum"] / np.maximum(s["valid"], 1), np.nan)
    none = s["valid"] == 0
    rot = np.stack([[s[f"a{i}{j}"] for j in range(3)] for i in range(3)])  # (3, 3, labels)
    shift = np.stack([s[f"a{i}3"] for i in range(3)])  # (3, labels)
    index = np.stack([s["sum_z"], s["sum_y"], s["sum_x"]]) / n  # centroids in voxel indices
    world = np.einsum("ijn,jn->in", rot, index) + shift
    table = {
        "label": s["label"].astype(np.int64),
        "voxel_count": s["count"].astype(np.int64),
        "volume_ml": s["count"] * s["voxel_ml"],
        "centroid_z": s["sum_z"] / n,
        "centroid_y": s["sum_y"] / n,
        "centroid_x": s["sum_x"] / n,
        "centroid_x_mm": world[0],
        "centroid_y_mm": world[1],
        "centroid_z_mm": world[2],
        "bbox_z0": s["z0"].astype(np.int64),
        "bbox_y0": s["y0"].astype(np.int64),
        "bbox_x0": s["x0"].astype(np.int64),
        "bbox_z1": s["z1"].astype(np.int64),
        "bbox_y1": s["y1"].astype(np.int64),
        "bbox_x1": s["x1"].astype(np.int64),
        "mean": mean,
        "min": np.where(none, np.nan, s["imin"]),
        "max": np.where(none, np.nan, s["imax"]),
    }
    return {"volumes": table}

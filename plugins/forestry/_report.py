"""Quick-look reports of the forestry plugin (PNG)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["chm_quicklook", "index_quicklook", "reports", "severity_quicklook"]

#: colours of the severity classes 0..7 (no data, regrowth high/low, unburned, low,
#: moderate-low, moderate-high, high), after the USGS/UN-SPIDER legend
_COLOURS = [
    "#ffffff",
    "#7a8737",
    "#acbe4d",
    "#0ae042",
    "#fff70b",
    "#ffaf38",
    "#ff641b",
    "#a41fd6",
]


def _find(results: Mapping[str, Any], variable: str) -> Any:
    for res in reversed(list(results.values())):
        try:
            ds = res.to_xarray()
        except Exception:  # a result without arrays (a table) has nothing to draw
            continue
        if variable in ds.data_vars:
            return ds[variable]
    return None


def severity_quicklook(results: Mapping[str, Any], directory: Path) -> list[Path]:
    """Write ``severity.png``: dNBR (diverging colours) and the severity classes.

    Returns the written file, or nothing when no result holds ``dnbr`` and ``severity``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from minjiang.plugins.forestry.severity import CLASS_NAMES

    dnbr, cls = _find(results, "dnbr"), _find(results, "severity")
    if dnbr is None or cls is None:
        return []
    fig = Figure(figsize=(12, 5), dpi=100)
    FigureCanvasAgg(fig)
    a1, a2 = fig.subplots(1, 2)
    im = a1.imshow(
        np.asarray(dnbr.values), cmap="RdYlGn_r", vmin=-0.5, vmax=1.0, interpolation="nearest"
    )
    fig.colorbar(im, ax=a1, shrink=0.8, label="dNBR")
    a1.set_title("dNBR = NBR_pre - NBR_post")
    cmap = ListedColormap(_COLOURS)
    a2.imshow(
        np.asarray(cls.values),
        cmap=cmap,
        norm=BoundaryNorm(np.arange(-0.5, 8.5), cmap.N),
        interpolation="nearest",
    )
    a2.set_title("severity (USGS, Key & Benson 2006)")
    a2.legend(
        handles=[Patch(color=c, label=n) for c, n in zip(_COLOURS, CLASS_NAMES, strict=True)],
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        fontsize=8,
    )
    for ax in (a1, a2):
        ax.set_axis_off()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / "severity.png"
    fig.savefig(out, bbox_inches="tight")
    return [out]


def _extent(da: Any) -> tuple[float, float, float, float] | None:
    """imshow extent (left, right, bottom, top) from the array's transform."""
    t = da.attrs.get("transform")
    if t is None:
        return None
    a, _, c, _, e, f = (float(v) for v in t)
    ny, nx = da.shape[-2:]
    return (c, c + a * nx, f + e * ny, f)


def _save(fig: Any, directory: Path, name: str) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / name
    fig.savefig(out, bbox_inches="tight")
    return out


def index_quicklook(results: Mapping[str, Any], directory: Path) -> list[Path]:
    """Write ``index.png``: every spectral-index map among the results, one panel each.

    A spectral index is an array written by ``forestry.spectral_index`` (it carries the
    ``formula`` attribute); the colour scale spans its 2nd to 98th percentile. Returns
    the written file, or nothing when no result holds an index.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    maps = []
    for step, res in results.items():
        try:
            ds = res.to_xarray()
        except Exception:  # a result without arrays (a table) has nothing to draw
            continue
        for name, da in ds.data_vars.items():
            if "formula" in da.attrs and da.ndim == 2:
                maps.append((step, str(name), da))
    if not maps:
        return []
    fig = Figure(figsize=(6 * len(maps), 5), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(maps), squeeze=False)[0]
    for ax, (step, name, da) in zip(axes, maps, strict=True):
        v = np.asarray(da.values, dtype=np.float64)
        lo, hi = np.nanpercentile(v, [2, 98]) if np.isfinite(v).any() else (0.0, 1.0)
        im = ax.imshow(
            v, cmap="RdYlGn", vmin=lo, vmax=hi, interpolation="nearest", extent=_extent(da)
        )
        fig.colorbar(im, ax=ax, shrink=0.8, label=str(da.attrs.get("long_name", name)))
        ax.set_title(f"{step}: {da.attrs.get('long_name', name)} = {da.attrs['formula']}")
        ax.tick_params(labelsize=7)
    return [_save(fig, directory, "index.png")]


def chm_quicklook(results: Mapping[str, Any], directory: Path) -> list[Path]:
    """Write ``chm.png``: the canopy height model (the pit-free one when computed), with
    the tree tops of a ``tops`` table among the results drawn as points.

    Returns the written file, or nothing when no result holds ``chm``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    chm = _find(results, "chm_pitfree")
    if chm is None:
        chm = _find(results, "chm")
    if chm is None:
        return []
    tops = None
    for res in results.values():
        try:
            tops = res.table("tops").to_pandas()
            break
        except Exception:  # not a tree-top result
            continue
    fig = Figure(figsize=(9, 7), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    v = np.asarray(chm.values, dtype=np.float64)
    hi = float(np.nanpercentile(v, 99.5)) if np.isfinite(v).any() else 1.0
    im = ax.imshow(v, cmap="viridis", vmin=0, vmax=hi, interpolation="nearest", extent=_extent(chm))
    units = str(chm.attrs.get("units", "") or "z units")
    fig.colorbar(im, ax=ax, shrink=0.8, label=f"canopy height ({units})")
    title = "pit-free CHM" if chm.name == "chm_pitfree" else "CHM = max(DSM - DTM, 0)"
    if tops is not None and len(tops):
        ax.scatter(tops["x"], tops["y"], s=4, c="red", marker="^", linewidths=0)
        title += f", {len(tops)} tree tops"
    ax.set_title(title)
    ax.tick_params(labelsize=7)
    return [_save(fig, directory, "chm.png")]


def reports() -> list[Any]:
    """The plugin's reports: ``forestry.severity_quicklook``, ``forestry.index_quicklook``,
    ``forestry.chm_quicklook``."""
    from minjiang.core import Report

    return [
        Report(
            name="forestry.severity_quicklook",
            function=severity_quicklook,
            steps=("severity",),
            description="PNG: dNBR and the burn severity classes.",
        ),
        Report(
            name="forestry.index_quicklook",
            function=index_quicklook,
            description="PNG: the spectral-index maps of a run (forestry.spectral_index).",
        ),
        Report(
            name="forestry.chm_quicklook",
            function=chm_quicklook,
            description="PNG: the canopy height model with its tree tops.",
        ),
    ]

"""Quick-look reports of the forestry plugin (PNG)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["reports", "severity_quicklook"]

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


def reports() -> list[Any]:
    """The plugin's reports: ``forestry.severity_quicklook``."""
    from minjiang.core import Report

    return [
        Report(
            name="forestry.severity_quicklook",
            function=severity_quicklook,
            steps=("severity",),
            description="PNG: dNBR and the burn severity classes.",
        )
    ]

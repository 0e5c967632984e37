"""Quick-look figure of a structure report: g(r) with n(r), and the MSD with its fit."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["quicklook", "reports"]


def _table(results: Mapping[str, Any], name: str) -> Any:
    for res in reversed(list(results.values())):
        try:
            return res.table(name).to_pandas()
        except Exception:  # a result without that table
            continue
    return None


def quicklook(results: Mapping[str, Any], directory: Path) -> list[Path]:
    """Write ``structure.png``: g(r) with the coordination number n(r) (right axis), and
    the MSD per species against lag time with the fitted line and D in the legend.

    Parameters
    ----------
    results
        Step id -> ``Result`` of a run; the last results with an ``rdf`` table and with
        ``msd`` (and ``diffusion``) tables are drawn.
    directory
        Where to write the PNG.

    Returns
    -------
    list of pathlib.Path
        The written file (empty when no result has an ``rdf`` or ``msd`` table).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rdf, msd, diff = _table(results, "rdf"), _table(results, "msd"), _table(results, "diffusion")
    if rdf is None and msd is None:
        return []
    fig = Figure(figsize=(10, 4), dpi=110)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    if rdf is not None:
        ax = axes[0]
        ax.plot(rdf["r"], rdf["g"], color="C0", label="g(r)")
        ax.axhline(1.0, color="0.7", lw=0.8)
        ax.set_xlabel("r (Å)")
        ax.set_ylabel("g(r)", color="C0")
        ax2 = ax.twinx()
        ax2.plot(rdf["r_hi"], rdf["coordination"], color="C1", label="n(r)")
        ax2.set_ylabel("coordination number n(r)", color="C1")
        ax.set_title(f"g(r), {int(rdf['frames'][0])} frames")
    if msd is not None:
        ax = axes[1]
        for i, (species, part) in enumerate(msd.groupby("species", sort=True)):
            part = part.sort_values("lag")
            ax.plot(part["lag_time"], part["msd"], color=f"C{i}", label=f"{species}")
            if diff is not None:
                row = diff[diff["species"] == species]
                if len(row):
                    r = row.iloc[0]
                    t = np.linspace(r["fit_t0"], r["fit_t1"], 2)
                    ax.plot(
                        t,
                        r["slope"] * t + r["intercept"],
                        color=f"C{i}",
                        ls="--",
                        label=f"fit: D = {r['D']:.3g} Å²/time",
                    )
        ax.set_xlabel("lag time")
        ax.set_ylabel("MSD (Å²)")
        ax.set_title("mean squared displacement")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(directory) / "structure.png"
    fig.savefig(path)
    return [path]


def reports() -> list[Any]:
    """The plugin's reports: ``materials.structure_quicklook``."""
    from minjiang.core import Report

    return [
        Report(
            name="materials.structure_quicklook",
            function=quicklook,
            description="PNG: g(r) with the coordination number, MSD per species with its fit.",
        )
    ]

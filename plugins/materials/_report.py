"""Quick-look figure of a materials run: g(r) with n(r), the MSD with its fit, S2(r)."""

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
    """Write ``structure.png`` with one panel per table the run produced: g(r) with the
    coordination number n(r) (right axis); the MSD per species against lag time with
    the fitted line and D in the legend; S2(r) with the phase fraction φ and φ².

    Parameters
    ----------
    results
        Step id -> ``Result`` of a run; the last results with an ``rdf``, an ``msd`` (and
        ``diffusion``) and an ``s2`` table are drawn.
    directory
        Where to write the PNG.

    Returns
    -------
    list of pathlib.Path
        The written file (empty when no result has any of these tables).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rdf, msd, diff = _table(results, "rdf"), _table(results, "msd"), _table(results, "diffusion")
    s2 = _table(results, "s2")
    panels = [name for name, t in (("rdf", rdf), ("msd", msd), ("s2", s2)) if t is not None]
    if not panels:
        return []
    fig = Figure(figsize=(5 * len(panels), 4), dpi=110)
    FigureCanvasAgg(fig)
    axes = dict(zip(panels, np.atleast_1d(fig.subplots(1, len(panels))), strict=True))
    if rdf is not None:
        ax = axes["rdf"]
        ax.plot(rdf["r"], rdf["g"], color="C0", label="g(r)")
        ax.axhline(1.0, color="0.7", lw=0.8)
        ax.set_xlabel("r (Å)")
        ax.set_ylabel("g(r)", color="C0")
        ax2 = ax.twinx()
        ax2.plot(rdf["r_hi"], rdf["coordination"], color="C1", label="n(r)")
        ax2.set_ylabel("coordination number n(r)", color="C1")
        ax.set_title(f"g(r), {int(rdf['frames'][0])} frames")
    if msd is not None:
        ax = axes["msd"]
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
    if s2 is not None:
        ax = axes["s2"]
        phi = float(s2["phase_fraction"][0])
        ax.plot(s2["r"], s2["s2"], marker=".", color="C2", label="S₂(r)")
        ax.axhline(phi, color="0.6", ls=":", label="φ")
        ax.axhline(phi * phi, color="0.6", ls="--", label="φ²")
        ax.set_xlabel("r")
        ax.set_ylabel("S₂(r)")
        ax.set_title("two-point correlation")
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
            description="PNG: g(r) with the coordination number, MSD per species with its fit, "
            "S2(r) of a phase (the panels whose tables the run produced).",
        )
    ]

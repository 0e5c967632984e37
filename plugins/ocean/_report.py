"""Quicklook report of ``ocean.mhw_report``: one PNG with a map and a time series."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["quicklook", "reports"]


def quicklook(results: dict[str, Any], directory: Path) -> list[Path]:
    """Draw MHW days of the year with the most of them (map) and the regional index (time series).

    Parameters
    ----------
    results
        Step id -> Result of an ``ocean.mhw_report`` run (needs ``heatwaves`` and ``index``).
    directory
        Where to write ``quicklook.png``.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    mhw = results["heatwaves"].to_xarray()
    index = results["index"].to_xarray()
    days = mhw["days"]
    totals = np.nan_to_num(np.asarray(days.sum(days.dims[1:]).values))
    k = int(np.argmax(totals))
    year = int(days["year"].values[k]) if "year" in days.coords else k
    last = np.asarray(days.isel(year=k).values)
    ydim, xdim = days.dims[1], days.dims[2]

    fig, (ax_map, ax_ts) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    if ydim in mhw.coords and xdim in mhw.coords:
        mesh = ax_map.pcolormesh(
            mhw[xdim].values, mhw[ydim].values, last, shading="auto", cmap="inferno"
        )
        ax_map.set_xlabel(xdim)
        ax_map.set_ylabel(ydim)
    else:
        mesh = ax_map.imshow(last, origin="lower", cmap="inferno")
    fig.colorbar(mesh, ax=ax_map, label="MHW days")
    ax_map.set_title(f"Marine heatwave days in {year}")

    mean = index["mean"]
    names = list(mean.attrs.get("regions", [])) or [str(i) for i in range(mean.shape[0])]
    for r, name in enumerate(names):
        ax_ts.plot(mean["time"].values, np.asarray(mean.isel(region=r).values), lw=0.8, label=name)
    ax_ts.axhline(0.0, color="0.5", lw=0.5)
    ax_ts.set_title("Area-weighted mean anomaly")
    ax_ts.set_ylabel(str(mean.attrs.get("units", "")))
    ax_ts.legend(loc="upper left", fontsize=8)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / "quicklook.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return [out]


def reports() -> list[Any]:
    """The plugin's reports: ``ocean.mhw_quicklook`` (reads ``heatwaves`` and ``index``)."""
    from minjiang.core import Report

    return [
        Report(
            name="ocean.mhw_quicklook",
            function=quicklook,
            steps=("heatwaves", "index"),
            description="PNG: marine heatwave days of the year with the most, and the "
            "area-weighted mean anomaly.",
        )
    ]

"""Quick-look report of a lesion volumetry run: three orthogonal slices with the labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["quicklook", "reports"]


def _pick(results: dict[str, Any], variable: str) -> Any:
    for res in reversed(list(results.values())):
        try:
            ds = res.to_xarray()
        except Exception:
            continue
        if variable in ds.data_vars:
            return ds[variable]
    return None


def quicklook(results: dict[str, Any], directory: Path) -> list[Path]:
    """Write ``quicklook.png``: axial, coronal and sagittal slices through the largest
    label's centroid (the volume centre when there is none), labels overlaid.

    Parameters
    ----------
    results
        Step id -> ``Result`` of a run; the first result with an ``image`` array and
        the last with a ``labels`` array are drawn.
    directory
        Where to write the PNG.

    Returns
    -------
    list of pathlib.Path
        The written file (empty when no result has an ``image`` array).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    image = None
    for res in results.values():
        try:
            ds = res.to_xarray()
        except Exception:
            continue
        if "image" in ds.data_vars and ds["image"].ndim == 3:
            image = ds["image"]
            break
    if image is None:
        return []
    labels = _pick(results, "labels")
    shape = image.shape
    centre = [s // 2 for s in shape]
    if labels is not None:
        lab = np.asarray(labels.values)
        if lab.any():
            ids, counts = np.unique(lab[lab > 0], return_counts=True)
            zz, yy, xx = np.nonzero(lab == ids[np.argmax(counts)])
            centre = [int(np.mean(zz)), int(np.mean(yy)), int(np.mean(xx))]
    else:
        lab = None
    spacing = list(image.attrs.get("spacing", [1.0, 1.0, 1.0]))
    vol = image
    views = [
        (
            "axial",
            vol[centre[0], :, :].values,
            None if lab is None else lab[centre[0]],
            spacing[1] / spacing[2],
        ),
        (
            "coronal",
            vol[:, centre[1], :].values,
            None if lab is None else lab[:, centre[1]],
            spacing[0] / spacing[2],
        ),
        (
            "sagittal",
            vol[:, :, centre[2]].values,
            None if lab is None else lab[:, :, centre[2]],
            spacing[0] / spacing[1],
        ),
    ]
    if image.attrs.get("units") == "HU":  # soft-tissue window: lesions stand out
        lo, hi = -160.0, 240.0
    else:
        finite = np.concatenate([v[1][np.isfinite(v[1])].ravel() for v in views])
        lo, hi = np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0)
    fig = Figure(figsize=(12, 4.4), dpi=100)
    FigureCanvasAgg(fig)
    rng = np.random.default_rng(0)
    colours = np.concatenate(
        [[[0, 0, 0, 0]], np.c_[rng.uniform(0.3, 1, (255, 3)), np.full(255, 0.6)]]
    )
    cmap = ListedColormap(colours)
    for ax, (title, plane, lplane, aspect) in zip(fig.subplots(1, 3), views, strict=True):
        origin = "upper" if title == "axial" else "lower"  # slice index grows upwards
        ax.imshow(
            plane,
            cmap="gray",
            vmin=lo,
            vmax=hi,
            aspect=aspect,
            origin=origin,
            interpolation="nearest",
        )
        if lplane is not None and lplane.any():
            ax.imshow(
                np.where(lplane > 0, 1 + (lplane - 1) % 255, 0),
                cmap=cmap,
                vmin=0,
                vmax=255,
                aspect=aspect,
                origin=origin,
                interpolation="nearest",
            )
        ax.set_title(title)
        ax.set_axis_off()
    n = 0 if lab is None else len(np.unique(lab[lab > 0]))
    fig.suptitle(
        f"{n} labelled component(s); slices through ({centre[0]}, {centre[1]}, {centre[2]})"
    )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / "quicklook.png"
    fig.savefig(out)
    return [out]


def reports() -> list[Any]:
    """The plugin's reports: ``medicine.lesion_quicklook``."""
    from minjiang.core import Report

    return [
        Report(
            name="medicine.lesion_quicklook",
            function=quicklook,
            description="PNG: axial, coronal and sagittal slices through the largest lesion, "
            "labels overlaid.",
        )
    ]

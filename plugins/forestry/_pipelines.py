"""Named pipelines of the forestry plugin."""

from __future__ import annotations

from typing import Any

from minjiang.core import Pipeline

__all__ = ["burn_severity", "canopy_inventory"]


def burn_severity() -> Pipeline:
    """``forestry.burn_severity``: pre/post NIR and SWIR2 GeoTIFFs -> NBR -> dNBR and classes.

    Inputs (one single-band GeoTIFF each, all on one grid, reflectance or scaled
    integers): ``pre_nir``, ``pre_swir2``, ``post_nir``, ``post_swir2``. Steps: four
    ``forestry.raster`` ingests, ``nbr_pre`` and ``nbr_post`` (``forestry.spectral_index``
    NBR, ``(N - S2) / (N + S2)``), ``severity`` (``forestry.dnbr``: dNBR, RdNBR, RBR and
    the USGS classes). The report is a PNG of dNBR and the severity classes.
    """
    steps: list[dict[str, object]] = []
    for when in ("pre", "post"):
        for band in ("nir", "swir2"):
            steps.append(
                {"id": f"{when}_{band}", "reader": "forestry.raster", "paths": f"${when}_{band}"}
            )
        steps.append(
            {
                "id": f"nbr_{when}",
                "operator": "forestry.spectral_index",
                "inputs": {"N": f"{when}_nir", "S2": f"{when}_swir2"},
                "params": {"index": "NBR", "output": "nbr"},
            }
        )
    steps.append(
        {
            "id": "severity",
            "operator": "forestry.dnbr",
            "inputs": {"pre": "nbr_pre", "post": "nbr_post"},
        }
    )
    return Pipeline.model_validate(
        {
            "name": "forestry.burn_severity",
            "version": "1",
            "description": "Burn severity from pre- and post-fire NIR/SWIR2: NBR, dNBR, RdNBR, "
            "RBR and the USGS (Key & Benson 2006) classes.",
            "inputs": ["pre_nir", "pre_swir2", "post_nir", "post_swir2"],
            "steps": steps,
            "report": "forestry.severity_quicklook",
        }
    )


#: tree-top windows in metres (Popescu & Wynne 2004 style): 2 m + 0.1 h, 1 to 10 m
TREE_TOPS_METRES: dict[str, float] = {
    "a": 2.0,
    "b": 0.1,
    "min_window": 1.0,
    "max_window": 10.0,
    "min_height": 2.0,
}


def canopy_inventory(
    cell: float = 1.0,
    *,
    tile: int = 256,
    buffer: int = 64,
    pit_free: bool = True,
    tree_tops: dict[str, Any] | None = None,
) -> Pipeline:
    """``forestry.canopy_inventory``: a LAS/LAZ/COPC file -> DSM, DTM, CHM -> tree tops.

    Input ``points`` (one point cloud, classified: ground is class 2). Steps: ``lidar``
    (``forestry.lidar`` on a grid of ``cell`` in the file's horizontal units, tiles of
    ``tile`` cells), ``canopy`` (``forestry.canopy_height`` with a ``buffer``-cell
    halo, and the pit-free CHM when ``pit_free``), ``tops`` (``forestry.tree_tops`` on
    the pit-free CHM, else the CHM, with ``tree_tops`` parameters: default windows in
    metres, :data:`TREE_TOPS_METRES`; give them in the file's units for data in feet).
    The report is a PNG of the CHM with the tree tops (``forestry.chm_quicklook``).
    The registered pipeline is ``canopy_inventory()``: 1-unit cells.
    """
    chm = "canopy:chm_pitfree" if pit_free else "canopy:chm"
    return Pipeline.model_validate(
        {
            "name": "forestry.canopy_inventory",
            "version": "1",
            "description": "Canopy inventory from classified LiDAR: DSM (highest return), DTM "
            "(TIN of ground points), CHM (pit-free), variable-window tree tops, CHM quicklook.",
            "inputs": ["points"],
            "steps": [
                {
                    "id": "lidar",
                    "reader": "forestry.lidar",
                    "paths": "$points",
                    "params": {"cell": cell, "tile": tile},
                },
                {
                    "id": "canopy",
                    "operator": "forestry.canopy_height",
                    "inputs": {"grid": "lidar", "points": "lidar"},
                    "params": {"buffer": buffer, "pit_free": pit_free},
                },
                {
                    "id": "tops",
                    "operator": "forestry.tree_tops",
                    "inputs": {"chm": chm},
                    "params": dict(tree_tops if tree_tops is not None else TREE_TOPS_METRES),
                },
            ],
            "report": "forestry.chm_quicklook",
        }
    )

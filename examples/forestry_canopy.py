"""Canopy height and tree tops from aerial LiDAR with the forestry plugin.

Runs the ``forestry.canopy_inventory`` pipeline on a classified LAS/LAZ file (by
default laspy's ``autzen_trim.laz``, 110,000 points in feet, which ``make install``
extracts from laspy's source distribution into ``.venv/share/minjiang-data``):

* ``forestry.lidar``: the points streamed into a count grid of ``cell`` feet and a
  points table partitioned by grid tile;
* ``forestry.canopy_height``: DSM, TIN DTM, CHM and the pit-free CHM, tile by tile
  with a buffer of neighbouring points;
* ``forestry.tree_tops`` on the pit-free CHM (windows given in feet), and the CHM
  quick-look PNG;

then re-grids the stored points table at twice the cell (a coarser DSM) without
reading the LAZ file again.

    python examples/forestry_canopy.py                        # autzen, 3 ft cells
    python examples/forestry_canopy.py --laz tile.laz --cell 1 --executor ray
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FOOT = 0.3048
#: tree-top windows of 2 m + 0.1 h (1 to 10 m) and tops above 2 m, in feet
TREE_TOPS_FEET = {
    "a": 2.0 / FOOT,
    "b": 0.1,
    "min_window": 1.0 / FOOT,
    "max_window": 10.0 / FOOT,
    "min_height": 2.0 / FOOT,
}


def default_laz() -> Path:
    """laspy's autzen_trim.laz where ``make install`` puts it."""
    return Path(sys.prefix, "share", "minjiang-data", "autzen_trim.laz")


def main(
    workdir: Path | None = None,
    *,
    laz: Path | None = None,
    cell: float = 3.0,
    buffer: int = 32,
    executor: str = "local",
) -> dict[str, float]:
    """Run the example; return a few summary numbers."""
    import minjiang as mj
    from minjiang.plugins.forestry.canopy import grid_max

    laz = Path(laz or default_laz())
    if not laz.exists():
        raise SystemExit(f"{laz} not found: run `make install`, or give --laz")
    workdir = Path(workdir or tempfile.mkdtemp(prefix="minjiang-canopy-"))
    t0 = time.perf_counter()
    with mj.Runtime(store=workdir / "store", executor=executor) as rt:
        spec = rt.registry.pipeline("forestry.canopy_inventory").model_dump()
        for step in spec["steps"]:
            if step["id"] == "lidar":
                step["params"] = {**step["params"], "cell": cell}
            elif step["id"] == "canopy":
                step["params"] = {**step["params"], "buffer": buffer}
            elif step["id"] == "tops":
                step["params"] = dict(TREE_TOPS_FEET)
        out = rt.run_pipeline(mj.Pipeline.model_validate(spec), inputs={"points": str(laz)})
        canopy = out.results["canopy"].to_xarray()
        tops = out.results["tops"].table("tops").to_pandas()
        # the points table is by grid tile: re-grid it without reading the LAZ again
        grid = out.results["lidar"].to_xarray()["count"]
        _, _, left, _, _, top = grid.attrs["transform"]
        pts = out.results["lidar"].table("points")
        coarse = grid_max(
            pts.column("x").to_numpy(),
            pts.column("y").to_numpy(),
            pts.column("z").to_numpy(),
            left=left,
            top=top,
            cell=2 * cell,
            shape=(-(-grid.shape[0] // 2), -(-grid.shape[1] // 2)),
        )
        chm = canopy["chm"].values
        summary = {
            "cells": float(chm.size),
            "ground_cells": float(np.isfinite(canopy["dtm"].values).sum()),
            "chm_max_ft": float(np.nanmax(chm)),
            "chm_pitfree_max_ft": float(np.nanmax(canopy["chm_pitfree"].values)),
            "tree_tops": float(len(tops)),
            "tallest_top_ft": float(tops["height"].max()) if len(tops) else 0.0,
            "coarse_dsm_max_ft": float(np.nanmax(coarse)),
            "dsm_max_ft": float(np.nanmax(canopy["dsm"].values)),
            "reports": float(len(out.reports)),
            "seconds": time.perf_counter() - t0,
        }
    return summary


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--laz", type=Path, default=None)
    ap.add_argument("--cell", type=float, default=3.0, help="cell side, file units")
    ap.add_argument("--buffer", type=int, default=32, help="halo of each task, cells")
    ap.add_argument("--executor", default="local", choices=["local", "ray"])
    ap.add_argument("--workdir", type=Path, default=None)
    a = ap.parse_args()
    res = main(a.workdir, laz=a.laz, cell=a.cell, buffer=a.buffer, executor=a.executor)
    print(json.dumps(res, indent=2))

"""Quickstart: ingest a cube, smooth it, summarise it, and read the results back.

Run with ``python examples/quickstart.py [--executor ray]``; the default ``local``
executor runs in-process (no Ray start-up), ``ray`` starts a local Ray on demand.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import minjiang as mj
from minjiang.core._demo import make_demo_inputs


def main(executor: str = "local", workdir: Path | None = None, years: int = 1) -> dict[str, float]:
    workdir = Path(workdir or tempfile.mkdtemp(prefix="minjiang-quickstart-"))
    cube, regions = make_demo_inputs(workdir / "data", years=years, ny=24, nx=32)
    with mj.Runtime(store=workdir / "store", executor=executor) as rt:
        sst = rt.ingest("array.zarr", [cube], name="quickstart/sst")
        smooth = rt.run(
            "array.gaussian", inputs={"x": sst}, params={"sigma": {"time": 0, "y": 1, "x": 1}}
        )
        mean = rt.run(
            "array.reduce",
            inputs={"x": smooth},
            params={"dims": ["time"], "stat": "mean"},
            name="quickstart/sst-mean",
        )
        zones = rt.ingest("array.zarr", [regions], name="quickstart/regions")
        stats = rt.run("array.label_stats", inputs={"values": mean, "labels": zones})
        ds = mean.to_xarray()  # lazy, dask-backed
        table = stats.table("stats").to_pandas()  # one row per region
        print(ds)
        print(table)
        print("lineage:", rt.catalog.lineage(stats.id).edges)
        return {"mean_sst": float(ds["mean"].mean()), "regions": float(len(table))}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--executor", default="local", choices=["local", "ray"])
    main(parser.parse_args().executor)

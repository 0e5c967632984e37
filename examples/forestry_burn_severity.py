"""Burn severity and per-stand statistics with the forestry plugin.

Writes a small synthetic Sentinel-2-like scene as single-band GeoTIFFs (pre- and
post-fire NIR and SWIR2 as L2A integers, nodata 0, with a fire scar), and stand
polygons as GeoJSON (CRS84 longitude/latitude), then runs:

* the ``forestry.burn_severity`` pipeline: ingest (scale 1e-4 and offset -0.1 of
  Sentinel-2 L2A applied, nodata masked) -> NBR pre and post -> dNBR, RdNBR, RBR and
  the USGS severity classes -> quick-look PNG;
* ``forestry.zones`` + ``forestry.zonal_stats``: dNBR per stand (mean, max, median).

    python examples/forestry_burn_severity.py                 # small default, < 1 min
    python examples/forestry_burn_severity.py --size 2048 --executor ray
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

SCALE = {"scale": 1e-4, "offset": -0.1}  # Sentinel-2 L2A, processing baseline 04.00+


def write_scene(directory: Path, size: int = 256, seed: int = 3) -> dict[str, Path]:
    """Four single-band uint16 GeoTIFFs (UTM 33N, 20 m cells) with a burnt ellipse."""
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    veg = 0.6 + 0.2 * np.sin(6 * xx) * np.cos(4 * yy)
    nir = 0.25 + 0.15 * veg + rng.normal(0, 0.01, (size, size))
    swir2 = 0.12 - 0.05 * veg + rng.normal(0, 0.005, (size, size))
    burnt = ((xx - 0.55) / 0.3) ** 2 + ((yy - 0.45) / 0.2) ** 2 < 1
    depth = np.clip(1 - (((xx - 0.55) / 0.3) ** 2 + ((yy - 0.45) / 0.2) ** 2), 0, 1)
    bands = {
        "pre_nir": nir,
        "pre_swir2": swir2,
        "post_nir": np.where(burnt, nir * (1 - 0.6 * depth), nir),
        "post_swir2": np.where(burnt, swir2 * (1 + 1.2 * depth), swir2),
    }
    paths = {}
    directory.mkdir(parents=True, exist_ok=True)
    for name, refl in bands.items():
        dn = np.clip(np.round((refl + 0.1) / 1e-4), 1, 65535).astype(np.uint16)
        dn[:3, :] = 0  # a strip of nodata
        paths[name] = directory / f"{name}.tif"
        with rasterio.open(
            paths[name],
            "w",
            driver="GTiff",
            width=size,
            height=size,
            count=1,
            dtype="uint16",
            nodata=0,
            crs="EPSG:32633",
            transform=from_origin(500000.0, 4650000.0, 20.0, 20.0),
            tiled=True,
            blockxsize=256,
            blockysize=256,
        ) as dst:
            dst.write(dn[None])
    return paths


def write_stands(path: Path, size: int, n: int = 3) -> Path:
    """n x n square stands over the scene, as GeoJSON in CRS84 (lon/lat)."""
    from pyproj import Transformer

    to84 = Transformer.from_crs("EPSG:32633", "OGC:CRS84", always_xy=True)
    step = size * 20.0 / n
    feats = []
    for i in range(n):
        for j in range(n):
            x0, y1 = 500000.0 + j * step + 40, 4650000.0 - i * step - 40
            x1, y0 = x0 + step - 80, y1 - step + 80
            ring = [
                to84.transform(x, y) for x, y in [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]
            ]
            feats.append(
                {
                    "type": "Feature",
                    "properties": {"stand": i * n + j + 1, "name": f"stand {i}-{j}"},
                    "geometry": {"type": "Polygon", "coordinates": [ring]},
                }
            )
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return path


def main(
    workdir: Path | None = None, *, size: int = 256, executor: str = "local"
) -> dict[str, float]:
    """Run the example; return a few summary numbers."""
    import minjiang as mj

    workdir = Path(workdir or tempfile.mkdtemp(prefix="minjiang-forestry-"))
    paths = write_scene(workdir / "scene", size)
    stands = write_stands(workdir / "stands.geojson", size)
    t0 = time.perf_counter()
    with mj.Runtime(store=workdir / "store", executor=executor) as rt:
        spec = rt.registry.pipeline("forestry.burn_severity").model_dump()
        for step in spec["steps"]:  # Sentinel-2 L2A scale and offset on every ingest
            if step.get("reader") == "forestry.raster":
                step["params"] = {**(step.get("params") or {}), **SCALE}
        pipe = mj.Pipeline.model_validate(spec)
        out = rt.run_pipeline(pipe, inputs={k: str(v) for k, v in paths.items()})
        sev = out.results["severity"].to_xarray()
        classes = np.bincount(sev["severity"].values.ravel(), minlength=8)
        zones = rt.ingest(
            "forestry.zones", [stands, paths["pre_nir"]], params={"id_field": "stand"}
        )
        table = (
            rt.run(
                "forestry.zonal_stats",
                inputs={"values": out.results["severity"].id + ":dnbr", "zones": zones},
                params={"percentiles": [50]},
            )
            .table("stats")
            .to_pandas()
        )
        seconds = time.perf_counter() - t0
        print(f"{size} x {size} scene in {seconds:.1f} s; cells per severity class:")
        from minjiang.plugins.forestry.severity import CLASS_NAMES

        for name, count in zip(CLASS_NAMES, classes, strict=True):
            print(f"  {name:<24} {count}")
        print(
            table[["zone", "name", "count", "mean", "max", "p50"]].round(3).to_string(index=False)
        )
        for path in out.reports:
            print(f"quick look: {path}")
        return {
            "seconds": seconds,
            "high": float(classes[7]),
            "unburned": float(classes[3]),
            "nodata": float(classes[0]),
            "stands": float(len(table)),
            "max_stand_mean": float(table["mean"].max()),
            "reports": float(len(out.reports)),
        }


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--executor", default="local", choices=["local", "ray"])
    ap.add_argument("--workdir", type=Path)
    a = ap.parse_args()
    main(a.workdir, size=a.size, executor=a.executor)

"""Forestry workload: spectral index and zonal statistics over a synthetic scene.

Writes a synthetic two-band scene (uint16 digital numbers, nodata 0, tiled GeoTIFFs of
``--size`` x ``--size`` cells) and a grid of square stands (GeoJSON, CRS84), then times
on one runtime:

* ``ingest``: both bands with ``forestry.raster`` (scale 1e-4 and offset -0.1 applied,
  nodata masked, float32 out) and the stands with ``forestry.zones``;
* ``ndvi``: ``forestry.spectral_index`` NDVI;
* ``zonal``: ``forestry.zonal_stats`` of NDVI per stand (count, sum, mean, std, min, max);
* ``zonal_pct``: the same with exact percentiles (10, 50, 90);

and, as the I/O floor of ``ndvi``, the time to read its two input arrays from the store
and to write one float32 array of the same shape and chunks with zarr alone (no
kernel, no minjiang task machinery): the step cannot beat that on this disk.

    python benchmarks/forestry.py --size 4096                  # ~130 MiB of float32 per band
    python benchmarks/forestry.py --size 16384 --executor ray  # ~1 GiB per band (multi-GB run)

Results: a table on stdout and ``benchmarks/results/forestry-<date>.json`` (``--name``,
``--results``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def write_scene(directory: Path, size: int, seed: int = 0) -> dict[str, Path]:
    """Two uint16 tiled GeoTIFFs (NIR, red; 10 m, UTM 33N), written in row strips."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = {}
    strip = 512
    for band, base in (("nir", 3000), ("red", 800)):
        path = directory / f"{band}.tif"
        with rasterio.open(
            path,
            "w",
            driver="GTiff",
            width=size,
            height=size,
            count=1,
            dtype="uint16",
            nodata=0,
            crs="EPSG:32633",
            transform=from_origin(500000.0, 4650000.0, 10.0, 10.0),
            tiled=True,
            blockxsize=512,
            blockysize=512,
            BIGTIFF="IF_SAFER",
        ) as dst:
            for r0 in range(0, size, strip):
                h = min(strip, size - r0)
                yy, xx = np.mgrid[r0 : r0 + h, 0:size] / size
                v = base * (1.3 + np.sin(9 * xx) * np.cos(7 * yy)) + rng.normal(0, 40, (h, size))
                dn = np.clip(v + 1000, 1, 65535).astype(np.uint16)
                if r0 == 0:
                    dn[:2] = 0  # nodata
                dst.write(dn[None], window=Window(0, r0, size, h))
        paths[band] = path
    return paths


def write_stands(path: Path, size: int, n: int) -> Path:
    """n x n square stands over the scene (GeoJSON in CRS84)."""
    from pyproj import Transformer

    to84 = Transformer.from_crs("EPSG:32633", "OGC:CRS84", always_xy=True)
    step = size * 10.0 / n
    feats = []
    for i in range(n):
        for j in range(n):
            x0, y1 = 500000.0 + j * step, 4650000.0 - i * step
            ring = [
                to84.transform(x, y)
                for x, y in [
                    (x0, y1 - step),
                    (x0 + step, y1 - step),
                    (x0 + step, y1),
                    (x0, y1),
                    (x0, y1 - step),
                ]
            ]
            feats.append(
                {
                    "type": "Feature",
                    "properties": {"stand": i * n + j + 1},
                    "geometry": {"type": "Polygon", "coordinates": [ring]},
                }
            )
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return path


def io_floor(rt: object, nir: object, red: object) -> dict[str, float]:
    """Read both inputs from the store and write one float32 array like the output."""
    import zarr

    t0 = time.perf_counter()
    arrays = [r.to_xarray()[name] for r, name in ((nir, "nir"), (red, "red"))]  # type: ignore[attr-defined]
    total = 0
    for a in arrays:
        total += np.asarray(a.values).nbytes
    t_read = time.perf_counter() - t0
    shape, chunks = arrays[0].shape, arrays[0].encoding.get("chunks") or arrays[0].data.chunksize
    out = Path(tempfile.mkdtemp(prefix="forestry-floor-"))
    try:
        z = zarr.create_array(
            store=str(out / "f.zarr"), shape=shape, chunks=chunks, dtype="float32"
        )
        block = np.ones((chunks[0], shape[1]), np.float32)
        t0 = time.perf_counter()
        for r0 in range(0, shape[0], chunks[0]):
            h = min(chunks[0], shape[0] - r0)
            z[r0 : r0 + h] = block[:h]
        t_write = time.perf_counter() - t0
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {"read_s": t_read, "write_s": t_write, "floor_s": t_read + t_write, "read_bytes": total}


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048, help="cells per side")
    ap.add_argument("--stands", type=int, default=16, help="stands per side")
    ap.add_argument("--executor", default="local", choices=["local", "ray"])
    ap.add_argument("--memory-budget", default="512MiB")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--results", default=str(REPO / "benchmarks" / "results"))
    ap.add_argument("--name", default=None)
    args = ap.parse_args(argv)

    import minjiang as mj

    work = args.workdir or Path(tempfile.mkdtemp(prefix="minjiang-forestry-bench-"))
    t0 = time.perf_counter()
    scene = write_scene(work / "scene", args.size)
    stands = write_stands(work / "stands.geojson", args.size, args.stands)
    timings: dict[str, float] = {"write_scene_s": time.perf_counter() - t0}
    scale = {"scale": 1e-4, "offset": -0.1}
    with mj.Runtime(
        store=work / "store", executor=args.executor, memory_budget=args.memory_budget
    ) as rt:
        t0 = time.perf_counter()
        nir = rt.ingest("forestry.raster", scene["nir"], params={"bands": ["nir"], **scale})
        red = rt.ingest("forestry.raster", scene["red"], params={"bands": ["red"], **scale})
        zones = rt.ingest("forestry.zones", [stands, scene["nir"]], params={"id_field": "stand"})
        timings["ingest_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        ndvi = rt.run(
            "forestry.spectral_index", inputs={"N": nir, "R": red}, params={"index": "NDVI"}
        )
        timings["ndvi_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        zonal = rt.run("forestry.zonal_stats", inputs={"values": ndvi, "zones": zones})
        timings["zonal_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        pct = rt.run(
            "forestry.zonal_stats",
            inputs={"values": ndvi, "zones": zones},
            params={"percentiles": [10, 50, 90]},
        )
        timings["zonal_pct_s"] = time.perf_counter() - t0
        floor = io_floor(rt, nir, red)
        table = zonal.table("stats").to_pandas()
        n_cells = int(table["count"].sum())
        ptable = pct.table("stats").to_pandas()
        assert int(ptable["count"].sum()) == n_cells
        tasks = {
            "ndvi": ndvi.record.timings.get("tasks"),
            "zonal": zonal.record.timings.get("tasks"),
        }
    band_bytes = args.size * args.size * 4
    doc = {
        "workload": "forestry",
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "executor": args.executor,
        "memory_budget": args.memory_budget,
        "size": args.size,
        "stands": args.stands**2,
        "float32_bytes_per_band": band_bytes,
        "valid_cells": n_cells,
        "tasks": tasks,
        "timings": timings,
        "ndvi_io_floor": floor,
        "ndvi_over_floor": timings["ndvi_s"] / floor["floor_s"] if floor["floor_s"] else None,
        "ndvi_throughput_mb_s": 3 * band_bytes / timings["ndvi_s"] / 1e6,
    }
    print(
        f"forestry workload, {args.size} x {args.size} cells ({band_bytes / 2**20:.0f} MiB float32 per band), {args.executor}"
    )
    for k, v in timings.items():
        print(f"  {k:<16} {v:8.2f} s")
    print(
        f"  ndvi I/O floor   {floor['floor_s']:8.2f} s (read {floor['read_s']:.2f} s, write {floor['write_s']:.2f} s)"
    )
    print(f"  ndvi / floor     {doc['ndvi_over_floor']:8.2f}")
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    name = args.name or f"forestry-{_dt.date.today():%Y%m%d}"
    path = out / f"{name}.json"
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"saved {path}")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return doc


if __name__ == "__main__":
    main()

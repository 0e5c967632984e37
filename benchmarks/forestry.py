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

With ``--workload lidar`` (or ``all``): a synthetic classified point cloud of
``--points`` points (a tilted ground plane and conical crowns, 0.01 m quantised, LAZ
written chunk by chunk) over ``--extent`` metres, then

* ``lidar_ingest``: ``forestry.lidar`` at 1 m cells (count grid and points table);
* ``canopy``: ``forestry.canopy_height`` (DSM, DTM, CHM; buffer 32 cells);
* ``canopy_pitfree``: the same with the pit-free CHM;

against the peer on the same file in the same run: whitebox-workflows'
``lidar_block_maximum`` (DSM) and ``lidar_tin_gridding`` of the ground points (DTM),
one process on the whole file (when whitebox-workflows is installed).

    python benchmarks/forestry.py --workload lidar --points 2000000 --extent 1000

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
from typing import Any

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


def write_points(path: Path, n: int, extent: float, seed: int = 0) -> dict[str, float]:
    """A classified LAZ of ``n`` points over ``extent`` x ``extent`` m, written in chunks."""
    import laspy
    import pyproj

    rng = np.random.default_rng(seed)
    n_trees = max(1, int(extent * extent / 100.0))  # one crown per 100 m2
    tx, ty = rng.uniform(0, extent, n_trees), rng.uniform(0, extent, n_trees)
    th = rng.uniform(8, 30, n_trees)
    header = laspy.LasHeader(point_format=6, version="1.4")
    header.scales, header.offsets = [0.01] * 3, [500_000.0, 4_100_000.0, 0.0]
    header.add_crs(pyproj.CRS.from_user_input("EPSG:32610+5703"))
    ground_n = 0
    with laspy.open(str(path), mode="w", header=header) as w:
        for start in range(0, n, 1_000_000):
            m = min(1_000_000, n - start)
            x, y = rng.uniform(0, extent, m), rng.uniform(0, extent, m)
            # crowns: the highest cone over each point (nearest trees on a coarse lookup)
            h = np.zeros(m)
            cell = 10.0
            key = (np.floor(tx / cell) * 1e6 + np.floor(ty / cell)).astype(np.int64)
            order = np.argsort(key)
            sk = key[order]
            for dx in (-1, 0, 1):
                for dy in (-1, 0, 1):
                    q = ((np.floor(x / cell) + dx) * 1e6 + np.floor(y / cell) + dy).astype(np.int64)
                    i = np.searchsorted(sk, q)
                    ok = (i < sk.size) & (sk[np.minimum(i, sk.size - 1)] == q)
                    j = order[np.minimum(i, sk.size - 1)]
                    cone = th[j] - 2.0 * np.hypot(x - tx[j], y - ty[j])
                    h = np.maximum(h, np.where(ok, cone, 0.0))
            crown = h > 0.5
            ground = ~crown | (rng.random(m) < 0.3)
            z = 100.0 + 0.02 * x - 0.01 * y + np.where(ground, 0.0, h)
            pts = laspy.ScaleAwarePointRecord.zeros(m, header=header)
            pts.x, pts.y, pts.z = x + 500_000.0, y + 4_100_000.0, z
            pts.classification = np.where(ground, 2, 5).astype(np.uint8)
            pts.return_number = np.where(ground & crown, 2, 1).astype(np.uint8)
            pts.number_of_returns = np.where(crown, 2, 1).astype(np.uint8)
            w.write_points(pts)
            ground_n += int(ground.sum())
    return {"points": n, "ground_points": ground_n, "trees": n_trees, "bytes": path.stat().st_size}


def lidar_workload(rt: Any, work: Path, n: int, extent: float) -> dict[str, Any]:
    """Time ingest and canopy height on a synthetic LAZ, and whitebox on the same file."""
    t0 = time.perf_counter()
    laz = work / "points.laz"
    info = write_points(laz, n, extent)
    timings: dict[str, float] = {"write_laz_s": time.perf_counter() - t0}
    t0 = time.perf_counter()
    lid = rt.ingest("forestry.lidar", laz, params={"cell": 1.0, "tile": 256})
    timings["lidar_ingest_s"] = time.perf_counter() - t0
    shape = lid.to_xarray()["count"].shape
    for key, pit in (("canopy_s", False), ("canopy_pitfree_s", True)):
        t0 = time.perf_counter()
        res = rt.run(
            "forestry.canopy_height",
            inputs={"grid": lid, "points": lid},
            params={"buffer": 32, "pit_free": pit},
        )
        timings[key] = time.perf_counter() - t0
    tasks = res.record.timings.get("tasks")
    peer: dict[str, object] = {}
    try:
        import whitebox_workflows as wbw
    except ImportError:
        peer = {"whitebox": "not installed"}
    else:
        env = wbw.WbEnvironment()
        env.verbose = False
        t0 = time.perf_counter()
        las = env.read_lidar(str(laz))
        grid = env.lidar.interpolation_gridding
        grid.lidar_block_maximum(input=las, resolution=1.0)
        not_ground = ",".join(str(c) for c in range(256) if c != 2)
        grid.lidar_tin_gridding(input=las, resolution=1.0, excluded_classes=not_ground)
        peer = {"whitebox_dsm_dtm_s": time.perf_counter() - t0}
    return {
        **info,
        "extent_m": extent,
        "grid": list(shape),
        "timings": timings,
        "canopy_tasks": tasks,
        "peer": peer,
    }


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048, help="cells per side")
    ap.add_argument("--stands", type=int, default=16, help="stands per side")
    ap.add_argument("--executor", default="local", choices=["local", "ray"])
    ap.add_argument("--memory-budget", default="512MiB")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--results", default=str(REPO / "benchmarks" / "results"))
    ap.add_argument("--name", default=None)
    ap.add_argument("--workload", default="raster", choices=["raster", "lidar", "all"])
    ap.add_argument("--points", type=int, default=2_000_000, help="LiDAR points (lidar)")
    ap.add_argument("--extent", type=float, default=1000.0, help="LiDAR extent, m (lidar)")
    args = ap.parse_args(argv)
    if args.workload == "lidar":
        return _lidar_main(args)

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
    if args.workload == "all":
        doc["lidar"] = _lidar_main(args)
    return doc


def _lidar_main(args: argparse.Namespace) -> dict[str, object]:
    import minjiang as mj

    work = args.workdir or Path(tempfile.mkdtemp(prefix="minjiang-forestry-lidar-"))
    work.mkdir(parents=True, exist_ok=True)
    with mj.Runtime(
        store=work / "store-lidar", executor=args.executor, memory_budget=args.memory_budget
    ) as rt:
        res = lidar_workload(rt, work, args.points, args.extent)
    doc = {
        "workload": "forestry-lidar",
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "executor": args.executor,
        "memory_budget": args.memory_budget,
        **res,
    }
    print(f"forestry LiDAR workload, {args.points} points over {args.extent:g} m, {args.executor}")
    for k, v in res["timings"].items():
        print(f"  {k:<18} {v:8.2f} s")
    print(f"  peer               {res['peer']}")
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    name = args.name or f"forestry-lidar-{_dt.date.today():%Y%m%d}"
    path = out / f"{name}.json"
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"saved {path}")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return doc


if __name__ == "__main__":
    main()

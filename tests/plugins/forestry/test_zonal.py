"""forestry.zones and forestry.zonal_stats against rasterstats (centre and all-touched)
and exactextract, on lidar's 1 m DEM with generated polygons: counts, min, max exact;
sum, mean, std and percentiles within 1e-9 relative."""

from __future__ import annotations

import json

import numpy as np
import pytest
from minjiang.core.errors import ContractError, ReaderError

from .conftest import lidar_dem, write_geotiff

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("fiona")
pytest.importorskip("shapely")
import shapely.affinity  # noqa: E402
import shapely.geometry  # noqa: E402

PCT = [10.0, 50.0, 92.5]


def _xy(transformer, geom):
    """``geom`` through a pyproj transformer (x, y order)."""
    return shapely.transform(geom, transformer.transform, interleaved=False)


def _mesh(bounds, n=4, seed=7):
    """Triangles from a jittered lattice over ``bounds`` (some partly outside), shrunk
    about their centroids so that no cell touches two of them (a zone raster holds one
    zone per cell; rasterstats counts a cell touched by two polygons in both)."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = bounds
    xs = np.linspace(x0 - 20, x1 + 5, n + 1)
    ys = np.linspace(y0 + 3, y1 + 25, n + 1)
    step = (xs[1] - xs[0]) * 0.2
    pts = np.array([[(x, y) for x in xs] for y in ys]) + rng.uniform(-step, step, (n + 1, n + 1, 2))
    tris = []
    for i in range(n):
        for j in range(n):
            a, b, c, d = pts[i, j], pts[i, j + 1], pts[i + 1, j + 1], pts[i + 1, j]
            tris.append([a, b, c, a])
            tris.append([a, c, d, a])
    return [
        shapely.affinity.scale(shapely.geometry.Polygon(t), 0.85, 0.85, origin="centroid")
        for t in tris
    ]


def _write_geojson_crs84(path, polys, src_crs):
    from pyproj import Transformer

    to84 = Transformer.from_crs(src_crs, "OGC:CRS84", always_xy=True)
    feats = []
    for k, p in enumerate(polys):
        g = _xy(to84, p)
        feats.append(
            {
                "type": "Feature",
                "properties": {"stand": f"S{k:02d}", "age": 10 + k, "zone_id": 100 + k},
                "geometry": shapely.geometry.mapping(g),
            }
        )
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return path


def _reference(polys, values, transform, all_touched):
    from rasterstats import zonal_stats

    stats = "count sum mean std min max " + " ".join(f"percentile_{q:g}" for q in PCT)
    return zonal_stats(
        polys, values, affine=transform, nodata=np.nan, stats=stats, all_touched=all_touched
    )


@pytest.mark.parametrize("rule", ["centre", "all_touched"])
def test_zonal_stats_match_rasterstats(rt, tmp_path, rule):
    pytest.importorskip("rasterstats")
    from pyproj import Transformer

    path = lidar_dem()
    with rasterio.open(path) as src:
        values = src.read(1).astype(np.float64)
        transform, crs, bounds = src.transform, src.crs, src.bounds
    polys84 = _write_geojson_crs84(tmp_path / "stands.geojson", _mesh(bounds), crs)
    # the reference sees the polygons exactly as the reader does (CRS84 -> the DEM's CRS)
    back = Transformer.from_crs("OGC:CRS84", crs, always_xy=True)
    feats = json.loads(polys84.read_text())["features"]
    polys = [_xy(back, shapely.geometry.shape(f["geometry"])) for f in feats]
    dem = rt.ingest("forestry.raster", path, params={"chunks": {"y": 128, "x": 128}})
    zones = rt.ingest(
        "forestry.zones", [polys84, path], params={"rule": rule, "id_field": "zone_id"}
    )
    res = rt.run(
        "forestry.zonal_stats",
        inputs={"values": dem, "zones": zones},
        params={"percentiles": PCT},
    )
    table = res.table("stats").to_pandas().set_index("zone")
    fast = rt.run("forestry.zonal_stats", inputs={"values": dem, "zones": zones})
    fast_t = fast.table("stats").to_pandas().set_index("zone")
    ref = _reference(polys, values, transform, rule == "all_touched")
    checked = 0
    for k, want in enumerate(ref):
        got = table.loc[100 + k]
        assert got["stand"] == f"S{k:02d}" and got["age"] == 10 + k
        assert int(got["count"]) == want["count"]
        assert int(fast_t.loc[100 + k, "count"]) == want["count"]
        if want["count"] == 0:
            assert np.isnan(got["mean"])
            continue
        checked += 1
        assert got["min"] == want["min"] and got["max"] == want["max"]
        assert fast_t.loc[100 + k, "min"] == want["min"]
        for col in ("sum", "mean", "std"):
            assert got[col] == pytest.approx(want[col], rel=1e-9, abs=1e-12)
            assert fast_t.loc[100 + k, col] == pytest.approx(want[col], rel=1e-9, abs=1e-9)
        for q in PCT:
            name = "p" + f"{q:g}".replace(".", "_")
            assert got[name] == pytest.approx(want[f"percentile_{q:g}"], rel=1e-9)
    assert checked >= 20
    assert table["count"].dtype == np.int64


def test_zonal_stats_match_exactextract_centre_cells(rt, tmp_path):
    """exactextract's cell coverage: the cells whose centre a zone holds, from its
    ``center_x``/``center_y`` and ``values`` per polygon, give the same count/min/max."""
    exactextract = pytest.importorskip("exactextract")
    path = lidar_dem()
    with rasterio.open(path) as src:
        crs, bounds = src.crs, src.bounds
    polys = _mesh(bounds, n=3, seed=11)
    gj = _write_geojson_crs84(tmp_path / "z.geojson", polys, crs)
    dem = rt.ingest("forestry.raster", path)
    zones = rt.ingest("forestry.zones", [gj, path], params={"id_field": "zone_id"})
    table = (
        rt.run("forestry.zonal_stats", inputs={"values": dem, "zones": zones})
        .table("stats")
        .to_pandas()
        .set_index("zone")
    )
    from pyproj import Transformer

    back = Transformer.from_crs("OGC:CRS84", crs, always_xy=True)
    feats = json.loads(gj.read_text())["features"]
    geoms = [_xy(back, shapely.geometry.shape(f["geometry"])) for f in feats]
    out = exactextract.exact_extract(
        str(path),
        [
            {"type": "Feature", "properties": {"k": k}, "geometry": shapely.geometry.mapping(g)}
            for k, g in enumerate(geoms)
        ],
        ["values", "center_x", "center_y"],
        output="pandas",
        include_cols=["k"],
    )
    for _, row in out.iterrows():
        poly = geoms[int(row["k"])]
        inside = np.array(
            [
                poly.contains(shapely.geometry.Point(x, y))
                for x, y in zip(row["center_x"], row["center_y"], strict=True)
            ],
            dtype=bool,
        )
        vals = np.asarray(row["values"], dtype=np.float64)[inside]
        got = table.loc[100 + int(row["k"])]
        assert int(got["count"]) == vals.size
        if vals.size:
            assert got["min"] == vals.min() and got["max"] == vals.max()
            assert got["mean"] == pytest.approx(vals.mean(), rel=1e-9)
            assert got["std"] == pytest.approx(vals.std(), rel=1e-9, abs=1e-12)


def test_zones_refusals(rt, tmp_path):
    path = lidar_dem()
    bad = tmp_path / "nocrs.geojson"
    bad.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    with pytest.raises(ReaderError, match=r"no feature|declares no CRS"):
        rt.ingest("forestry.zones", [bad, path])
    with pytest.raises(ReaderError, match="two sources"):
        rt.ingest("forestry.zones", [path])
    # zones on another grid than the values are refused, naming both grids
    from rasterio.transform import from_origin

    other = write_geotiff(
        tmp_path / "other.tif",
        np.ones((40, 50), np.float32),
        from_origin(429252.0, 5150885.0, 2.0, 2.0),
        "EPSG:26915",
    )
    with rasterio.open(path) as src:
        polys = _mesh(src.bounds, n=1)
        crs = src.crs
    gj = _write_geojson_crs84(tmp_path / "z.geojson", polys, crs)
    zones = rt.ingest("forestry.zones", [gj, other])
    dem = rt.ingest("forestry.raster", path)
    with pytest.raises(ContractError, match=r"different grids.*40 x 50 cells of 2 x 2"):
        rt.run("forestry.zonal_stats", inputs={"values": dem, "zones": zones})


@pytest.mark.parametrize(("driver", "suffix"), [("ESRI Shapefile", ".shp"), ("GPKG", ".gpkg")])
def test_shapefile_and_geopackage_zones_equal_geojson(rt, tmp_path, driver, suffix):
    import fiona

    path = lidar_dem()
    with rasterio.open(path) as src:
        crs, bounds = src.crs, src.bounds
    polys = _mesh(bounds, n=2, seed=5)
    gj = _write_geojson_crs84(tmp_path / "z.geojson", polys, crs)
    feats = json.loads(gj.read_text())["features"]
    from pyproj import Transformer

    back = Transformer.from_crs("OGC:CRS84", crs, always_xy=True)
    out = tmp_path / f"z{suffix}"
    schema = {"geometry": "Polygon", "properties": {"zone_id": "int", "stand": "str"}}
    with fiona.open(out, "w", driver=driver, crs=crs.to_wkt(), schema=schema) as dst:
        for f in feats:
            g = _xy(back, shapely.geometry.shape(f["geometry"]))
            dst.write(
                {
                    "geometry": shapely.geometry.mapping(g),
                    "properties": {
                        "zone_id": f["properties"]["zone_id"],
                        "stand": f["properties"]["stand"],
                    },
                }
            )
    a = rt.ingest("forestry.zones", [gj, path], params={"id_field": "zone_id"}).to_xarray()
    b = rt.ingest("forestry.zones", [out, path], params={"id_field": "zone_id"}).to_xarray()
    np.testing.assert_array_equal(a["zones"].values, b["zones"].values)
    assert b["zones"].attrs["zone_attributes"]["stand"] == [f["properties"]["stand"] for f in feats]
    assert len(np.unique(b["zones"].values)) > 4


def test_group_values_cpu_matches_reference():
    from minjiang.plugins.forestry.zonal import group_values

    rng = np.random.default_rng(4)
    for n, k in [(0, 3), (1, 1), (1000, 9), (5000, 300)]:
        z = rng.integers(1, k + 1, n)
        v = rng.random(n)
        ref = group_values(z, v, backend="reference")
        cpu = group_values(z, v, backend="cpu")
        for a, b in zip(ref, cpu, strict=True):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="positive"):
        group_values(np.array([0, 1]), np.array([1.0, 2.0]))

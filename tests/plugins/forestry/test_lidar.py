"""forestry.lidar and forestry.canopy_height on laspy's real aerial LiDAR
(autzen_trim.laz: 110,000 points, feet, Oregon Lambert): the count grid against an
independent binning (rasterio's rowcol with floor), the point table partitioned by
grid tile, CRS and units kept; the tiled operator against one whole-grid kernel call
and a run with one tile."""

from __future__ import annotations

import numpy as np
import pytest
from minjiang.core.errors import ParameterError, ReaderError

from .conftest import autzen_path

laspy = pytest.importorskip("laspy")
CELL = 5.0


@pytest.fixture(scope="module")
def las():
    return laspy.read(str(autzen_path()))


def test_ingest_counts_points_per_cell_with_the_floor_convention(rt, las):
    pytest.importorskip("rasterio")
    from rasterio.transform import Affine, rowcol

    res = rt.ingest(
        "forestry.lidar", autzen_path(), params={"cell": CELL, "tile": 64, "chunk_points": 7000}
    )
    ds = res.to_xarray()
    count = ds["count"].values
    x, y = np.asarray(las.x), np.asarray(las.y)
    # default origin: the header box rounded outwards to multiples of the cell
    left = np.floor(las.header.mins[0] / CELL) * CELL
    top = np.ceil(las.header.maxs[1] / CELL) * CELL
    assert ds["count"].attrs["transform"] == [CELL, 0.0, left, 0.0, -CELL, top]
    rows, cols = rowcol(Affine(CELL, 0, left, 0, -CELL, top), x, y, op=np.floor)
    want = np.zeros(count.shape, np.int64)
    np.add.at(want, (np.asarray(rows, int), np.asarray(cols, int)), 1)
    assert count.dtype == np.int32 and count.sum() == 110_000
    np.testing.assert_array_equal(count, want)
    assert ds["count"].chunks == (
        (64,) * (count.shape[0] // 64) + (count.shape[0] % 64,),
        (64,) * (count.shape[1] // 64) + (count.shape[1] % 64,),
    )
    # centres, CRS and units as the file has them (feet; z units not in the file)
    np.testing.assert_allclose(ds["x"].values, left + CELL * (np.arange(count.shape[1]) + 0.5))
    np.testing.assert_allclose(ds["y"].values, top - CELL * (np.arange(count.shape[0]) + 0.5))
    from pyproj import CRS

    assert CRS.from_user_input(ds["count"].attrs["crs"]) == las.header.parse_crs()
    assert ds.attrs["horizontal_units"] == "foot"
    assert ds.attrs["vertical_units"] == ""
    assert "not in the file" in ds.attrs["vertical_units_source"]
    assert ds.attrs["las_scale"] == [0.01, 0.01, 0.01]
    assert ds.attrs["point_count"] == 110_000
    assert ds.attrs["class_counts"] == {"1": 83893, "2": 26107}
    pytest.importorskip("rioxarray")
    assert ds["count"].rio.crs is not None
    assert tuple(ds["count"].rio.transform())[:6] == (CELL, 0.0, left, 0.0, -CELL, top)


def test_points_table_is_partitioned_by_grid_tile(rt, las):
    from minjiang.storage import parse_tile_part

    res = rt.ingest(
        "forestry.lidar",
        autzen_path(),
        params={"cell": CELL, "tile": 64, "chunk_points": 20_000},
    )
    table = res.table("points")
    assert table.num_rows == 110_000
    assert {f.name: str(f.type) for f in table.schema} == {
        "x": "double",
        "y": "double",
        "z": "double",
        "classification": "uint8",
        "return_number": "uint8",
        "number_of_returns": "uint8",
        "intensity": "uint16",
    }
    got = np.sort(
        np.rec.fromarrays([table.column(c).to_numpy() for c in ("x", "y", "z", "intensity")])
    )
    want = np.sort(
        np.rec.fromarrays(
            [np.asarray(las.x), np.asarray(las.y), np.asarray(las.z), np.asarray(las.intensity)]
        )
    )
    np.testing.assert_array_equal(got, want)
    left, top = res.to_xarray()["count"].attrs["transform"][2::3]
    parts = res.record.tables["points"]
    tiles = set()
    import io

    import pyarrow.parquet as pq

    for key in parts:
        tile = parse_tile_part(key)
        assert tile is not None
        tiles.add((tile["y"], tile["x"]))
        part = pq.read_table(io.BytesIO(rt.store.read_bytes(key)))
        rows = np.floor((top - part.column("y").to_numpy()) / CELL)
        cols = np.floor((part.column("x").to_numpy() - left) / CELL)
        assert ((rows >= tile["y"][0]) & (rows < tile["y"][1])).all()
        assert ((cols >= tile["x"][0]) & (cols < tile["x"][1])).all()
    # 113 x 236 cells in tiles of 64: 2 x 4 tiles, each in several streamed parts
    assert len(tiles) == 8 and len(parts) > len(tiles)


def test_reader_refuses_what_it_cannot_bin(rt, tmp_path):
    with pytest.raises(ParameterError, match="cell"):
        rt.ingest("forestry.lidar", autzen_path())
    with pytest.raises(ReaderError, match="top-left"):
        rt.ingest(
            "forestry.lidar", autzen_path(), params={"cell": CELL, "origin": [637000, 849600]}
        )
    bad = tmp_path / "not.laz"
    bad.write_bytes(b"LASF but not really" * 20)
    with pytest.raises(ReaderError, match="not a LAS/LAZ/COPC"):
        rt.ingest("forestry.lidar", bad, params={"cell": CELL})


def test_crs_override_and_explicit_origin(rt, las):
    from pyproj import CRS

    origin = [636001.76, 849497.90]  # whitebox's grid: the points' west and north edges
    res = rt.ingest(
        "forestry.lidar",
        autzen_path(),
        params={"cell": CELL, "origin": origin, "crs": "EPSG:2992", "z_units": "foot"},
    )
    ds = res.to_xarray()
    assert CRS.from_user_input(ds.attrs["crs"]) == CRS.from_epsg(2992)
    assert ds["count"].shape == (113, 236)
    assert ds.attrs["vertical_units"] == "foot"
    assert ds.attrs["vertical_units_source"] == "z_units parameter"


def _canopy(rt, tile, buffer, pit_free=False):
    """Ingest at ``tile`` cells and run canopy_height (one task per tile)."""
    lid = rt.ingest("forestry.lidar", autzen_path(), params={"cell": CELL, "tile": tile})
    res = rt.run(
        "forestry.canopy_height",
        inputs={"grid": lid, "points": lid},
        params={"buffer": buffer, "pit_free": pit_free},
    )
    return lid, res


@pytest.mark.slow
def test_small_tiles_equal_one_tile(rt, las, tmp_path):
    """48-cell tiles (15 tasks, each reading its tiles and its neighbours' within the
    buffer) give exactly the arrays of one 256-cell tile (one task)."""
    import minjiang as mj

    small_in, small = _canopy(rt, 48, 8, pit_free=True)
    # one task holds every point: it needs a larger budget than the 16 MiB of `rt`
    with mj.Runtime(store=tmp_path / "big", executor="local", memory_budget="512MiB") as big:
        _, whole = _canopy(big, 256, 8, pit_free=True)
        b = whole.to_xarray()
        assert b["dsm"].chunks[0][0] == 113
        b = b.load()
    a = small.to_xarray()
    assert a["dsm"].chunks[0][0] == 48
    for name in ("dsm", "dtm", "chm", "chm_pitfree"):
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    # and the same as one kernel call on every point
    from minjiang.plugins.forestry.canopy import canopy_height

    t = small_in.to_xarray()["count"].attrs["transform"]
    want = canopy_height(
        las.x,
        las.y,
        las.z,
        las.classification,
        las.return_number,
        left=t[2],
        top=t[5],
        cell=CELL,
        shape=a["dsm"].shape,
        pit_free=True,
        tin_max_edge=8 * CELL / 2,
    )
    for name in ("dsm", "dtm", "chm", "chm_pitfree"):
        np.testing.assert_array_equal(a[name].values, want[name], err_msg=name)
    assert a["chm"].attrs["crs"] == small_in.to_xarray()["count"].attrs["crs"]
    assert np.isfinite(a["dtm"].values).sum() > 15000


# ---------------------------------------------------------------- a synthetic stand
CONES = [(20.0, 20.0, 18.0), (42.0, 30.0, 24.0), (25.0, 45.0, 12.0)]  # x, y, height (m)


def _ground(x, y):
    return 100.0 + 0.05 * x - 0.02 * y  # a tilted plane: its TIN is exact


@pytest.fixture(scope="module")
def stand(tmp_path_factory):
    """LAS 1.4 point format 6 in metres (UTM 10N + NAVD88 height, a compound CRS):
    ground returns on a plane, first returns on three conical crowns."""
    pyproj = pytest.importorskip("pyproj")
    rng = np.random.default_rng(7)
    n = 12_000
    x, y = rng.uniform(0, 60, n), rng.uniform(0, 60, n)
    h = np.zeros(n)
    for cx, cy, ch in CONES:
        h = np.maximum(h, ch - 2.0 * np.hypot(x - cx, y - cy))
    crown = h > 0.5
    ground = ~crown | (rng.random(n) < 0.3)  # some pulses reach the ground below crowns
    z = _ground(x, y) + np.where(ground, 0.0, h)
    header = laspy.LasHeader(point_format=6, version="1.4")
    header.scales, header.offsets = [0.001] * 3, [500_000.0, 4_100_000.0, 0.0]
    header.add_crs(pyproj.CRS.from_user_input("EPSG:32610+5703"))
    las = laspy.LasData(header)
    las.x, las.y, las.z = x + 500_000.0, y + 4_100_000.0, z
    las.classification = np.where(ground, 2, 5).astype(np.uint8)
    las.return_number = np.where(ground & crown, 2, 1).astype(np.uint8)
    las.number_of_returns = np.where(crown, 2, 1).astype(np.uint8)
    las.intensity = rng.integers(0, 60000, n).astype(np.uint16)
    path = tmp_path_factory.mktemp("stand") / "stand.laz"
    las.write(str(path))
    return path, laspy.read(str(path))


def test_metre_file_with_a_vertical_crs(rt, stand):
    path, las = stand
    ds = rt.ingest("forestry.lidar", path, params={"cell": 1.0, "tile": 16}).to_xarray()
    assert ds.attrs["horizontal_units"] == "metre"
    assert ds.attrs["vertical_units"] == "metre"
    assert ds.attrs["vertical_units_source"] == "vertical CRS"
    assert ds.attrs["source_format"] == "LAS 1.4 point format 6 (LAZ)"
    assert ds.attrs["las_scale"] == [0.001] * 3
    assert int(ds["count"].sum()) == len(las.points)


def test_canopy_height_and_inventory_on_a_known_stand(rt, stand):
    path, _ = stand
    lid = rt.ingest("forestry.lidar", path, params={"cell": 1.0, "tile": 16})
    out = rt.run(
        "forestry.canopy_height",
        inputs={"grid": lid, "points": lid},
        params={"buffer": 8, "pit_free": True},
    ).to_xarray()
    assert out["dsm"].chunks[0][0] == 16  # 4 x 4 tasks
    assert out["chm"].attrs["units"] == "metre"
    g = lid.to_xarray()
    xc, yc = np.meshgrid(g["x"].values, g["y"].values)
    dtm = out["dtm"].values
    inside = np.isfinite(dtm)
    assert inside.mean() > 0.9
    # exact up to the file's 1 mm quantisation of x, y and z
    np.testing.assert_allclose(dtm[inside], _ground(xc - 5e5, yc - 4.1e6)[inside], atol=1e-3)
    # the tallest returns per cell over the plane: the crowns (up to their apex)
    chm = out["chm"].values
    for cx, cy, ch in CONES:
        r, c = int(np.floor(60 - cy)), int(np.floor(cx))  # the apex's cell
        assert ch - 2.5 < np.nanmax(chm[r - 1 : r + 2, c - 1 : c + 2]) <= ch + 1e-9
    assert np.nanmin(chm) == 0
    pf = out["chm_pitfree"].values
    assert np.isfinite(pf).sum() >= np.isfinite(chm).sum()
    # the named pipeline, windows in metres: one top per crown, near its apex
    inv = rt.run_pipeline("forestry.canopy_inventory", inputs={"points": str(path)})
    tops = inv.results["tops"].table("tops").to_pandas()
    tall = tops[tops["height"] > 8]
    assert len(tall) == len(CONES)
    for cx, cy, _ in CONES:
        d = np.hypot(tall["x"] - 5e5 - cx, tall["y"] - 4.1e6 - cy)
        assert d.min() < 1.5
    assert [p.name for p in inv.reports] == ["chm.png"]


def test_canopy_height_refuses_a_grid_that_is_not_a_lidar_ingest(rt, stand):
    from minjiang.core.errors import ContractError

    from .conftest import sentinel2

    path, _ = stand
    lid = rt.ingest("forestry.lidar", path, params={"cell": 1.0, "tile": 16})
    red = rt.ingest("forestry.raster", sentinel2("red"), params={"bands": ["red"]})
    with pytest.raises(ContractError, match="no LiDAR grid"):
        rt.run("forestry.canopy_height", inputs={"grid": red, "points": lid})
    with pytest.raises(ParameterError, match="include 0"):
        rt.run(
            "forestry.canopy_height",
            inputs={"grid": lid, "points": lid},
            params={"pit_free": True, "thresholds": [2, 5]},
        )

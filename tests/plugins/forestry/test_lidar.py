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
    lid = rt.ingest("forestry.lidar", autzen_path(), params={"cell": CELL, "tile": tile})
    res = rt.run(
        "forestry.canopy_height",
        inputs={"grid": lid, "points": lid},
        params={"buffer": buffer, "pit_free": pit_free},
    )
    return lid, res


@pytest.mark.slow
def test_small_tiles_equal_one_tile(rt, las):
    """48-cell tiles (15 tasks, each reading its tiles and its neighbours' within the
    buffer) give exactly the arrays of one 256-cell tile (one task)."""
    small_in, small = _canopy(rt, 48, 8, pit_free=True)
    _, whole = _canopy(rt, 256, 8, pit_free=True)
    a, b = small.to_xarray(), whole.to_xarray()
    assert a["dsm"].chunks[0][0] == 48 and b["dsm"].chunks[0][0] == 113
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

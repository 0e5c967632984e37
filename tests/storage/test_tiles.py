"""Table parts named by grid tile, and reading a table's parts selectively."""

from __future__ import annotations

import numpy as np
import pytest
from minjiang.storage import (
    DatasetWriter,
    parse_tile_part,
    read_table,
    tile_overlaps,
    tile_part_name,
)


def test_a_tile_part_name_round_trips_and_sorts_in_row_major_tile_order():
    tiles = [{"y": (y, y + 256), "x": (x, x + 256)} for y in (0, 256, 2560) for x in (0, 512)]
    names = [tile_part_name(t, seq) for t in tiles for seq in (0, 1, 10)]
    assert sorted(names) == names
    for t in tiles:
        assert parse_tile_part(tile_part_name(t, 3)) == t
        key = f"datasets/abc/tables/points/part-{tile_part_name(t)}.parquet"
        assert parse_tile_part(key) == t  # a store key is understood too
    # a dim whose name ends in a digit is still parsed by the fixed-width ranges
    assert parse_tile_part(tile_part_name({"x2": (5, 10)})) == {"x2": (5, 10)}
    assert parse_tile_part("00003") is None
    assert parse_tile_part("y1-2.00000") is None


@pytest.mark.parametrize(
    "tile", [{"y": (5, 5)}, {"y": (-1, 3)}, {"y x": (0, 1)}, {}, {"y": (0, 10**9)}]
)
def test_a_bad_tile_is_refused(tile):
    with pytest.raises(ValueError, match="tile"):
        tile_part_name(tile)


def test_tile_overlaps_uses_half_open_ranges():
    name = tile_part_name({"y": (4, 8), "x": (0, 4)})
    assert tile_overlaps(name, {"y": (0, 5), "x": (3, 9)})
    assert not tile_overlaps(name, {"y": (8, 12), "x": (0, 4)})
    assert not tile_overlaps(name, {"y": (0, 4)})
    assert tile_overlaps(name, {"t": (0, 1)})  # dims the region does not name match
    with pytest.raises(ValueError, match="not named by a grid tile"):
        tile_overlaps("00001", {"y": (0, 1)})


def test_read_table_keeps_the_parts_a_predicate_accepts(store):
    w = DatasetWriter(store, "tiled")
    for k in range(3):
        w.write_table_part("t", f"{k:05d}", {"a": np.arange(k * 10, k * 10 + 3)})
    every = read_table(store, "tiled", "t").column("a").to_pylist()
    assert every == [0, 1, 2, 10, 11, 12, 20, 21, 22]
    got = read_table(store, "tiled", "t", parts=lambda p: p != "00001")
    assert got.column("a").to_pylist() == [0, 1, 2, 20, 21, 22]
    none = read_table(store, "tiled", "t", parts=lambda p: False)
    assert none.num_rows == 0 and none.column_names == ["a"]

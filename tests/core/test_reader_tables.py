"""Readers that write tables (streamed, partitioned by grid tile) and operators that
read a tiled table tile by tile."""

from __future__ import annotations

import numpy as np
import pytest
from minjiang.core.errors import ChecksumMismatchError, ContractError, ReaderError
from minjiang.storage import verify_dataset

from tests.core import _tableops


@pytest.fixture
def lab(runtime):
    runtime.register(_tableops, name="tableops")
    return runtime


def _points(tmp_path, rng, n=60, shape=(12, 10)):
    pts = np.column_stack(
        [rng.integers(0, shape[0], n), rng.integers(0, shape[1], n), rng.normal(size=n)]
    )
    path = tmp_path / "p.pts.npy"
    np.save(path, pts)
    return pts, path


def _window_sums(pts, shape, h):
    want = np.zeros(shape)
    for r, c, v in pts:
        r, c = int(r), int(c)
        want[max(r - h, 0) : r + h + 1, max(c - h, 0) : c + h + 1] += v
    return want


def test_an_ingest_streams_the_readers_table_into_the_record(lab, tmp_path, rng):
    pts, path = _points(tmp_path, rng)
    res = lab.ingest("testlab.points", path)
    parts = res.record.tables["points"]
    # 60 points in batches of 7, split by 3 x 3 tiles: more parts than batches
    assert len(parts) > 60 // 7
    assert all(k.startswith(f"datasets/{res.id}/tables/points/part-y") for k in parts)
    table = res.table("points").to_pandas()
    assert table.columns.tolist() == ["row", "col", "value"]
    assert str(table["value"].dtype) == "float64"
    got = sorted(map(tuple, table.to_numpy().tolist()))
    assert got == sorted(map(tuple, pts.tolist()))
    assert res.record.schema_["tables"]["points"]["rows"] == 60
    assert verify_dataset(lab.store, res.id).ok
    # a damaged part is refused when read, naming the part
    key = sorted(parts)[0]
    raw = bytearray(lab.store.read_bytes(key))
    raw[-20] ^= 0xFF
    lab.store.write_bytes(key, bytes(raw))
    with pytest.raises(ChecksumMismatchError, match="part-y"):
        res.table("points")


def test_a_tiled_table_input_gives_each_task_only_the_tiles_near_its_block(
    minjiang_store, tmp_path, rng
):
    from minjiang.core import Runtime

    shape, t = (24, 20), 4
    pts, path = _points(tmp_path, rng, n=200, shape=shape)
    pipe = {
        "steps": [
            {
                "id": "pts",
                "reader": "testlab.points",
                "paths": [str(path)],
                "params": {"shape": list(shape)},
            },
            {
                "id": "sum",
                "operator": "testlab.window_sum",
                "inputs": {"grid": "pts:count", "points": "pts:points"},
                "params": {"halo": 1},
            },
        ]
    }
    # a budget this small splits the grid into several blocks
    with Runtime(store=minjiang_store, executor="local", memory_budget="3KiB") as rt:
        rt.register(_tableops, name="tableops")
        tasks = [t for s in rt.plan(pipe).steps[-1].stages for t in s.tasks]
        out = rt.run_pipeline(pipe)
        ds = out.results["sum"].to_xarray()
        total, rows = ds["total"].values, ds["rows"].values
    assert len(tasks) > 1
    np.testing.assert_allclose(total, _window_sums(pts, shape, 1), rtol=0, atol=1e-12)
    # each task was given exactly the points of the tiles its block and 1-cell halo
    # overlap, never the whole table
    ty, tx = (pts[:, 0] // t).astype(int), (pts[:, 1] // t).astype(int)
    for task in tasks:
        ys, xs = task.region
        ylo, yhi = max(ys.start - 1, 0), min(ys.stop + 1, shape[0])
        xlo, xhi = max(xs.start - 1, 0), min(xs.stop + 1, shape[1])
        near = (ty * t < yhi) & (ty * t + t > ylo) & (tx * t < xhi) & (tx * t + t > xlo)
        assert (rows[ys, xs] == near.sum()).all()
    assert rows.min() < len(pts) / 2


@pytest.mark.parametrize(
    ("how", "match"),
    [
        ("undeclared", "table_columns\\(\\) does not declare"),
        ("missing", "declares \\[\\]"),
        ("badcols", "does not fit the declared columns"),
    ],
)
def test_a_reader_whose_tables_break_its_declaration_is_refused(lab, tmp_path, rng, how, match):
    _, path = _points(tmp_path, rng)
    with pytest.raises(ReaderError, match=match):
        lab.ingest("testlab.points", path, params={"how": how})
    assert lab.catalog.list() == []


def test_a_declared_table_with_no_part_is_refused(lab, tmp_path):
    path = tmp_path / "empty.pts.npy"
    np.save(path, np.zeros((0, 3)))
    with pytest.raises(ReaderError, match="yielded no part of declared table"):
        lab.ingest("testlab.points", path)


def test_a_tiled_input_on_a_table_not_written_by_tiles_is_refused_at_plan_time(lab, tmp_path, rng):
    _, path = _points(tmp_path, rng)
    res = lab.ingest("testlab.points", path, params={"how": "untiled"})
    with pytest.raises(ContractError, match="not named by a tile"):
        lab.plan(
            {
                "steps": [
                    {
                        "id": "sum",
                        "operator": "testlab.window_sum",
                        "inputs": {"grid": f"{res.id}:count", "points": f"{res.id}:points"},
                    }
                ]
            }
        )


def test_ingesting_again_without_reuse_compares_the_tables_too(lab, tmp_path, rng):
    from minjiang.errors import OutputChangedError

    _, path = _points(tmp_path, rng)
    res = lab.ingest("testlab.points", path)
    again = lab.ingest("testlab.points", path, reuse=False)
    assert again.id == res.id
    # a reader that now writes other rows under the same version is caught
    original = _tableops.PointReader.tables

    def shifted(self, files, params, ds):
        for table, part, cols in original(self, files, params, ds):
            yield table, part, {**cols, "value": cols["value"] + 1}

    _tableops.PointReader.tables = shifted
    try:
        with pytest.raises(OutputChangedError, match="part-y"):
            lab.ingest("testlab.points", path, reuse=False)
    finally:
        _tableops.PointReader.tables = original
    assert res.table("points").num_rows == 60

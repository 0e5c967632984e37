"""The store layout is spelt only in ``storage/``: core reaches it through Staging."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

CORE = Path(__file__).resolve().parents[2] / "core"
#: what a store key of a dataset looks like when written out by hand
LAYOUT = re.compile(r"datasets/|_scratch|_tasks/|_recompute|arrays\.zarr|part-\{")


def test_core_spells_no_store_path() -> None:
    found = [
        f"{path.relative_to(CORE.parent)}:{n}: {line.strip()}"
        for path in sorted(CORE.rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if LAYOUT.search(line)
    ]
    assert not found, "store paths spelt in core (use minjiang.storage.Staging):\n" + "\n".join(
        found
    )


def test_layout_pattern_catches_a_spelt_path(tmp_path: Path) -> None:
    assert LAYOUT.search('key = f"datasets/{did}/arrays.zarr/x"')
    assert not LAYOUT.search("staging.scratch_group()")


def test_staging_keeps_recompute_apart_and_cleans_up(tmp_path: Path) -> None:
    from minjiang.storage import Staging, open_store

    store = open_store(str(tmp_path / "store"))
    normal = Staging(store, "abc")
    again = Staging(store, "abc", recompute=True)
    for staging in (normal, again):
        staging.writer.create({})
        staging.writer.create_array("x", shape=(4,), dtype="float32", chunks=(2,), dims=("i",))
        staging.scratch.create({})
        sums = staging.writer.write_region("x", (slice(0, 2),), np.arange(2, dtype="float32"))
        staging.write_manifest(
            "map/000000", {"checksums": {staging.checksum_path("x"): sums}, "tables": {}}
        )
        key, digest = staging.write_table_part("t", "000000", {"a": np.arange(3)})
        pkey, _ = staging.write_partial_part("000000", {"s": np.arange(2)})
        assert staging.read_partial_part("000000").column("s").to_pylist() == [0, 1]
        (manifest,) = staging.manifests("map")
        assert staging.verify(manifest["checksums"], {"t": {key: digest}})
        assert staging.final_checksums(manifest["checksums"]) == {"x": sums}
        assert staging.final_tables({"t": {key: digest}, "__p": {pkey: "0"}}) == {
            "t": {key: digest}
        }
    # the recompute area never wrote into the dataset's own group or tables
    assert normal.checksum_path("x") != again.checksum_path("x")
    assert not set(store.list(again.area)) & set(store.list(normal.writer.arrays_prefix))
    again.cleanup()
    assert not store.list(again.area)
    assert store.list(normal.writer.arrays_prefix)
    normal.cleanup()
    assert not list(normal.manifests("map"))
    with pytest.raises(Exception, match="part"):
        normal.read_partial_part("000000")


def test_differences_name_what_changed(tmp_path: Path) -> None:
    from minjiang.storage import Staging, open_store

    staging = Staging(open_store(str(tmp_path / "store")), "abc", recompute=True)
    committed = f"{staging.prefix}/tables/t/part-1.parquet"
    staged = f"{staging.area}/tables/t/part-1.parquet"
    record = {"x": {"c/0": "a", "c/1": "b"}}
    assert not staging.differences(record, {"t": {staged: "p"}}, record, {"t": {committed: "p"}})
    diff = staging.differences(
        {"x": {"c/0": "a", "c/1": "B"}}, {"t": {staged: "q"}}, record, {"t": {committed: "p"}}
    )
    assert diff == ["x/c/1", "tables/t/part-1.parquet"]
    assert staging.differences({}, {}, record, {}) == ["x/c/0", "x/c/1"]

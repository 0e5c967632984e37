"""The integrity invariants of the store, one test each (storage/DESIGN.md, "Integrity")."""

from __future__ import annotations

import numpy as np
import pytest
from minjiang.core.errors import (
    ChecksumMismatchError,
    MissingChunkError,
    RecordIntegrityError,
    StoreError,
)
from minjiang.storage import (
    Catalog,
    DatasetWriter,
    Record,
    Store,
    _catalog,
    dataset_schema,
    open_dataset_info,
    open_store,
    open_xarray,
    read_region,
    verify_dataset,
)
from minjiang.storage._digest import digest_bytes, digest_matches
from minjiang.storage._store import is_temporary
from minjiang.storage._verify import grid_keys


def _write(store: Store, did: str, values: np.ndarray) -> dict[str, dict[str, str]]:
    w = DatasetWriter(store, did)
    w.create({})
    w.create_array("v", shape=values.shape, dtype=values.dtype, chunks=(2, 3), dims=("y", "x"))
    sums = w.write_region("v", (slice(0, values.shape[0]), slice(0, values.shape[1])), values)
    w.consolidate()
    return {"v": sums}


def _record(store: Store, did: str, checksums: dict[str, dict[str, str]]) -> Record:
    return Record(
        id=did,
        kind="ingested",
        domain="test",
        schema=dataset_schema(open_dataset_info(store, did)),
        producer={"reader": "test.r", "version": "1", "params": {"k": 1}},
        checksums=checksums,
    )


@pytest.fixture(autouse=True)
def _fresh_record_cache() -> None:
    _catalog._CACHE.clear()


def test_digests_name_their_algorithm_and_read_legacy_sha256() -> None:
    d = digest_bytes(b"abc")
    assert d.startswith("xxh3-128:") and len(d) == len("xxh3-128:") + 32
    assert digest_matches(b"abc", d) and not digest_matches(b"abd", d)
    legacy = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert digest_matches(b"abc", legacy)
    assert digest_matches(b"abc", "sha256:" + legacy)
    with pytest.raises(StoreError, match="'md5'"):
        digest_matches(b"abc", "md5:900150983cd24fb0d6963f7d28e17f72")


def test_write_region_never_reads_chunks_back(any_store: Store, monkeypatch) -> None:
    reads: list[str] = []
    original = type(any_store).read_bytes

    def spy(self: Store, key: str) -> bytes:
        reads.append(key)
        return original(self, key)

    monkeypatch.setattr(type(any_store), "read_bytes", spy)
    values = np.arange(24, dtype="f4").reshape(4, 6)
    sums = _write(any_store, "noread", values)
    assert not [k for k in reads if "/c/" in k]
    monkeypatch.undo()
    for ck, d in sums["v"].items():
        assert digest_matches(any_store.read_bytes(f"datasets/noread/arrays.zarr/v/{ck}"), d)


def test_grid_keys() -> None:
    assert grid_keys((), ()) == ["c"]
    assert grid_keys((0, 3), (1, 3)) == []
    assert grid_keys((5, 3), (2, 3)) == ["c/0/0", "c/1/0", "c/2/0"]


def test_publish_refuses_a_record_that_does_not_cover_the_grid(store: Store) -> None:
    sums = _write(store, "holey", np.zeros((4, 6), "f4"))
    partial = {"v": dict(list(sums["v"].items())[:-1])}
    with pytest.raises(StoreError, match=r"1 of 4 chunks have no digest \(c/1/1\)"):
        Catalog(store).publish(_record(store, "holey", partial))
    extra = {"v": {**sums["v"], "c/9/9": sums["v"]["c/0/0"]}}
    with pytest.raises(StoreError, match="outside its chunk grid"):
        Catalog(store).publish(_record(store, "holey", extra))
    assert not Catalog(store).exists("holey")


def test_missing_chunk_is_an_error_committed_or_not(store: Store) -> None:
    values = np.arange(24, dtype="f4").reshape(4, 6)
    sums = _write(store, "miss", values)
    info = open_dataset_info(store, "miss")["v"]
    store.delete("datasets/miss/arrays.zarr/v/c/1/0")
    # staged (no record): still an error, never fill values
    with pytest.raises(MissingChunkError, match=r"chunk 'c/1/0' of array 'v' in dataset 'miss'"):
        read_region(store, info, (slice(0, 4), slice(0, 6)))
    assert not isinstance(MissingChunkError("x"), FileNotFoundError)
    np.testing.assert_array_equal(read_region(store, info, (slice(0, 2),) * 2), values[:2, :2])
    with pytest.raises(StoreError):  # publish checks the grid, not the bytes
        Catalog(store).publish(_record(store, "miss", {"v": {}}))
    Catalog(store).publish(_record(store, "miss", sums))
    with pytest.raises(MissingChunkError, match="c/1/0"):
        open_xarray(store, "miss").load()


def test_fill_by_design_chunks_read_as_fill(store: Store) -> None:
    values = np.ones((4, 6), "f4")
    sums = _write(store, "fill1", values)
    store.delete("datasets/fill1/arrays.zarr/v/c/1/1")
    sums["v"]["c/1/1"] = "fill"
    Catalog(store).publish(_record(store, "fill1", sums))
    out = open_xarray(store, "fill1")["v"].values
    assert np.isnan(out[2:, 3:]).all() and (out[:2] == 1).all()
    assert verify_dataset(store, "fill1").ok
    # a chunk the record says is fill but that is stored is reported
    DatasetWriter(store, "fill1").write_region("v", (slice(2, 4), slice(3, 6)), values[2:, 3:])
    problems = verify_dataset(store, "fill1").problems
    assert [(p.chunk_key, p.problem) for p in problems] == [("c/1/1", "stray file")]


def test_catalog_refuses_records_that_are_not_what_was_published(store: Store) -> None:
    for did, fill in (("reca", 1.0), ("recb", 2.0)):
        Catalog(store).publish(_record(store, did, _write(store, did, np.full((4, 6), fill, "f4"))))
    raw_b = store.read_bytes("catalog/records/recb.json")
    store.write_bytes("catalog/records/reca.json", raw_b)
    _catalog._CACHE.clear()
    with pytest.raises(RecordIntegrityError, match="claims id 'recb'"):
        Catalog(store).get("reca")
    with pytest.raises(RecordIntegrityError):
        open_xarray(store, "reca")
    report = verify_dataset(store, "reca")
    assert [(p.array, p.problem) for p in report.problems] == [("(record)", "record mismatch")]

    edited = raw_b.replace(b'"k":1', b'"k":2')
    assert edited != raw_b
    store.write_bytes("catalog/records/recb.json", edited)
    _catalog._CACHE.clear()
    with pytest.raises(RecordIntegrityError, match="does not match its digest"):
        Catalog(store).get("recb")

    unsealed = Record.model_validate_json(raw_b).model_copy(update={"digest": ""})
    store.write_bytes("catalog/records/recb.json", unsealed.to_json())
    _catalog._CACHE.clear()
    with pytest.raises(RecordIntegrityError, match="has no digest"):
        Catalog(store).get("recb")


def test_a_committed_read_checks_metadata(store: Store) -> None:
    Catalog(store).publish(_record(store, "meta1", _write(store, "meta1", np.ones((4, 6), "f4"))))
    key = "datasets/meta1/arrays.zarr/v/zarr.json"
    store.write_bytes(
        key, store.read_bytes(key).replace(b'"attributes": {', b'"attributes": {"scale_factor": 2,')
    )
    _catalog._CACHE.clear()
    info = open_dataset_info(store, "meta1")["v"]
    with pytest.raises(ChecksumMismatchError, match=r"metadata 'zarr.json' of array 'v'"):
        read_region(store, info, (slice(0, 4), slice(0, 6)))
    problems = verify_dataset(store, "meta1").problems
    assert [(p.chunk_key, p.problem) for p in problems] == [("v/zarr.json", "checksum mismatch")]


@pytest.mark.parametrize(
    "url",
    [
        "",
        "   ",
        "a\0b",
        "x" * 5000,
        "/tmp/" + "y" * 300,
        "s3://bucket/\0x",
        "file:///\x01x",
        "s3://A_B/x",
        "s3://-bad/p",
        "s3://bucket..x/p",
        "s3://10.0.0.1/p",
    ],
    ids=[
        "empty",
        "blank",
        "nul",
        "long-path",
        "long-name",
        "nul-s3",
        "control",
        "bucket-case",
        "bucket-dash",
        "bucket-dots",
        "bucket-ip",
    ],
)
def test_hostile_store_locations_are_store_errors(url: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreError) as info:
        open_store(url)
    assert "store" in str(info.value)
    assert list(tmp_path.iterdir()) == []  # nothing created, the current folder untouched


@pytest.mark.parametrize("url", [3, b"bytes", 2.5])
def test_store_location_of_the_wrong_type_is_a_store_error(url) -> None:
    with pytest.raises(StoreError, match="must be a folder path or URL string"):
        open_store(url)


def test_temporary_file_names() -> None:
    assert is_temporary(".tmp-zarr.json.abc") and is_temporary("0.4f2a.partial")
    assert not is_temporary("zarr.json") and not is_temporary("part-00001.parquet")


def test_guarded_reads_on_every_store_kind(any_store: Store) -> None:
    values = np.arange(24, dtype="f4").reshape(4, 6)
    Catalog(any_store).publish(_record(any_store, "kinds1", _write(any_store, "kinds1", values)))
    _catalog._CACHE.clear()
    info = open_dataset_info(any_store, "kinds1")["v"]
    np.testing.assert_array_equal(read_region(any_store, info, (slice(0, 4), slice(0, 6))), values)
    np.testing.assert_array_equal(open_xarray(any_store, "kinds1")["v"].values, values)
    base = "datasets/kinds1/arrays.zarr/v"
    any_store.write_bytes(f"{base}/c/0/0", any_store.read_bytes(f"{base}/c/1/1"))  # swapped
    any_store.delete(f"{base}/c/0/1")
    with pytest.raises(ChecksumMismatchError, match=r"chunk 'c/0/0' of array 'v'"):
        read_region(any_store, info, (slice(0, 2), slice(0, 3)))
    with pytest.raises(MissingChunkError, match=r"chunk 'c/0/1' of array 'v'"):
        read_region(any_store, info, (slice(0, 2), slice(3, 6)))
    problems = verify_dataset(any_store, "kinds1").problems
    assert [(p.chunk_key, p.problem) for p in problems] == [
        ("c/0/0", "checksum mismatch"),
        ("c/0/1", "missing"),
    ]


def test_a_staged_group_refuses_missing_chunks(store: Store) -> None:
    from minjiang.storage._reader import open_staged_group

    w = DatasetWriter(store, "stage1", group="_scratch/arrays.zarr")
    w.create({})
    w.create_array("s", shape=(4,), dtype="f8", chunks=(2,), dims=("p",))
    w.write_region("s", (slice(0, 4),), np.arange(4.0))
    group = open_staged_group(store, "datasets/stage1/_scratch/arrays.zarr", "stage1")
    np.testing.assert_array_equal(group["s"][:], np.arange(4.0))
    store.delete("datasets/stage1/_scratch/arrays.zarr/s/c/1")
    group = open_staged_group(store, "datasets/stage1/_scratch/arrays.zarr", "stage1")
    with pytest.raises(MissingChunkError, match=r"chunk 'c/1' .* dataset 'stage1'"):
        group["s"][:]


def test_table_parts_can_be_staged_apart(store: Store) -> None:
    w = DatasetWriter(store, "tp1", tables_prefix="datasets/tp1/_scratch")
    key, digest = w.write_table_part("partials", "00000", {"n": np.arange(3)})
    assert key == "datasets/tp1/_scratch/tables/partials/part-00000.parquet"
    assert digest_matches(store.read_bytes(key), digest)
    default_key, _ = DatasetWriter(store, "tp1").write_table_part("t", "00000", {"n": [1]})
    assert default_key == "datasets/tp1/tables/t/part-00000.parquet"
    with pytest.raises(ValueError):
        DatasetWriter(store, "tp1", tables_prefix="../outside")


def test_table_parts_get_the_chunk_digest_and_bare_sha256_still_verifies(store: Store) -> None:
    """Parts are digested like chunks; a record from before digests named their
    algorithm (a bare sha256 per part) still verifies and reads."""
    import hashlib

    from minjiang.storage import read_table
    from minjiang.storage._digest import CHUNK_ALGORITHM

    sums = _write(store, "tab1", np.arange(12.0).reshape(4, 3))
    key, digest = DatasetWriter(store, "tab1").write_table_part("t", "00000", {"n": [1, 2]})
    assert digest.startswith(f"{CHUNK_ALGORITHM}:")
    legacy = hashlib.sha256(store.read_bytes(key)).hexdigest()
    record = _record(store, "tab1", sums).model_copy(update={"tables": {"t": {key: legacy}}})
    Catalog(store).publish(record)
    assert verify_dataset(store, "tab1").ok
    assert read_table(store, "tab1", "t").column("n").to_pylist() == [1, 2]
    store.write_bytes(key, store.read_bytes(key)[:-3] + b"xyz")
    assert not verify_dataset(store, "tab1").ok

"""Dataset writing and reading: round trips, idempotency, alignment, checksums."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import xxhash
from minjiang.core.errors import (
    ChecksumMismatchError,
    DatasetNotFoundError,
    KeyNotFoundError,
    MissingChunkError,
    StoreError,
)
from minjiang.storage import (
    ArrayInfo,
    DatasetWriter,
    Store,
    array_codecs,
    dataset_schema,
    default_chunks,
    ensure_verified,
    open_dataset_info,
    read_array,
    read_region,
    read_table,
    verify_dataset,
)
from minjiang.storage._encoding import _iter_blocks


def _cube(rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal((4, 6, 5)).astype("float32")


def _write_cube(
    store: Store, values: np.ndarray, did: str = "ds1"
) -> tuple[DatasetWriter, dict[str, str]]:
    w = DatasetWriter(store, did)
    w.create({"title": "cube", "count": np.int64(3)})
    w.create_array(
        "v",
        shape=values.shape,
        dtype=values.dtype,
        chunks=(2, 3, 5),
        dims=("t", "y", "x"),
        attrs={"units": "K"},
    )
    sums: dict[str, str] = {}
    for t0 in (0, 2):
        for y0 in (0, 3):
            region = (slice(t0, t0 + 2), slice(y0, y0 + 3), slice(0, 5))
            sums.update(w.write_region("v", region, values[region]))
    return w, sums


def test_roundtrip(any_store: Store, rng: np.random.Generator) -> None:
    values = _cube(rng)
    w, sums = _write_cube(any_store, values)
    assert sorted(sums) == ["c/0/0/0", "c/0/1/0", "c/1/0/0", "c/1/1/0"]
    for key, digest in sums.items():
        raw = any_store.read_bytes(f"datasets/ds1/arrays.zarr/v/{key}")
        # digested as written (never read back), and the digest names its algorithm
        assert digest == "xxh3-128:" + xxhash.xxh3_128_hexdigest(raw)
    w.consolidate()
    info = open_dataset_info(any_store, "ds1")
    v = info.arrays["v"]
    assert v == ArrayInfo(
        name="v",
        path="datasets/ds1/arrays.zarr/v",
        dims=("t", "y", "x"),
        shape=(4, 6, 5),
        dtype="float32",
        chunks=(2, 3, 5),
        attrs={"units": "K"},
        dataset_id="ds1",
    )
    assert (v.itemsize, v.nbytes, v.chunk_nbytes, v.grid_shape) == (4, 480, 120, (2, 2, 1))
    assert info.attrs == {"title": "cube", "count": 3}
    assert info.prefix == "datasets/ds1" and info.coords == {} and info.tables == {}
    np.testing.assert_array_equal(read_array(any_store, v), values)
    np.testing.assert_array_equal(
        read_region(any_store, v, (slice(1, 3), slice(2, 5), slice(None))), values[1:3, 2:5]
    )
    # decoding into a given buffer (a pinned one, for GPU tasks) fills that buffer
    buf = np.full((2, 3, 5), np.nan, dtype=np.float32)
    got = read_region(any_store, v, (slice(1, 3), slice(2, 5), slice(None)), out=buf)
    assert got is buf
    np.testing.assert_array_equal(buf, values[1:3, 2:5])
    # or into a strided view (the interior of a halo-padded block)
    padded = np.full((4, 5, 7), np.nan, dtype=np.float32)
    read_region(any_store, v, (slice(1, 3), slice(2, 5), slice(None)), out=padded[1:3, 1:4, 1:6])
    np.testing.assert_array_equal(padded[1:3, 1:4, 1:6], values[1:3, 2:5])
    assert np.isnan(padded[0]).all() and np.isnan(padded[:, :, 0]).all()
    frozen = np.empty((2, 3, 5), "f4")
    frozen.flags.writeable = False
    for bad in (np.empty((2, 3, 4), "f4"), np.empty((2, 3, 5), "f8"), frozen):
        with pytest.raises(ValueError, match=r"needs a writable \(2, 3, 5\) float32 array"):
            read_region(any_store, v, (slice(1, 3), slice(2, 5), slice(None)), out=bad)
    assert w.bytes_written == sum(
        len(any_store.read_bytes(f"datasets/ds1/arrays.zarr/v/{k}")) for k in sums
    )


def test_codecs_are_blosc_lz4_shuffle_crc32c(store: Store) -> None:
    kw = array_codecs()
    assert set(kw) == {"serializer", "compressors"}
    w = DatasetWriter(store, "codecs")
    w.create({})
    for dtype, shuffle in [("float32", "shuffle"), ("uint8", "bitshuffle"), ("int16", "shuffle")]:
        w.create_array(f"a_{dtype}", shape=(8,), dtype=dtype, chunks=(4,), dims=("x",))
        meta = store.read_json(f"datasets/codecs/arrays.zarr/a_{dtype}/zarr.json")
        names = [c["name"] for c in meta["codecs"]]
        assert names == ["bytes", "blosc", "crc32c"]
        blosc = meta["codecs"][1]["configuration"]
        assert (blosc["cname"], blosc["clevel"], blosc["shuffle"]) == ("lz4", 5, shuffle)
        assert blosc["typesize"] == np.dtype(dtype).itemsize
    assert array_codecs("uint8")["compressors"][0].shuffle.value == "bitshuffle"


def test_create_is_idempotent(store: Store, rng: np.random.Generator) -> None:
    values = _cube(rng)
    _, first = _write_cube(store, values)
    _, again = _write_cube(store, values)  # a re-run of the staged write
    assert first == again  # same bytes: deterministic codec


def test_create_array_conflict(store: Store) -> None:
    w = DatasetWriter(store, "c1")
    w.create({})
    w.create_array("v", shape=(4, 4), dtype="f4", chunks=(2, 2), dims=("y", "x"))
    for change in [
        dict(shape=(4, 5)),
        dict(dtype="f8"),
        dict(chunks=(4, 4)),
        dict(dims=("a", "b")),
        dict(attrs={"units": "m"}),
        dict(fill_value=1.0),
    ]:
        kw = dict(shape=(4, 4), dtype="f4", chunks=(2, 2), dims=("y", "x")) | change
        with pytest.raises(StoreError, match="already exists with different metadata") as info:
            w.create_array("v", **kw)  # type: ignore[arg-type]
        assert "'c1'" in str(info.value) and "'v'" in str(info.value)


def test_create_array_refuses_foreign_codecs(store: Store) -> None:
    import zarr

    # an array written with zarr's defaults (no CRC-32C) is not silently adopted
    zs = store.zarr_store("datasets/zs/arrays.zarr")
    zarr.create_group(zs, zarr_format=3)
    zarr.create_array(
        zs, name="v", shape=(4,), chunks=(2,), dtype="f4", dimension_names=("x",), fill_value=np.nan
    )
    with pytest.raises(StoreError, match=r"codecs \['bytes', 'zstd'\]"):
        DatasetWriter(store, "zs").create_array(
            "v", shape=(4,), dtype="f4", chunks=(2,), dims=("x",)
        )


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(shape=(4,), dtype="f4", chunks=(2, 2), dims=("x",)), "one positive length"),
        (dict(shape=(4,), dtype="f4", chunks=(0,), dims=("x",)), "one positive length"),
        (dict(shape=(4, 4), dtype="f4", chunks=(2, 2), dims=("x",)), "must name each"),
        (dict(shape=(4, 4), dtype="f4", chunks=(2, 2), dims=("x", "x")), "distinct"),
        (dict(shape=(4,), dtype="U4", chunks=(2,), dims=("x",)), "cannot be stored"),
        (dict(shape=(4,), dtype="M8[ns]", chunks=(2,), dims=("x",)), "write_coord"),
    ],
)
def test_create_array_invalid(store: Store, kw: dict, match: str) -> None:
    w = DatasetWriter(store, "bad")
    with pytest.raises(ValueError, match=match):
        w.create_array("v", **kw)


def test_hostile_array_and_dataset_names(store: Store) -> None:
    from minjiang.core.errors import InvalidNameError

    with pytest.raises(InvalidNameError):
        DatasetWriter(store, "../escape")
    w = DatasetWriter(store, "ok")
    for bad in ["../x", "a/b", "", "zarr.json"]:
        with pytest.raises((InvalidNameError, ValueError)):
            w.create_array(bad, shape=(2,), dtype="f4", chunks=(2,), dims=("x",))
    with pytest.raises(InvalidNameError):
        w.write_table_part("../t", "0", {"a": [1]})
    with pytest.raises(InvalidNameError):
        w.write_table_part("t", "../0", {"a": [1]})
    assert store.list("") == ["minjiang.json"]  # validated before anything is written


@pytest.mark.parametrize(
    "region",
    [
        (slice(1, 3), slice(0, 3), slice(0, 5)),  # starts mid-chunk
        (slice(0, 3), slice(0, 3), slice(0, 5)),  # ends mid-chunk, not at the edge
        (slice(0, 2), slice(0, 3), slice(1, 5)),
    ],
)
def test_unaligned_region_rejected(store: Store, region: tuple[slice, ...]) -> None:
    w = DatasetWriter(store, "al")
    w.create_array("v", shape=(4, 6, 5), dtype="f4", chunks=(2, 3, 5), dims=("t", "y", "x"))
    shape = tuple(s.stop - s.start for s in region)
    with pytest.raises(ValueError, match="not aligned to its chunks") as info:
        w.write_region("v", region, np.zeros(shape, "f4"))
    assert "'al'" in str(info.value)
    assert store.list("datasets/al/arrays.zarr/v") == ["datasets/al/arrays.zarr/v/zarr.json"]


def test_region_ending_at_edge_and_shape_checks(store: Store) -> None:
    w = DatasetWriter(store, "edge")
    w.create_array("v", shape=(5, 7), dtype="i4", chunks=(2, 3), dims=("y", "x"))
    sums = w.write_region("v", (slice(4, 5), slice(6, 7)), np.ones((1, 1), "i4"))
    assert list(sums) == ["c/2/2"]
    with pytest.raises(ValueError, match="does not fit"):
        w.write_region("v", (slice(0, 2), slice(0, 3)), np.ones((2, 2), "i4"))
    with pytest.raises(ValueError, match="out of bounds"):
        w.write_region("v", (slice(0, 2), slice(0, 9)), np.ones((2, 9), "i4"))
    with pytest.raises(ValueError, match="2 dimensions"):
        w.write_region("v", (slice(0, 2),), np.ones((2,), "i4"))
    with pytest.raises(ValueError, match="step 1"):
        w.write_region("v", (slice(0, 2, 2), slice(0, 3)), np.ones((1, 3), "i4"))
    with pytest.raises(ValueError, match="without changing its kind"):
        w.write_region("v", (slice(0, 2), slice(0, 3)), np.ones((2, 3), "f8"))
    with pytest.raises(StoreError, match="no array 'nope'"):
        w.write_region("nope", (slice(0, 1),), np.ones(1))


def test_fill_value_chunks_are_stored(store: Store) -> None:
    # a chunk equal to the fill value must still exist, or it could not be verified
    w = DatasetWriter(store, "fill")
    w.create_array("v", shape=(4,), dtype="f4", chunks=(2,), dims=("x",))
    sums = w.write_region("v", (slice(0, 4),), np.full(4, np.nan, "f4"))
    assert sorted(sums) == ["c/0", "c/1"]
    assert store.exists("datasets/fill/arrays.zarr/v/c/0")
    assert verify_dataset(store, "fill", {"v": sums}).ok


def test_zero_d_and_empty_arrays(store: Store) -> None:
    w = DatasetWriter(store, "small")
    w.create_array("s", shape=(), dtype="f8", chunks=(), dims=())
    assert list(w.write_region("s", (), np.array(2.5))) == ["c"]
    w.create_array("e", shape=(0, 3), dtype="f4", chunks=(1, 3), dims=("n", "k"))
    assert w.write_region("e", (slice(0, 0), slice(0, 3)), np.zeros((0, 3), "f4")) == {}
    info = open_dataset_info(store, "small")
    assert float(read_array(store, info.arrays["s"])) == 2.5
    assert read_array(store, info.arrays["e"]).shape == (0, 3)


def test_checksums_detect_flipped_byte_and_truncation(
    store: Store, rng: np.random.Generator
) -> None:
    values = _cube(rng)
    _, sums = _write_cube(store, values, "dmg")
    checks = {"v": sums}
    assert verify_dataset(store, "dmg", checks) == verify_dataset(store, "dmg", checks)
    report = verify_dataset(store, "dmg", checks)
    assert report.ok and report.checked == 4 and report.problems == []
    ensure_verified(report, "dmg")

    flipped = store.local_path("datasets/dmg/arrays.zarr/v/c/1/0/0")
    truncated = store.local_path("datasets/dmg/arrays.zarr/v/c/0/1/0")
    assert flipped is not None and truncated is not None
    raw = bytearray(flipped.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    flipped.write_bytes(bytes(raw))
    truncated.write_bytes(truncated.read_bytes()[:-7])
    store.delete("datasets/dmg/arrays.zarr/v/c/0/0/0")

    report = verify_dataset(store, "dmg", checks)
    assert not report.ok and report.checked == 4
    assert [(p.array, p.chunk_key, p.problem) for p in report.problems] == [
        ("v", "c/0/0/0", "missing"),
        ("v", "c/0/1/0", "checksum mismatch"),
        ("v", "c/1/0/0", "checksum mismatch"),
    ]
    with pytest.raises(ChecksumMismatchError) as info:
        ensure_verified(report, "dmg")
    msg = str(info.value)
    assert (
        "'dmg'" in msg and "3 of 4" in msg and "v/c/0/0/0 (missing)" in msg and "v/c/1/0/0" in msg
    )
    assert isinstance(info.value, OSError)

    # zarr's own CRC-32C refuses the damaged chunks on read, named by key
    v = open_dataset_info(store, "dmg").arrays["v"]
    with pytest.raises(
        ChecksumMismatchError, match=r"chunk 'c/1/0/0' of array 'v' in dataset 'dmg'"
    ):
        read_region(store, v, (slice(2, 4), slice(0, 3), slice(0, 5)))
    with pytest.raises(ChecksumMismatchError, match=r"chunk 'c/1/0/0'"):  # into a buffer too
        read_region(
            store, v, (slice(2, 4), slice(0, 3), slice(0, 5)), out=np.empty((2, 3, 5), "f4")
        )
    with pytest.raises(ChecksumMismatchError, match="c/0/1/0"):
        read_region(store, v, (slice(0, 2), slice(3, 6), slice(0, 5)))
    # the deleted chunk is an error, never fill values
    with pytest.raises(MissingChunkError, match=r"chunk 'c/0/0/0' of array 'v' in dataset 'dmg'"):
        read_array(store, v)
    # a whole read decodes chunks concurrently and may first meet a damaged chunk's
    # CRC error; naming the culprit probes in key order, where the missing chunk comes
    # first and is reported as missing, never as damaged
    from minjiang.storage._reader import _find_bad_chunk, _open_for_read

    whole = tuple(slice(0, n) for n in v.shape)
    with pytest.raises(MissingChunkError, match="c/0/0/0"):
        _find_bad_chunk(_open_for_read(store, v), whole, tuple(v.chunks))
    # untouched chunks still read
    np.testing.assert_array_equal(
        read_region(store, v, (slice(2, 4), slice(3, 6), slice(0, 5))), values[2:4, 3:6]
    )


def test_verify_tables_and_hostile_checksum_keys(store: Store) -> None:
    w = DatasetWriter(store, "tb")
    key, digest = w.write_table_part("stats", "0000", {"a": np.arange(3)})
    assert key == "datasets/tb/tables/stats/part-0000.parquet"
    assert verify_dataset(store, "tb", {}, tables={"stats": {key: digest}}).ok
    path = store.local_path(key)
    assert path is not None
    path.write_bytes(path.read_bytes()[:-3])
    report = verify_dataset(store, "tb", {}, tables={"stats": {key: digest}})
    assert report.problems[0].problem == "checksum mismatch"
    from minjiang.core.errors import InvalidNameError

    with pytest.raises(InvalidNameError):
        verify_dataset(store, "tb", {"v": {"../../../minjiang.json": "0"}})
    with pytest.raises(ValueError, match="not below"):
        verify_dataset(store, "tb", {}, tables={"stats": {"minjiang.json": "0"}})


def test_tables(any_store: Store) -> None:
    import pyarrow as pa

    w = DatasetWriter(any_store, "tab")
    w.create({})
    k1, _ = w.write_table_part("events", "0001", pa.table({"id": [3, 4], "v": [0.5, 1.5]}))
    k0, _ = w.write_table_part(
        "events", "0000", {"id": np.array([1, 2]), "v": np.array([0.1, 0.2])}
    )
    w.write_table_part("other", "a", {"x": ["p", "q", "r"]})
    table = read_table(any_store, "tab", "events")
    assert table.column("id").to_pylist() == [1, 2, 3, 4]  # sorted by part name
    info = open_dataset_info(any_store, "tab")
    assert info.tables == {
        "events": [k0, k1],
        "other": ["datasets/tab/tables/other/part-a.parquet"],
    }
    schema = dataset_schema(info)
    assert schema["tables"] == {
        "events": {"columns": {"id": "int64", "v": "double"}, "rows": 4},
        "other": {"columns": {"x": "string"}, "rows": 3},
    }
    with pytest.raises(KeyNotFoundError, match=r"no table 'nope'.*\['events', 'other'\]"):
        read_table(any_store, "tab", "nope")


def test_dataset_schema_is_json(store: Store, rng: np.random.Generator) -> None:
    w, _ = _write_cube(store, _cube(rng), "sch")
    w.write_coord("t", np.arange(4.0), dims=("t",), attrs={"valid_range": np.array([0.0, np.inf])})
    schema = dataset_schema(open_dataset_info(store, "sch"))
    assert json.loads(json.dumps(schema, allow_nan=False)) == schema
    assert schema["arrays"]["v"] == {
        "dims": ["t", "y", "x"],
        "shape": [4, 6, 5],
        "dtype": "float32",
        "chunks": [2, 3, 5],
        "attrs": {"units": "K"},
    }
    assert schema["coords"]["t"]["attrs"] == {"valid_range": [0.0, "Infinity"]}
    assert schema["tables"] == {}


def test_missing_dataset(store: Store) -> None:
    with pytest.raises(DatasetNotFoundError, match="'nope'"):
        open_dataset_info(store, "nope")
    bogus = ArrayInfo("v", "datasets/nope/arrays.zarr/v", ("x",), (2,), "f4", (2,), {}, "nope")
    with pytest.raises(DatasetNotFoundError, match="array 'v' of dataset 'nope'"):
        read_array(store, bogus)


def test_scratch_group_and_consolidation(store: Store) -> None:
    main = DatasetWriter(store, "sc")
    main.create({"a": 1})
    main.create_array("v", shape=(2,), dtype="f4", chunks=(2,), dims=("x",))
    main.consolidate()
    root = store.read_json("datasets/sc/arrays.zarr/zarr.json")
    assert set(root["consolidated_metadata"]["metadata"]) == {"v"}
    # a later metadata change keeps consolidated metadata true
    main.create_array("w", shape=(2,), dtype="f4", chunks=(2,), dims=("x",))
    root = store.read_json("datasets/sc/arrays.zarr/zarr.json")
    assert set(root["consolidated_metadata"]["metadata"]) == {"v", "w"}
    assert set(open_dataset_info(store, "sc").arrays) == {"v", "w"}

    scratch = DatasetWriter(store, "sc", group="_scratch/arrays.zarr")
    scratch.create({})
    scratch.create_array("state", shape=(2, 2), dtype="f8", chunks=(1, 2), dims=("part", "d0"))
    sums = scratch.write_region("state", (slice(1, 2), slice(0, 2)), np.ones((1, 2)))
    assert list(sums) == ["c/1/0"]
    assert store.exists("datasets/sc/_scratch/arrays.zarr/state/c/1/0")
    assert set(open_dataset_info(store, "sc").arrays) == {"v", "w"}  # scratch is not the dataset
    store.delete_prefix("datasets/sc/_scratch")
    assert not store.list("datasets/sc/_scratch")


def test_group_attrs_update_and_idempotent(store: Store) -> None:
    w = DatasetWriter(store, "ga")
    w.create({"a": 1})
    w.create({"a": 1})
    w.create({"a": 2, "b": [1, 2]})
    assert open_dataset_info(store, "ga").attrs == {"a": 2, "b": [1, 2]}


def test_default_chunks() -> None:
    assert default_chunks((10, 10), 4) == (10, 10)
    c = default_chunks((365, 720, 1440), 4)
    assert math.prod(c) * 4 <= 8 << 20
    assert math.prod(c) * 4 > 2 << 20  # not needlessly small
    assert default_chunks((4, 5000, 5000), 4)[0] == 4  # short dims keep their extent
    pinned = default_chunks((365, 720, 1440), 4, dims=("time", "lat", "lon"), fixed={"time": -1})
    assert pinned[0] == 365 and math.prod(pinned) * 4 <= 8 << 20
    assert default_chunks((0, 3), 8) == (1, 3)
    with pytest.raises(ValueError, match="dims are"):
        default_chunks((3,), 4, dims=("x",), fixed={"y": 1})
    with pytest.raises(ValueError, match="positive"):
        default_chunks((3,), 4, dims=("x",), fixed={"x": 0})


@pytest.mark.parametrize(
    ("shape", "chunks", "limit"),
    [
        ((20, 16, 16), (2, 8, 8), 4096),
        ((7, 9), (2, 4), 64),
        ((7, 9), (2, 4), 10_000),
        ((5,), (5,), 20),
    ],
)
def test_blocks_are_aligned_bounded_and_cover(shape: tuple, chunks: tuple, limit: int) -> None:
    seen = np.zeros(shape, dtype=int)
    for region in _iter_blocks(shape, chunks, 4, limit):
        size = math.prod(s.stop - s.start for s in region) * 4
        assert size <= max(limit, math.prod(chunks) * 4)
        for s, c, n in zip(region, chunks, shape, strict=True):
            assert s.start % c == 0 and (s.stop % c == 0 or s.stop == n)
        seen[region] += 1
    assert (seen == 1).all()

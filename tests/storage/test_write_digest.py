"""The write and read paths: digests taken as chunks are written (never by reading them
back), chunks encoded and decoded outside zarr's pipeline byte for byte as zarr does,
and the read path's decode accounting."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xxhash
import zarr
from minjiang.core.errors import ChecksumMismatchError
from minjiang.storage import (
    Catalog,
    DatasetWriter,
    Record,
    Store,
    _catalog,
    dataset_schema,
    open_dataset_info,
    read_region,
)
from minjiang.storage._encoding import array_codecs, chunk_codec
from minjiang.storage._guard import is_metadata_key
from minjiang.storage._reader import decoded_nbytes
from zarr.storage import WrapperStore


@pytest.fixture(autouse=True)
def _fresh_record_cache() -> None:
    _catalog._CACHE.clear()


class CountingStore(WrapperStore[Any]):
    """A zarr store that records every chunk key read through it."""

    def __init__(self, store: Any, log: list[str]) -> None:
        super().__init__(store)
        self.log = log

    def _with_store(self, store: Any) -> CountingStore:
        return type(self)(store, self.log)

    def _note(self, key: str) -> None:
        if not is_metadata_key(key):
            self.log.append(key)

    async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
        self._note(key)
        return await self._store.get(key, prototype, byte_range)

    async def get_partial_values(self, prototype: Any, key_ranges: Any) -> Any:
        key_ranges = list(key_ranges)
        for key, _ in key_ranges:
            self._note(key)
        return await self._store.get_partial_values(prototype, key_ranges)

    async def exists(self, key: str) -> bool:
        self._note(key)
        return await self._store.exists(key)


@pytest.fixture
def chunk_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every chunk key any minjiang zarr store reads (or probes) from now on."""
    log: list[str] = []
    original = Store.zarr_store

    def counting(self: Store, prefix: str, *, read_only: bool = False) -> Any:
        return CountingStore(original(self, prefix, read_only=read_only), log)

    monkeypatch.setattr(Store, "zarr_store", counting)
    return log


def _stored(store: Store, did: str, name: str) -> dict[str, bytes]:
    prefix = f"datasets/{did}/arrays.zarr/{name}/"
    return {k[len(prefix) :]: store.read_bytes(k) for k in store.list(prefix) if "/c/" in f"/{k}"}


def _writer(store: Store, did: str, values: np.ndarray, chunks: tuple[int, ...]) -> DatasetWriter:
    w = DatasetWriter(store, did)
    w.create({})
    dims = tuple(f"d{i}" for i in range(values.ndim))
    w.create_array("v", shape=values.shape, dtype=values.dtype, chunks=chunks, dims=dims)
    return w


def _whole(shape: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(slice(0, n) for n in shape)


def test_writing_reads_no_chunk_and_digests_the_stored_bytes(
    store: Store, chunk_reads: list[str]
) -> None:
    values = np.arange(7 * 9 * 5, dtype="f4").reshape(7, 9, 5)
    w = _writer(store, "nr", values, (3, 4, 5))  # edge chunks on two dims
    sums = w.write_region("v", _whole(values.shape), values)
    # a retried task rewrites its chunks: still nothing read back
    again = w.write_region("v", (slice(3, 7), slice(0, 9), slice(0, 5)), values[3:])
    assert chunk_reads == []
    stored = _stored(store, "nr", "v")
    assert set(sums) == set(stored) and len(stored) == 3 * 3
    for key, data in stored.items():
        assert sums[key] == "xxh3-128:" + xxhash.xxh3_128_hexdigest(data), key
    assert {k: sums[k] for k in again} == again
    # the reads themselves do go through the counting store (the spy sees reads)
    info = open_dataset_info(store, "nr")["v"]
    np.testing.assert_array_equal(read_region(store, info, _whole(values.shape)), values)
    assert sorted(set(chunk_reads)) == sorted(stored)


@pytest.mark.parametrize(
    "dtype", ["float32", "float64", "int16", "uint8", "bool", "complex64", ">f4"]
)
def test_chunks_are_the_bytes_zarr_writes(store: Store, tmp_path: Path, dtype: str) -> None:
    rng = np.random.default_rng(3)
    shape, chunks = (11, 6, 7), (4, 6, 3)  # edge chunks along two dims, padded with fill
    values = (rng.normal(size=shape) * 50).astype(dtype)
    w = _writer(store, "same", values, chunks)
    sums = w.write_region("v", _whole(shape), values)
    ours = _stored(store, "same", "v")
    # the same array written by zarr's own pipeline
    native = np.dtype(dtype).newbyteorder("=")
    z = zarr.create_array(
        str(tmp_path / "zarr.zarr"),
        shape=shape,
        chunks=chunks,
        dtype=native,
        fill_value=np.nan if native.kind in "fc" else 0,
        config={"write_empty_chunks": True},
        **array_codecs(native),
    )
    z[...] = values
    theirs = {
        str(p.relative_to(tmp_path / "zarr.zarr")): p.read_bytes()
        for p in (tmp_path / "zarr.zarr").rglob("*")
        if p.is_file() and p.name != "zarr.json"
    }
    assert ours == theirs
    assert chunk_codec(w._open("v")) is not None  # the direct path wrote them
    assert len(sums) == len(ours) == 3 * 1 * 3
    # and zarr reads what the direct path wrote, as the direct path reads zarr's
    np.testing.assert_array_equal(zarr.open_array(z.store, mode="r")[...], values)
    info = open_dataset_info(store, "same")["v"]
    np.testing.assert_array_equal(read_region(store, info, _whole(shape)), values)


def test_strided_and_cast_blocks_are_written_from_views(store: Store) -> None:
    big = np.arange(2 * 10 * 12, dtype="f8").reshape(2, 10, 12)
    view = big[1, 1:9, ::2]  # strided, float64 into float32 (same kind)
    w = _writer(store, "views", np.zeros((8, 6), "f4"), (3, 4))
    w.write_region("v", _whole((8, 6)), view)
    info = open_dataset_info(store, "views")["v"]
    np.testing.assert_array_equal(read_region(store, info, _whole((8, 6))), view.astype("f4"))


@pytest.mark.parametrize(
    "region",
    [
        (slice(0, 8), slice(0, 6)),  # the whole array: every chunk decoded into place
        (slice(2, 7), slice(1, 5)),  # cuts every chunk it touches
        (slice(3, 6), slice(4, 6)),  # one chunk, then the edge chunk
        (slice(5, 5), slice(0, 6)),  # empty
    ],
)
def test_reads_of_any_region(store: Store, region: tuple[slice, ...]) -> None:
    values = np.arange(48, dtype="i4").reshape(8, 6)
    w = _writer(store, "reg", values, (3, 4))
    w.write_region("v", _whole(values.shape), values)
    info = open_dataset_info(store, "reg")["v"]
    np.testing.assert_array_equal(read_region(store, info, region), values[region])
    out = np.empty(values[region].shape, "i4")
    assert read_region(store, info, region, out=out) is out
    np.testing.assert_array_equal(out, values[region])


def test_decoded_bytes_count_whole_chunks() -> None:
    from minjiang.storage import ArrayInfo

    info = ArrayInfo(
        "v", "datasets/d/arrays.zarr/v", ("y", "x"), (10, 7), "float32", (4, 3), {}, "d"
    )
    # a halo of 1 around chunk (1, 1): rows 3..9 touch chunks 0-2 (rows 0..10, the last
    # clipped to the edge), columns 2..7 touch chunks 0-2 (columns 0..7)
    assert decoded_nbytes(info, (slice(3, 9), slice(2, 7))) == 10 * 7 * 4
    assert decoded_nbytes(info, (slice(4, 8), slice(3, 6))) == 4 * 3 * 4  # exactly one chunk
    assert decoded_nbytes(info, (slice(8, 10), slice(6, 7))) == 2 * 1 * 4  # the corner chunk
    assert decoded_nbytes(info, (slice(0, 0), slice(0, 7))) == 0


def test_a_damaged_chunk_is_named_first_in_key_order(store: Store) -> None:
    values = np.arange(48, dtype="f4").reshape(8, 6)
    w = _writer(store, "crc", values, (3, 4))
    w.write_region("v", _whole(values.shape), values)
    info = open_dataset_info(store, "crc")["v"]
    for key in ("datasets/crc/arrays.zarr/v/c/2/0", "datasets/crc/arrays.zarr/v/c/1/1"):
        raw = bytearray(store.read_bytes(key))
        raw[len(raw) // 2] ^= 0xFF
        store.write_bytes(key, bytes(raw))
    with pytest.raises(ChecksumMismatchError, match=r"chunk 'c/1/1' of array 'v' .*CRC-32C"):
        read_region(store, info, _whole(values.shape))
    np.testing.assert_array_equal(read_region(store, info, (slice(0, 3),) * 2), values[:3, :3])


def test_committed_reads_check_the_record_and_read_fill_by_design(store: Store) -> None:
    values = np.ones((8, 6), "f4")
    w = _writer(store, "rec", values, (3, 4))
    sums = w.write_region("v", _whole(values.shape), values)
    w.consolidate()
    store.delete("datasets/rec/arrays.zarr/v/c/2/1")
    sums["c/2/1"] = "fill"
    Catalog(store).publish(
        Record(
            id="rec",
            kind="ingested",
            domain="test",
            schema=dataset_schema(open_dataset_info(store, "rec")),
            producer={"reader": "test.r", "version": "1", "params": {}},
            checksums={"v": sums},
        )
    )
    info = open_dataset_info(store, "rec")["v"]
    got = read_region(store, info, _whole(values.shape))
    assert np.isnan(got[6:, 4:]).all() and (got[:6] == 1).all()
    # a chunk rewritten with valid bytes (its CRC fine) is still not what the record says
    other = _stored(store, "rec", "v")["c/0/1"]
    store.write_bytes("datasets/rec/arrays.zarr/v/c/0/0", other)
    with pytest.raises(ChecksumMismatchError, match=r"chunk 'c/0/0' of array 'v'.*recorded digest"):
        read_region(store, info, (slice(0, 3), slice(0, 4)))


def test_other_codecs_go_through_zarr(store: Store) -> None:
    from zarr.codecs import BytesCodec, ZstdCodec

    values = np.arange(20, dtype="f4").reshape(4, 5)
    w = DatasetWriter(store, "zstd")
    w.create({})
    w._create(
        "v",
        shape=values.shape,
        dtype=values.dtype,
        chunks=(2, 5),
        dims=("y", "x"),
        attrs=None,
        fill_value=None,
        coord=False,
        codecs={"serializer": BytesCodec(), "compressors": [ZstdCodec()]},
    )
    assert chunk_codec(w._open("v")) is None
    sums = w.write_region("v", _whole(values.shape), values)
    stored = _stored(store, "zstd", "v")
    assert {k: "xxh3-128:" + xxhash.xxh3_128_hexdigest(b) for k, b in stored.items()} == sums
    info = open_dataset_info(store, "zstd")["v"]
    np.testing.assert_array_equal(
        read_region(store, info, (slice(1, 4), slice(2, 5))), values[1:, 2:]
    )


def test_every_chunk_of_a_region_is_written_once(store: Store) -> None:
    values = np.arange(6 * 8, dtype="u2").reshape(6, 8)
    w = _writer(store, "once", values, (2, 3))
    sums = w.write_region("v", (slice(2, 6), slice(3, 8)), values[2:, 3:])
    want = {f"c/{i}/{j}" for i, j in itertools.product((1, 2), (1, 2))}
    assert set(sums) == want == set(_stored(store, "once", "v"))


def test_a_scalar_array_round_trips(store: Store, tmp_path: Path) -> None:
    w = DatasetWriter(store, "scalar")
    w.create({})
    sums = w.write_coord("height", np.float32(2.5), dims=())
    z = zarr.create_array(
        str(tmp_path / "s.zarr"), shape=(), chunks=(), dtype="f4", **array_codecs("f4")
    )
    z[()] = np.float32(2.5)
    assert sums == {
        "c": "xxh3-128:" + xxhash.xxh3_128_hexdigest((tmp_path / "s.zarr/c").read_bytes())
    }
    info = open_dataset_info(store, "scalar").coords["height"]
    got = read_region(store, info, ())
    assert got.shape == () and got == np.float32(2.5)

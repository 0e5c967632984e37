"""Every way a committed dataset can stop being what its record says is caught loudly.

For each class of corruption, the damage is done to the files of a published dataset
and must be detected both by ``verify_dataset`` and by a read: ``read_region`` (the
path every task and the GPU read use), ``open_xarray``, ``minjiang.open(...).load()``
and, for tables, ``read_table``. Each raises a typed error naming the dataset and the
chunk, part, document or record; never fill values, never silently wrong numbers,
never zarr's bare ``ValueError``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from minjiang.core.errors import (
    ChecksumMismatchError,
    IntegrityError,
    MissingChunkError,
    RecordIntegrityError,
)
from minjiang.storage import (
    Catalog,
    DatasetWriter,
    LocalStore,
    Record,
    _catalog,
    open_dataset_info,
    open_store,
    open_xarray,
    read_region,
    read_table,
    verify_dataset,
    write_xarray,
)

A, B, T = "corrupta1", "corruptb2", "corruptt3"
VAR = "sst"
GROUP = f"datasets/{A}/arrays.zarr"


def _cube(seed: int) -> xr.Dataset:
    values = np.random.default_rng(seed).normal(size=(8, 6, 4)).astype("f4")
    return xr.Dataset(
        {VAR: (("time", "y", "x"), values, {"units": "K"})},
        coords={"y": np.arange(6.0), "x": np.arange(4.0)},
    )


def _publish(store: LocalStore, did: str, ds: xr.Dataset) -> Record:
    summary = write_xarray(store, did, ds, chunks={"time": 2, "y": 3, "x": 4})
    record = Record(
        id=did,
        kind="ingested",
        domain="test",
        schema=summary.schema,
        producer={"reader": "test.cube", "version": "1", "params": {"seed": 1}},
        checksums=summary.checksums,
    )
    assert Catalog(store).publish(record)
    return Catalog(store).get(did)


def _publish_table(store: LocalStore) -> Record:
    writer = DatasetWriter(store, T)
    parts: dict[str, str] = {}
    for i in range(2):
        key, digest = writer.write_table_part(
            "stats", f"{i:05d}", {"region": np.arange(3) + 3 * i, "mean": np.linspace(0, 1, 3)}
        )
        parts[key] = digest
    record = Record(id=T, kind="ingested", domain="test", tables={"stats": parts})
    assert Catalog(store).publish(record)
    return Catalog(store).get(T)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalStore]:
    st = open_store(tmp_path / "store")
    assert isinstance(st, LocalStore)
    _publish(st, A, _cube(1))
    _publish(st, B, _cube(2))
    _publish_table(st)
    assert verify_dataset(st, A).ok and verify_dataset(st, B).ok and verify_dataset(st, T).ok
    # A read in a new process: records come from the store, not from this one's cache.
    _catalog._CACHE.clear()
    yield st
    _catalog._CACHE.clear()


def _path(store: LocalStore, key: str) -> Path:
    path = store.local_path(key)
    assert path is not None
    return path


def _rewrite_json(store: LocalStore, key: str, edit: Callable[[dict[str, Any]], None]) -> None:
    path = _path(store, key)
    doc = json.loads(path.read_bytes())
    edit(doc)
    path.write_text(json.dumps(doc))


# --------------------------------------------------------------------------- corruptions


def flip_byte(store: LocalStore) -> str:
    path = _path(store, f"{GROUP}/{VAR}/c/1/0/0")
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x10
    path.write_bytes(bytes(raw))
    return "c/1/0/0"


def truncate(store: LocalStore) -> str:
    path = _path(store, f"{GROUP}/{VAR}/c/2/1/0")
    path.write_bytes(path.read_bytes()[:-9])
    return "c/2/1/0"


def delete_chunk(store: LocalStore) -> str:
    _path(store, f"{GROUP}/{VAR}/c/3/0/0").unlink()
    return "c/3/0/0"


def swap_chunks(store: LocalStore) -> str:
    one, two = _path(store, f"{GROUP}/{VAR}/c/0/0/0"), _path(store, f"{GROUP}/{VAR}/c/1/1/0")
    a, b = one.read_bytes(), two.read_bytes()
    one.write_bytes(b)
    two.write_bytes(a)
    return "c/0/0/0|c/1/1/0"  # a read names whichever it decodes first


def stale_chunk(store: LocalStore) -> str:
    # a valid chunk, same position and shape, of another dataset
    shutil.copyfile(
        _path(store, f"datasets/{B}/arrays.zarr/{VAR}/c/2/0/0"),
        _path(store, f"{GROUP}/{VAR}/c/2/0/0"),
    )
    return "c/2/0/0"


def edit_record_params(store: LocalStore) -> str:
    _rewrite_json(
        store,
        f"catalog/records/{A}.json",
        lambda doc: doc["producer"]["params"].update(seed=99),
    )
    return f"catalog/records/{A}.json"


def swap_record_id(store: LocalStore) -> str:
    # A's record file now holds B's record: open(A) would serve B's data
    shutil.copyfile(
        _path(store, f"catalog/records/{B}.json"), _path(store, f"catalog/records/{A}.json")
    )
    return f"catalog/records/{A}.json"


def edit_metadata(store: LocalStore) -> str:
    def scale(attrs: dict[str, Any]) -> None:
        attrs["scale_factor"] = 2.0

    _rewrite_json(store, f"{GROUP}/{VAR}/zarr.json", lambda doc: scale(doc["attributes"]))
    _rewrite_json(
        store,
        f"{GROUP}/zarr.json",
        lambda doc: scale(doc["consolidated_metadata"]["metadata"][VAR]["attributes"]),
    )
    return "zarr.json"


def drop_checksum_and_chunk(store: LocalStore) -> str:
    # A producer that forgot one chunk and never wrote it: the record, digest and all,
    # is consistent with itself; only the chunk grid shows the hole.
    record = Catalog(store).get(A)
    sums = {k: dict(v) for k, v in record.checksums.items()}
    del sums[VAR]["c/0/1/0"]
    bad = record.model_copy(update={"checksums": sums, "digest": ""})
    bad = bad.model_copy(update={"digest": bad.content_digest()})
    _path(store, f"catalog/records/{A}.json").write_bytes(bad.to_json())
    _path(store, f"{GROUP}/{VAR}/c/0/1/0").unlink()
    _catalog._CACHE.clear()
    return "c/0/1/0"


def edit_table_part(store: LocalStore) -> str:
    import pyarrow.parquet as pq

    key = f"datasets/{T}/tables/stats/part-00001.parquet"
    table = pq.read_table(_path(store, key))
    pq.write_table(table.set_column(1, "mean", [np.full(3, 7.0)]), _path(store, key))
    return key


CASES: dict[str, tuple[Callable[[LocalStore], str], type[IntegrityError]]] = {
    "flip": (flip_byte, ChecksumMismatchError),
    "truncate": (truncate, ChecksumMismatchError),
    "delete": (delete_chunk, MissingChunkError),
    "swap": (swap_chunks, ChecksumMismatchError),
    "stale": (stale_chunk, ChecksumMismatchError),
    "record_edit": (edit_record_params, RecordIntegrityError),
    "record_id_swap": (swap_record_id, RecordIntegrityError),
    "metadata_edit": (edit_metadata, ChecksumMismatchError),
    "dropped_checksum": (drop_checksum_and_chunk, MissingChunkError),
    "table_part": (edit_table_part, ChecksumMismatchError),
}


def _read_region(store: LocalStore) -> None:
    info = open_dataset_info(store, A)[VAR]
    read_region(store, info, tuple(slice(0, s) for s in info.shape))


def _read_xarray(store: LocalStore) -> None:
    open_xarray(store, A).load()


def _minjiang_open(store: LocalStore) -> None:
    import minjiang

    minjiang.open(A, store=store.root).load()


def _read_table(store: LocalStore) -> None:
    read_table(store, T, "stats")


@pytest.mark.parametrize("corruption", sorted(CASES))
def test_corruption_is_detected_by_verify_and_by_read(
    store: LocalStore, corruption: str, reliability_report: Callable[..., Any]
) -> None:
    damage, error = CASES[corruption]
    table = corruption == "table_part"
    did = T if table else A
    where = damage(store)

    report = verify_dataset(store, did)
    assert not report.ok
    keys = where.split("|")
    assert all(any(k in p.chunk_key for p in report.problems) for k in keys), report.problems

    readers = (
        {"read_table": _read_table}
        if table
        else {
            "read_region": _read_region,
            "open_xarray": _read_xarray,
            "minjiang.open": _minjiang_open,
        }
    )
    raised: dict[str, str] = {}
    for reader, read in readers.items():
        _catalog._CACHE.clear()  # each read as a fresh process would do it
        with pytest.raises(error) as info:
            read(store)
        message = str(info.value)
        assert repr(did) in message, message
        assert any(k in message for k in keys), message
        assert not isinstance(info.value, FileNotFoundError)  # never "not produced yet"
        raised[reader] = type(info.value).__name__
    if not table:
        # an untouched dataset beside it still reads and verifies
        np.testing.assert_array_equal(open_xarray(store, B)[VAR].values, _cube(2)[VAR].values)
    reliability_report(
        corruption=corruption,
        detected_by_verify=True,
        verify_problems=sorted({p.problem for p in report.problems}),
        detected_by_read=True,
        read_errors=raised,
    )


def test_leftover_temporary_files_are_swept_at_publish_and_reported_by_verify(
    store: LocalStore, reliability_report: Callable[..., Any]
) -> None:
    # zarr's LocalStore writes <chunk>.<uuid>.partial and renames it; a writer killed
    # in between leaves it. Publishing removes such files, verify reports any later.
    ds = _cube(3)
    leftover = _path(store, "datasets/swept0001/arrays.zarr/sst/c/0/0/0.0123abcd.partial")
    summary = write_xarray(store, "swept0001", ds, chunks={"time": 2, "y": 3, "x": 4})
    leftover.write_bytes(b"half a chunk")
    part_tmp = _path(store, "datasets/swept0001/tables/stats/.tmp-part-00000.parquet.99")
    part_tmp.parent.mkdir(parents=True)
    part_tmp.write_bytes(b"PAR1")
    planted = [leftover, part_tmp]
    Catalog(store).publish(
        Record(
            id="swept0001",
            kind="ingested",
            domain="test",
            schema=summary.schema,
            checksums=summary.checksums,
        )
    )
    swept = sum(not p.exists() for p in planted)
    assert swept == len(planted)
    assert verify_dataset(store, "swept0001").ok

    late = _path(store, "datasets/swept0001/arrays.zarr/sst/c/1/0/0.feedbeef.partial")
    late.write_bytes(b"half a chunk")
    tmp = _path(store, "datasets/swept0001/arrays.zarr/.tmp-zarr.json.0011")
    tmp.write_bytes(b"{}")
    report = verify_dataset(store, "swept0001")
    strays = sorted(p.chunk_key for p in report.problems if p.problem == "stray file")
    assert strays == [".tmp-zarr.json.0011", "sst/c/1/0/0.feedbeef.partial"]
    # and they are never part of the dataset: listings skip them
    assert not any(k.endswith(".partial") for k in store.list("datasets/swept0001"))
    reliability_report(
        corruption="leftover_temporary_files",
        planted_before_publish=len(planted),
        swept_at_publish=swept,
        reported_by_verify=len(strays),
    )


@pytest.mark.parametrize("corruption", ["delete", "stale", "flip"])
def test_a_step_never_computes_on_a_damaged_input(
    store: LocalStore, corruption: str, reliability_report: Callable[..., Any]
) -> None:
    # A later step reading the damaged dataset fails with the typed error; nothing is
    # committed under its id (before, a deleted chunk came in as NaNs and the step
    # committed them).
    import minjiang

    damage, error = CASES[corruption]
    where = damage(store)
    before = set(store.list("catalog/records"))
    with minjiang.Runtime(store=store.root, executor="local") as rt:
        with pytest.raises(error) as info:
            rt.run("array.gaussian", inputs={"x": f"{A}:{VAR}"}, params={"sigma": 1.0})
    assert repr(A) in str(info.value) and where in str(info.value)
    assert set(store.list("catalog/records")) == before
    reliability_report(
        corruption=corruption,
        path="input of a step (local executor)",
        detected_by_read=True,
        read_error=type(info.value).__name__,
        records_added=len(set(store.list("catalog/records")) - before),
    )

"""A dataset's info read from its consolidated metadata equals what zarr reads.

``open_dataset_info`` reads plain consolidated groups (the ones minjiang writes) from
the group's ``zarr.json`` itself, without importing zarr, and only after checking that
document against the dataset's record; every other group is opened by zarr.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from minjiang.errors import ChecksumMismatchError
from minjiang.storage import (
    Catalog,
    DatasetWriter,
    Record,
    Store,
    _catalog,
    dataset_schema,
    open_dataset_info,
)
from minjiang.storage._catalog import load_record
from minjiang.storage._reader import _consolidated_infos, _zarr_infos


@pytest.fixture(autouse=True)
def _fresh_record_cache() -> None:
    _catalog._CACHE.clear()


def _write(store: Store, did: str) -> dict[str, dict[str, str]]:
    w = DatasetWriter(store, did)
    w.create({"title": "cube", "history": ["a", "b"], "nan": float("nan")})
    sums: dict[str, dict[str, str]] = {}
    for name, values, dims, chunks in (
        ("sst", np.ones((6, 4, 5), "f4"), ("time", "y", "x"), (2, 4, 5)),
        ("mask", np.ones((4, 5), bool), ("y", "x"), (4, 5)),
        ("count", np.arange(20, dtype="u2").reshape(4, 5), ("y", "x"), (3, 2)),
        ("z", np.zeros((4, 5), "c8"), ("y", "x"), (4, 5)),
    ):
        w.create_array(
            name,
            shape=values.shape,
            dtype=values.dtype,
            chunks=chunks,
            dims=dims,
            attrs={"units": "K", "valid_range": [0, 1]},
        )
        sums[name] = w.write_region(name, tuple(slice(0, n) for n in values.shape), values)
    times = np.arange("2001-01-01", "2001-01-07", dtype="datetime64[D]").astype("M8[ns]")
    for name, values, dims, attrs in (
        ("time", times, ("time",), None),
        ("y", np.linspace(0, 1, 4), ("y",), {"units": "m"}),
        ("lat", np.zeros((4, 5)), ("y", "x"), {"units": "degrees_north"}),
        ("height", np.float32(2.0), (), {"units": "m"}),
    ):
        sums[name] = w.write_coord(name, values, dims=dims, attrs=attrs)
    w.consolidate()
    return sums


def _publish(store: Store, did: str, sums: dict[str, dict[str, str]]) -> Record:
    record = Record(
        id=did,
        kind="ingested",
        domain="test",
        schema=dataset_schema(open_dataset_info(store, did)),
        producer={"reader": "test.r", "version": "1", "params": {}},
        checksums=sums,
    )
    Catalog(store).publish(record)
    _catalog._CACHE.clear()
    found = load_record(store, did)
    assert found is not None
    return found


def _same(a, b) -> None:
    attrs_a, infos_a = a
    attrs_b, infos_b = b
    assert json.dumps(attrs_a, sort_keys=True) == json.dumps(attrs_b, sort_keys=True)
    assert sorted(infos_a) == sorted(infos_b)
    for name in infos_a:
        x, y = infos_a[name], infos_b[name]
        assert (x.name, x.path, x.dims, x.shape, x.dtype, x.chunks, x.dataset_id) == (
            y.name,
            y.path,
            y.dims,
            y.shape,
            y.dtype,
            y.chunks,
            y.dataset_id,
        ), name
        assert json.dumps(x.attrs, sort_keys=True) == json.dumps(y.attrs, sort_keys=True)


@pytest.mark.parametrize("committed", [False, True])
def test_consolidated_metadata_reads_as_zarr_reads_it(store: Store, committed: bool) -> None:
    sums = _write(store, "d1")
    record = _publish(store, "d1", sums) if committed else None
    prefix = "datasets/d1/arrays.zarr"
    fast = _consolidated_infos(store, record, prefix, "d1")
    assert fast is not None
    _same(fast, _zarr_infos(store, record, prefix, "d1"))
    assert fast[1]["height"].shape == () and fast[1]["time"].dtype == "int64"


def test_a_group_zarr_reads_differently_goes_to_zarr(store: Store) -> None:
    _write(store, "d2")
    key = "datasets/d2/arrays.zarr/zarr.json"
    doc = json.loads(store.read_bytes(key))
    prefix = "datasets/d2/arrays.zarr"
    for change in (
        lambda d: d.pop("consolidated_metadata"),
        lambda d: d["consolidated_metadata"]["metadata"]["sst"].update(
            data_type={"name": "numpy.datetime64", "configuration": {"unit": "s"}}
        ),
        lambda d: d["consolidated_metadata"]["metadata"]["sst"]["codecs"].insert(
            0, {"name": "sharding_indexed", "configuration": {}}
        ),
        lambda d: d["consolidated_metadata"]["metadata"].update(sub={"node_type": "group"}),
    ):
        changed = json.loads(json.dumps(doc))
        change(changed)
        store.write_bytes(key, json.dumps(changed).encode())
        assert _consolidated_infos(store, None, prefix, "d2") is None


def test_a_committed_group_document_that_differs_is_refused(store: Store) -> None:
    record = _publish(store, "d3", _write(store, "d3"))
    key = "datasets/d3/arrays.zarr/zarr.json"
    store.write_bytes(key, store.read_bytes(key).replace(b'"title": "cube"', b'"title": "edit"'))
    _catalog._CACHE.clear()
    assert _consolidated_infos(store, record, "datasets/d3/arrays.zarr", "d3") is None
    with pytest.raises(ChecksumMismatchError, match=r"group metadata 'zarr.json'"):
        open_dataset_info(store, "d3")


def test_a_committed_dataset_info_is_read_without_zarr(store: Store) -> None:
    """Planning against a committed dataset needs its metadata, not zarr (a third of a
    second to import)."""
    _publish(store, "d4", _write(store, "d4"))
    code = textwrap.dedent(
        f"""
        import sys
        from minjiang.storage import open_dataset_info, open_store

        info = open_dataset_info(open_store({store.url!r}), "d4")
        assert info.arrays["sst"].dims == ("time", "y", "x"), info.arrays["sst"]
        assert sorted(info.coords) == ["height", "lat", "time", "y"], sorted(info.coords)
        print(sorted(m for m in ("zarr", "xarray", "dask") if m in sys.modules))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["[]"], out.stdout + out.stderr

"""Reading datasets: metadata, regions of arrays, coordinates, tables, xarray.

Every array read opens its zarr store through a
:class:`~minjiang.storage._guard.GuardedStore`: a chunk that is not stored is a
:class:`~minjiang.errors.MissingChunkError`, and the chunks and metadata of a
committed dataset are checked against its catalog record before they are decoded.
Arrays with minjiang's codec are decoded chunk by chunk by
:class:`~minjiang.storage._encoding.ChunkCodec`, straight into the result where a
chunk is one contiguous block of it; other arrays (and reads onto a GPU) through zarr.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
from minjiang.errors import (
    ChecksumMismatchError,
    DatasetNotFoundError,
    IntegrityError,
    KeyNotFoundError,
    StoreError,
)
from minjiang.storage._encoding import (
    _COORDS_ATTR,
    ChunkCodec,
    _array_info,
    _chunk_indices,
    _coord_list,
    _decode_fill_attr,
    _normalise_region,
    _open_group,
    chunk_codec,
)
from minjiang.storage._info import ARRAYS, TABLES, ArrayInfo, DatasetInfo, dataset_prefix
from minjiang.storage._names import jsonable, validate_key, validate_segment
from minjiang.storage._store import Store

if TYPE_CHECKING:
    import pyarrow as pa
    import xarray as xr
    import zarr
    from minjiang.storage._catalog import Record

__all__ = [
    "dataset_schema",
    "decoded_nbytes",
    "open_dataset_info",
    "open_xarray",
    "read_array",
    "read_coord_values",
    "read_region",
    "read_table",
]


def open_dataset_info(store: Store, dataset_id: str, *, table_schemas: bool = True) -> DatasetInfo:
    """Read a dataset's metadata (never chunk data).

    Parameters
    ----------
    store : Store
        The store.
    dataset_id : str
        The dataset id.
    table_schemas : bool, optional
        Also read each table part's Parquet footer for columns and row counts.

    Returns
    -------
    DatasetInfo

    Raises
    ------
    DatasetNotFoundError
        If the store holds neither arrays nor tables for that id.
    ChecksumMismatchError
        If the dataset is committed and its group metadata differs from its record.
    RecordIntegrityError
        If the dataset's catalog record has been altered.
    """
    from minjiang.storage._catalog import load_record

    prefix = dataset_prefix(dataset_id)
    arrays_prefix = f"{prefix}/{ARRAYS}"
    # A committed dataset is described by what its record vouches for: its tables are
    # the parts the record lists, its group metadata is checked against the record.
    record = load_record(store, dataset_id)
    if record is not None:
        tables = {
            t: sorted(parts, key=lambda k: k.rsplit("/", 1)[-1])
            for t, parts in sorted(record.tables.items())
        }
    else:
        tables = _table_parts(store, prefix)
    attrs: dict[str, Any] = {}
    infos: dict[str, ArrayInfo] = {}
    if store.exists(f"{arrays_prefix}/zarr.json"):
        found = _consolidated_infos(store, record, arrays_prefix, dataset_id)
        attrs, infos = (
            found if found is not None else _zarr_infos(store, record, arrays_prefix, dataset_id)
        )
    elif not tables:
        raise DatasetNotFoundError(
            f"dataset {dataset_id!r} is not in store {store.url!r} (no {arrays_prefix}/zarr.json "
            "and no tables); check the id, or that it was committed to this store"
        )
    coord_names = set(_coord_list(attrs.get(_COORDS_ATTR)))
    for info in infos.values():
        if len(info.dims) == 1 and info.dims[0] == info.name:
            coord_names.add(info.name)
        coord_names.update(_coord_list(info.attrs.get(_COORDS_ATTR)))
    coords = {n: i for n, i in sorted(infos.items()) if n in coord_names}
    data = {n: i for n, i in sorted(infos.items()) if n not in coord_names}
    schemas = (
        {t: table_schema(store, parts) for t, parts in tables.items()} if table_schemas else {}
    )
    return DatasetInfo(
        id=dataset_id,
        prefix=prefix,
        attrs=attrs,
        arrays=data,
        coords=coords,
        tables=tables,
        table_schemas=schemas,
    )


def _zarr_infos(
    store: Store, record: Record | None, arrays_prefix: str, dataset_id: str
) -> tuple[dict[str, Any], dict[str, ArrayInfo]]:
    """The group's attributes and its arrays' infos, as zarr opens the group."""
    import zarr

    zstore = (
        _guarded_group(store, record)
        if record is not None
        else store.zarr_store(arrays_prefix, read_only=True)
    )
    group = _open_group(zstore, mode="r", consolidated=None)
    infos = {
        name: _array_info(arr, name, f"{arrays_prefix}/{name}", dataset_id)
        for name, arr in group.arrays()
        if isinstance(arr, zarr.Array)
    }
    return dict(group.attrs), infos


#: zarr v3 data types whose name is numpy's: read from metadata without zarr
_PLAIN_DATA_TYPES = frozenset(
    {
        "bool",
        *(f"int{b}" for b in (8, 16, 32, 64)),
        *(f"uint{b}" for b in (8, 16, 32, 64)),
        "float16",
        "float32",
        "float64",
        "complex64",
        "complex128",
    }
)


def _consolidated_infos(
    store: Store, record: Record | None, arrays_prefix: str, dataset_id: str
) -> tuple[dict[str, Any], dict[str, ArrayInfo]] | None:
    """What :func:`_zarr_infos` gives, read from the group's consolidated metadata
    without importing zarr (a third of a second of every command's start-up).

    Only a group document that its record vouches for (when there is one) and
    whose arrays are all plain (one level, regular chunks, no sharding, a data type
    named as numpy names it) is read here; None sends everything else, and every
    damaged or unexpected document, to zarr, which reads or refuses it as before.
    """
    import json

    from minjiang.storage._digest import digest_matches

    try:
        raw = store.read_bytes(f"{arrays_prefix}/zarr.json")
        want = record.metadata_digests.get("zarr.json") if record is not None else None
        if want is not None and not digest_matches(raw, want):
            return None
        doc = json.loads(raw)
    except (KeyNotFoundError, StoreError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("zarr_format") != 3 or doc.get("node_type") != "group":
        return None
    consolidated = doc.get("consolidated_metadata")
    if not isinstance(consolidated, dict) or consolidated.get("kind") != "inline":
        return None
    members = consolidated.get("metadata")
    attrs = doc.get("attributes", {})
    if not isinstance(members, dict) or not isinstance(attrs, dict):
        return None
    infos: dict[str, ArrayInfo] = {}
    for name, meta in members.items():
        info = _plain_array_info(name, meta, arrays_prefix, dataset_id)
        if info is None:
            return None
        infos[name] = info
    return dict(attrs), infos


def _plain_array_info(
    name: str, meta: Any, arrays_prefix: str, dataset_id: str
) -> ArrayInfo | None:
    if "/" in name or not isinstance(meta, dict) or meta.get("node_type") != "array":
        return None
    shape, data_type = meta.get("shape"), meta.get("data_type")
    grid, codecs = meta.get("chunk_grid"), meta.get("codecs")
    attrs = meta.get("attributes", {})
    if (
        meta.get("zarr_format") != 3
        or not isinstance(data_type, str)
        or data_type not in _PLAIN_DATA_TYPES
        or not isinstance(shape, list)
        or not all(type(n) is int and n >= 0 for n in shape)
        or not isinstance(grid, dict)
        or grid.get("name") != "regular"
        or not isinstance(codecs, list)
        or any(not isinstance(c, dict) or c.get("name") == "sharding_indexed" for c in codecs)
        or not isinstance(attrs, dict)
        or meta.get("storage_transformers", [])
    ):
        return None
    chunks = (grid.get("configuration") or {}).get("chunk_shape")
    if (
        not isinstance(chunks, list)
        or len(chunks) != len(shape)
        or not all(type(c) is int and c > 0 for c in chunks)
    ):
        return None
    names = meta.get("dimension_names") or [None] * len(shape)
    if not isinstance(names, list) or len(names) != len(shape):
        return None
    if not all(d is None or isinstance(d, str) for d in names):
        return None
    return ArrayInfo(
        name=name,
        path=f"{arrays_prefix}/{name}",
        dims=tuple(d if d is not None else f"dim_{i}" for i, d in enumerate(names)),
        shape=tuple(shape),
        dtype=data_type,
        chunks=tuple(chunks),
        attrs=dict(attrs),
        dataset_id=dataset_id,
    )


def _table_parts(store: Store, prefix: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for table in store.list_dir(f"{prefix}/{TABLES}"):
        parts = [
            k
            for k in store.list(f"{prefix}/{TABLES}/{table}")
            if k.count("/") == prefix.count("/") + 3
            and k.rsplit("/", 1)[-1].startswith("part-")
            and k.endswith(".parquet")
        ]
        if parts:
            out[table] = sorted(parts, key=lambda k: k.rsplit("/", 1)[-1])
    return dict(sorted(out.items()))


def _parquet_file(store: Store, key: str) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = store.local_path(key)
    if path is not None:
        try:
            return pq.ParquetFile(path)
        except FileNotFoundError as err:
            raise KeyNotFoundError(f"no key {key!r} in store {store.url!r}") from err
    return pq.ParquetFile(pa.BufferReader(store.read_bytes(key)))


def table_schema(store: Store, parts: list[str]) -> dict[str, Any]:
    """Columns (name -> Arrow type) and row count of a table's parts, from their footers."""
    columns: dict[str, str] = {}
    rows = 0
    for key in parts:
        pf = _parquet_file(store, key)
        rows += pf.metadata.num_rows
        for field in pf.schema_arrow:
            columns.setdefault(field.name, str(field.type))
    return {"columns": columns, "rows": rows}


def _record_of(store: Store, info: ArrayInfo) -> Record | None:
    """The record of the dataset ``info`` belongs to, when ``info`` is a committed array.

    Only ``datasets/<id>/arrays.zarr/<name>`` has a record; scratch, staging and
    recompute groups do not, and neither does a dataset not yet published.
    """
    from minjiang.storage._catalog import load_record

    if info.path != f"{dataset_prefix(info.dataset_id)}/{ARRAYS}/{info.name}":
        return None
    return load_record(store, info.dataset_id)


def _array_expectations(record: Record, name: str) -> dict[str, str]:
    expected = dict(record.checksums.get(name, {}))
    meta = record.metadata_digests.get(f"{name}/zarr.json")
    if meta is not None:
        expected["zarr.json"] = meta
    return expected


def forget_cached() -> None:
    """Forget the catalog records and opened arrays this process cached: later reads
    check the store again. A run begins with it (``Runtime.plan``, and each warm worker
    when a run gathers it): between two runs of a long-lived process (a notebook, the
    run service, a warm worker) a store may have been rebuilt, or a removed record
    published again, under the same keys."""
    from minjiang.storage._catalog import forget_records

    forget_records()
    _cached_array.cache_clear()


@lru_cache(maxsize=256)
def _cached_array(
    store: Store,
    path: str,
    shape: tuple[int, ...],
    chunks: tuple[int, ...],
    dataset_id: str,
    name: str,
    record_digest: str | None,
) -> Any:
    # Opening reads (and checks) the array's zarr.json; tasks read many regions of
    # few arrays. The record digest is part of the key: an array first opened while
    # staging is opened again, guarded by its record, once it is committed.
    import zarr
    from minjiang.storage._guard import GuardedStore

    expected = None
    if record_digest is not None:
        from minjiang.storage._catalog import load_record

        record = load_record(store, dataset_id)
        if record is not None:
            expected = _array_expectations(record, name)
    guarded = GuardedStore(
        store.zarr_store(path, read_only=True),
        dataset_id=dataset_id,
        base=path,
        expected=expected,
        where=store.url,
    )
    arr = zarr.open_array(guarded, mode="r", zarr_format=3)
    if (tuple(arr.shape), tuple(arr.chunks)) != (shape, chunks):
        raise StoreError(
            f"array at {path!r} in store {store.url!r} has shape {tuple(arr.shape)} and chunks "
            f"{tuple(arr.chunks)}; the ArrayInfo says {shape} and {chunks}: reopen the "
            "dataset info"
        )
    return arr


def _open_for_read(store: Store, info: ArrayInfo) -> Any:
    validate_key(info.path)
    record = _record_of(store, info)
    try:
        return _cached_array(
            store,
            info.path,
            tuple(info.shape),
            tuple(info.chunks),
            info.dataset_id,
            info.name,
            record.digest if record is not None else None,
        )
    except FileNotFoundError as err:
        raise DatasetNotFoundError(
            f"array {info.name!r} of dataset {info.dataset_id!r} is not in store "
            f"{store.url!r} (no {info.path}/zarr.json)"
        ) from err


def read_region(
    store: Store,
    info: ArrayInfo,
    region: tuple[slice, ...],
    *,
    out: np.ndarray | None = None,
    device: bool = False,
) -> Any:
    """Read a region of an array (any region; chunk-aligned reads decode least).

    A chunk of the region that is not stored is an error, never fill values; when
    the array belongs to a committed dataset, each chunk's stored bytes (and the
    array's ``zarr.json``) are checked against the digests in the dataset's catalog
    record before they are decoded.

    Parameters
    ----------
    store : Store
        The store.
    info : ArrayInfo
        The array.
    region : tuple of slice
        One slice per dimension.
    out : numpy.ndarray, optional
        A writable array of the region's shape and the array's dtype to decode into
        (a pinned host buffer, the interior of a halo-padded block) instead of a new
        one. It may be a strided view; arrays whose chunks zarr decodes (another
        codec) are then decoded into a new array and copied.
    device : bool
        Assemble the region on the current CUDA device with zarr's GPU buffers and
        return a CuPy array (needs CuPy; zarr's CPU codecs still decode on the host).

    Returns
    -------
    numpy.ndarray or cupy.ndarray
        ``out`` when given.

    Raises
    ------
    MissingChunkError
        If a chunk of the region is not in the store; the message names the dataset,
        array and chunk key.
    ChecksumMismatchError
        If a chunk differs from its record's digest (damaged, truncated, swapped or
        stale), or, for data without a record, fails zarr's CRC-32C check; the
        message names the dataset, array and chunk key.
    RecordIntegrityError
        If the dataset's catalog record itself has been altered.
    """
    arr = _open_for_read(store, info)
    sel = _normalise_region(
        region, tuple(info.shape), f"array {info.name!r} of dataset {info.dataset_id!r}"
    )
    if out is not None:
        want = tuple(s.stop - s.start for s in sel)
        if out.shape != want or out.dtype != arr.dtype or not out.flags.writeable:
            raise ValueError(
                f"out has shape {out.shape!r} and dtype {out.dtype}; reading {info.name!r} "
                f"needs a writable {want!r} {arr.dtype} array"
            )
    codec = None if device else chunk_codec(arr)
    if codec is not None:
        return _read_chunks(arr, codec, sel, out, store, info)
    if out is not None and not out.flags.c_contiguous:
        out[...] = read_region(store, info, sel)
        return out
    try:
        if device:
            from zarr.core.buffer import gpu

            return arr.get_basic_selection(sel, prototype=gpu.buffer_prototype)
        if out is not None:
            from zarr.core.buffer import cpu

            arr.get_basic_selection(sel, out=cpu.NDBuffer.from_numpy_array(out))
            return out
        return np.asarray(arr[sel])
    except Exception as err:
        if isinstance(err, IntegrityError):
            from minjiang.storage._guard import settle

            settle()
            raise
        if isinstance(err, KeyNotFoundError | DatasetNotFoundError):
            raise
        bad = _find_bad_chunk(arr, sel, tuple(info.chunks))
        if bad is None:
            raise
        raise ChecksumMismatchError(
            f"chunk {bad!r} of array {info.name!r} in dataset {info.dataset_id!r} "
            f"(store {store.url!r}) is damaged or truncated: it failed zarr's CRC-32C check "
            f"on decode ({type(err).__name__}); run `minjiang verify {info.dataset_id}` and "
            "re-run the step that produced it"
        ) from err


def decoded_nbytes(info: ArrayInfo, region: tuple[slice, ...]) -> int:
    """Bytes :func:`read_region` decodes to read ``region`` of ``info``.

    Every chunk the region touches is decoded whole (minjiang's codec, Blosc with a
    CRC-32C over the chunk, cannot decode part of one), so a region that ends inside
    a chunk (a halo reaching into a neighbour) decodes more than it returns. The
    ratio of the two is the read's *decode amplification*.

    Parameters
    ----------
    info : ArrayInfo
        The array.
    region : tuple of slice
        One slice per dimension, as given to :func:`read_region`.

    Returns
    -------
    int
        The decoded size of every chunk the region touches (edge chunks count at
        their clipped extent, as zarr decodes them); 0 for an empty region.
    """
    shape = tuple(int(s) for s in info.shape)
    sel = _normalise_region(region, shape, f"array {info.name!r} of dataset {info.dataset_id!r}")
    if any(s.stop <= s.start for s in sel):
        return 0
    cells = 1
    for s, c, n in zip(sel, info.chunks, shape, strict=True):
        first, last = s.start // c, (s.stop - 1) // c
        cells *= min((last + 1) * c, n) - first * c
    return cells * np.dtype(info.dtype).itemsize


def _read_chunks(
    arr: Any,
    codec: ChunkCodec,
    sel: tuple[slice, ...],
    out: np.ndarray | None,
    store: Store,
    info: ArrayInfo,
) -> np.ndarray:
    """Read ``sel`` chunk by chunk through the array's guarded zarr store.

    Each chunk's bytes come from the :class:`~minjiang.storage._guard.GuardedStore`
    zarr opened the array on (a missing chunk raises, a committed chunk is checked
    against its record, a chunk the record lists as fill reads as fill); its
    CRC-32C is checked and it is decoded on a worker thread, at most zarr's
    ``async.concurrency`` at once, straight into the result where its cells are one
    contiguous block of it. The first chunk in key order that fails is the one
    named, whichever failed first.
    """
    import asyncio

    import zarr
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    want = tuple(s.stop - s.start for s in sel)
    dest = out if out is not None else np.empty(want, dtype=arr.dtype)
    if dest.size == 0:
        return dest
    zstore = arr.store_path.store
    root = arr.store_path.path
    prototype = default_buffer_prototype()
    jobs = []
    for idx in _chunk_indices(sel, codec.chunks):
        cells = codec.chunk_region(idx)
        inter = tuple(
            slice(max(c.start, s.start), min(c.stop, s.stop))
            for c, s in zip(cells, sel, strict=True)
        )
        within = tuple(
            slice(i.start - c.start, i.stop - c.start) for i, c in zip(inter, cells, strict=True)
        )
        target = tuple(
            slice(i.start - s.start, i.stop - s.start) for i, s in zip(inter, sel, strict=True)
        )
        key = str(arr.metadata.encode_chunk_key(idx))
        jobs.append((key, within, target))
    limit = max(1, int(zarr.config.get("async.concurrency") or 1))

    async def read_all() -> list[BaseException | None]:
        gate = asyncio.Semaphore(limit)

        async def one(key: str, within: tuple[slice, ...], target: tuple[slice, ...]) -> None:
            async with gate:
                buf = await zstore.get(f"{root}/{key}" if root else key, prototype)
                view = dest[target] if target else dest[...]  # a 0-d result stays a view
                if buf is None:  # the record lists it as fill by design
                    view[...] = codec.fill_value
                    return
                try:
                    await asyncio.to_thread(codec.decode_into, buf.as_numpy_array(), view, within)
                except ValueError as err:
                    raise ChecksumMismatchError(
                        f"chunk {key!r} of array {info.name!r} in dataset {info.dataset_id!r} "
                        f"(store {store.url!r}) is damaged or truncated: it failed zarr's "
                        f"CRC-32C check on decode ({err}); run `minjiang verify "
                        f"{info.dataset_id}` and re-run the step that produced it"
                    ) from err

        return await asyncio.gather(*(one(*job) for job in jobs), return_exceptions=True)

    for err in sync(read_all()):
        if err is not None:
            raise err
    return dest


def _find_bad_chunk(arr: Any, sel: tuple[slice, ...], chunks: tuple[int, ...]) -> str | None:
    """The first chunk of ``sel``, in key order, that fails to decode. A read decodes
    chunks concurrently, so the error it raised may come from any of them; probing in
    order names one deterministically, and a missing (or guarded) chunk met first
    raises its own error rather than being named as damaged."""
    for idx in _chunk_indices(sel, chunks):
        try:
            arr.get_block_selection(idx)
        except IntegrityError:
            from minjiang.storage._guard import settle

            settle()
            raise
        except Exception:
            return str(arr.metadata.encode_chunk_key(idx))
    return None


def _guarded_group(store: Store, record: Record) -> Any:
    """A committed dataset's Zarr group as a zarr store that checks it against ``record``."""
    from minjiang.storage._guard import GuardedStore

    prefix = f"{record.prefix}/{ARRAYS}"
    expected = dict(record.metadata_digests)
    for array, sums in record.checksums.items():
        expected.update({f"{array}/{key}": digest for key, digest in sums.items()})
    return GuardedStore(
        store.zarr_store(prefix, read_only=True),
        dataset_id=record.id,
        base=prefix,
        expected=expected,
        where=store.url,
    )


def open_staged_group(store: Store, key: str, dataset_id: str) -> zarr.Group:
    """A Zarr group that has no record yet (scratch, staging), opened read-only and guarded.

    A chunk that is not stored raises :class:`~minjiang.errors.MissingChunkError`
    instead of reading as fill values, as on every other minjiang read path. For a
    committed dataset use :func:`open_xarray` or :func:`read_region`, which also
    check what they read against the record.

    Parameters
    ----------
    store : Store
        The store.
    key : str
        Store key of the group, e.g. ``"datasets/<id>/_scratch/arrays.zarr"``.
    dataset_id : str
        The dataset being produced (for messages).
    """
    from minjiang.storage._guard import GuardedStore

    key = validate_key(key)
    guarded = GuardedStore(
        store.zarr_store(key, read_only=True),
        dataset_id=validate_segment(dataset_id, kind="dataset id"),
        base=key,
        where=store.url,
    )
    return _open_group(guarded, mode="r", consolidated=None)


def open_xarray(store: Store, record: Record | str, *, chunks: Any = None) -> xr.Dataset:
    """Open a committed dataset as a lazy, dask-backed :class:`xarray.Dataset`, guarded.

    Unlike a plain ``xarray.open_zarr`` of the same folder, every chunk and metadata
    document xarray reads is checked against the dataset's catalog record, and a
    chunk that is not stored raises instead of reading as fill values. The checks
    run when data is loaded (``.load()``, ``.values``, ``compute()``), on whichever
    thread loads it.

    Parameters
    ----------
    store : Store
        The store.
    record : Record or str
        The dataset's record, or its id (its record is then loaded and checked).
    chunks : optional
        Passed to ``xarray.open_zarr``; the default ``{}`` keeps the storage chunks.

    Returns
    -------
    xarray.Dataset
        With ``attrs["minjiang_id"]`` set to the dataset id.

    Raises
    ------
    DatasetNotFoundError
        If ``record`` is an id with no record in the store.
    RecordIntegrityError
        If the stored record has been altered.
    ChecksumMismatchError
        When the group's metadata differs from the record (at open), or a chunk does
        (when loaded).
    MissingChunkError
        When a chunk of the dataset is not stored (when loaded).
    """
    import xarray as xr
    from minjiang.storage._catalog import load_record

    if isinstance(record, str):
        found = load_record(store, record)
        if found is None:
            raise DatasetNotFoundError(
                f"dataset {record!r} has no catalog record in store {store.url!r}; only "
                "committed datasets open this way (`minjiang catalog ls` lists them)"
            )
        record = found
    guarded = _guarded_group(store, record)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
        ds = xr.open_zarr(
            guarded, chunks={} if chunks is None else chunks, consolidated=True, zarr_format=3
        )
    ds.attrs.setdefault("minjiang_id", record.id)
    return ds


def read_array(store: Store, info: ArrayInfo) -> np.ndarray:
    """Read a whole array (for coordinates and other small arrays)."""
    return read_region(store, info, tuple(slice(0, s) for s in info.shape))


def read_coord_values(store: Store, info: ArrayInfo) -> np.ndarray:
    """Read a coordinate and decode it as xarray would.

    CF times become ``datetime64`` (or cftime objects for non-standard calendars),
    ``_FillValue`` entries become NaN/NaT, scale and offset are applied.

    The common cases are decoded here without importing xarray (which imports
    pandas, and dask when it wraps an array: seconds of a command's start-up): a
    coordinate with no CF encoding is returned as read, and whole-number times
    ``"<unit> since <date>"`` in the standard calendar become ``datetime64[ns]``
    exactly as xarray decodes them. Everything else is decoded by
    ``xarray.conventions.decode_cf_variable``.

    Parameters
    ----------
    store : Store
        The store.
    info : ArrayInfo
        The coordinate array.

    Returns
    -------
    numpy.ndarray
    """
    raw = read_array(store, info)
    attrs = dict(info.attrs)
    attrs.pop(_COORDS_ATTR, None)
    fast = _decode_without_xarray(raw, attrs)
    if fast is not None:
        return fast
    import xarray as xr
    from xarray.conventions import decode_cf_variable

    if "_FillValue" in attrs:
        attrs["_FillValue"] = _decode_fill_attr(attrs["_FillValue"], raw.dtype)
    var = xr.Variable(info.dims, raw, attrs=attrs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=FutureWarning)
        decoded = decode_cf_variable(info.name, var, decode_timedelta=True)
    return np.asarray(decoded.values)


#: attributes that make xarray's decoding change a variable (masking, scaling,
#: signedness, calendars, strings, booleans, timedeltas by dtype)
_CF_ENCODING_ATTRS = frozenset(
    {
        "_FillValue",
        "missing_value",
        "scale_factor",
        "add_offset",
        "_Unsigned",
        "calendar",
        "_Encoding",
        "dtype",
    }
)
#: ``units`` xarray decodes to ``timedelta64`` (``decode_timedelta=True``)
_TIMEDELTA_UNITS = frozenset(
    {"days", "hours", "minutes", "seconds", "milliseconds", "microseconds", "nanoseconds"}
)
#: nanoseconds per CF time unit (after xarray's normalisation: lower case, plural)
_NS_PER_UNIT = {
    "days": 86_400 * 10**9,
    "hours": 3_600 * 10**9,
    "minutes": 60 * 10**9,
    "seconds": 10**9,
    "milliseconds": 10**6,
    "microseconds": 10**3,
    "nanoseconds": 1,
}
_STANDARD_CALENDARS = frozenset({"standard", "gregorian", "proleptic_gregorian"})
#: a reference date numpy reads as xarray (pandas) does: four-digit year, two-digit
#: fields, optional time of day and fraction, optional UTC marker
_REFERENCE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"(?:\s*(?:Z|UTC))?"
)
#: datetime64[ns] range; the lowest int64 is NaT
_NS_MIN, _NS_MAX = -(2**63) + 1, 2**63 - 1


def _decode_without_xarray(raw: np.ndarray, attrs: dict[str, Any]) -> np.ndarray | None:
    """``raw`` decoded as ``decode_cf_variable`` would, or None where that needs xarray."""
    if raw.dtype.kind not in "iuf" or not raw.dtype.isnative or raw.size == 0:
        return None
    if set(attrs) & _CF_ENCODING_ATTRS - {"calendar"}:
        return None
    units = attrs.get("units")
    if units is None:
        return None if "calendar" in attrs else raw
    if not isinstance(units, str):
        return None
    if "since" not in units:
        if "calendar" in attrs or units in _TIMEDELTA_UNITS:
            return None
        return raw
    return _decode_times(raw, units, attrs.get("calendar"))


def _decode_times(raw: np.ndarray, units: str, calendar: Any) -> np.ndarray | None:
    """Whole-number CF times in the standard calendar as ``datetime64[ns]``, computed
    as xarray's pandas path does; None for anything it would treat otherwise."""
    import datetime

    if calendar is not None and (
        not isinstance(calendar, str) or calendar.lower() not in _STANDARD_CALENDARS
    ):
        return None
    if raw.dtype.kind not in "if":
        return None
    found = re.match(r"(.+) since (.+)", units)
    if found is None:
        return None
    unit, ref = (g.strip() for g in found.groups())
    unit = unit.lower() if unit.lower().endswith("s") else f"{unit.lower()}s"
    per = _NS_PER_UNIT.get(unit)
    date = _REFERENCE.fullmatch(ref)
    if per is None or date is None:
        return None
    year, month, day, hour, minute, second, frac = date.groups()
    try:
        when = datetime.datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
        )
    except ValueError:
        return None
    since_epoch = when - datetime.datetime(1970, 1, 1)
    ref_ns = (since_epoch.days * 86_400 + since_epoch.seconds) * 10**9 + int(
        (frac or "0").ljust(9, "0")
    )
    if raw.dtype.kind == "f":
        values = raw.astype(np.float64)
        if not (np.isfinite(values).all() and (np.floor(values) == values).all()):
            return None
        lo, hi = int(values.min()), int(values.max())
        # xarray multiplies in float64 and truncates; keep that product well inside
        # int64, where its rounding (a few hundred ns at most) cannot leave the range
        margin = 1 << 10
        if max(abs(lo), abs(hi)) * per >= 1 << 62:
            return None
    else:
        values = raw.astype(np.int64)
        lo, hi = int(values.min()), int(values.max())
        if lo == np.iinfo(np.int64).min:  # xarray's NaT
            return None
        margin = 0
    if not (
        max(abs(lo), abs(hi)) * per <= _NS_MAX
        and _NS_MIN + margin <= ref_ns <= _NS_MAX - margin
        and _NS_MIN + margin <= ref_ns + lo * per
        and ref_ns + hi * per <= _NS_MAX - margin
    ):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        deltas = (values * np.int64(per)).astype(np.int64)
    return (deltas + np.int64(ref_ns)).view("datetime64[ns]")


def read_table(
    store: Store, dataset_id: str, name: str, *, parts: Callable[[str], bool] | None = None
) -> pa.Table:
    """Read a table: all its Parquet parts, concatenated in order of part name.

    ``parts``, a predicate on part names (``"00003"``, or a
    :func:`~minjiang.storage.tile_part_name`), keeps only the parts it accepts: a
    task reads the tiles of a tiled table near its block this way. With no part
    accepted the result has the table's columns and no rows.

    For a committed dataset the parts are those its catalog record lists, each
    checked against its recorded digest before it is parsed; other files in the
    table's folder are not part of it.

    Raises
    ------
    KeyNotFoundError
        If the dataset has no table of that name (the message lists those it has).
    MissingChunkError
        If a part the record lists is not in the store.
    ChecksumMismatchError
        If a part differs from its recorded digest.
    RecordIntegrityError
        If the dataset's catalog record itself has been altered.
    """
    import pyarrow as pa
    from minjiang.storage._catalog import load_record

    prefix = dataset_prefix(dataset_id)
    name = validate_segment(name, kind="table name")
    record = load_record(store, dataset_id)
    if record is not None:
        listed = record.tables
        if name not in listed:
            raise KeyNotFoundError(
                f"dataset {dataset_id!r} has no table {name!r} in store {store.url!r}; its "
                f"tables: {sorted(listed)}"
            )
        keys = sorted(listed[name], key=lambda k: k.rsplit("/", 1)[-1])
        chosen = [k for k in keys if parts is None or parts(_part_name(k))]
        tables = [_checked_part(store, dataset_id, name, k, listed[name][k]) for k in chosen]
    else:
        all_parts = _table_parts(store, prefix)
        if name not in all_parts:
            raise KeyNotFoundError(
                f"dataset {dataset_id!r} has no table {name!r} in store {store.url!r}; its "
                f"tables: {sorted(all_parts)}"
            )
        keys = all_parts[name]
        chosen = [k for k in keys if parts is None or parts(_part_name(k))]
        tables = [_parquet_file(store, k).read() for k in chosen]
    if not tables:  # no part accepted: the table's columns, no rows
        return _parquet_file(store, keys[0]).schema_arrow.empty_table()
    return pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]


def _part_name(key: str) -> str:
    """``.../tables/<table>/part-<name>.parquet`` -> ``<name>``."""
    return key.rsplit("/", 1)[-1].removeprefix("part-").removesuffix(".parquet")


def _checked_part(store: Store, dataset_id: str, table: str, key: str, digest: str) -> pa.Table:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from minjiang.errors import MissingChunkError
    from minjiang.storage._digest import digest_matches

    try:
        raw = store.read_bytes(key)
    except KeyNotFoundError as err:
        raise MissingChunkError(
            f"part {key!r} of table {table!r} in dataset {dataset_id!r} is missing from store "
            f"{store.url!r}; run `minjiang verify {dataset_id}` and re-run the step that "
            "produced the dataset, or restore the part from a copy"
        ) from err
    if not digest_matches(raw, digest):
        raise ChecksumMismatchError(
            f"part {key!r} of table {table!r} in dataset {dataset_id!r} (store {store.url!r}) "
            f"does not match its recorded digest {digest!r}: it was damaged, replaced or "
            f"edited. Run `minjiang verify {dataset_id}` and re-run the step that produced "
            "the dataset, or restore the part from a copy"
        )
    return pq.read_table(pa.BufferReader(raw))


def dataset_schema(info: DatasetInfo) -> dict[str, Any]:
    """The JSON-safe schema of a dataset, as catalog records store it.

    Returns
    -------
    dict
        ``{"arrays": {name: {dims, shape, dtype, chunks, attrs}}, "coords": {...},
        "tables": {name: {"columns": {column: arrow type}, "rows": int}}}``.
    """

    def one(a: ArrayInfo) -> dict[str, Any]:
        return {
            "dims": list(a.dims),
            "shape": list(a.shape),
            "dtype": a.dtype,
            "chunks": list(a.chunks),
            "attrs": jsonable(a.attrs),
        }

    tables = {t: info.table_schemas.get(t, {"columns": {}, "rows": None}) for t in info.tables}
    return {
        "arrays": {n: one(a) for n, a in sorted(info.arrays.items())},
        "coords": {n: one(a) for n, a in sorted(info.coords.items())},
        "tables": jsonable(tables),
    }

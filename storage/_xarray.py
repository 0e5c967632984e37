"""``write_xarray``: an ``xarray.Dataset`` (a lazily opened NetCDF, say) as a dataset.

Built on :class:`~minjiang.storage.DatasetWriter`'s public methods only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from minjiang.storage._encoding import (
    _COORDS_ATTR,
    _DATA_KINDS,
    DEFAULT_MAX_BLOCK_BYTES,
    MiB,
    _array_info,
    _coord_list,
    _iter_blocks,
    default_chunks,
)
from minjiang.storage._info import ARRAYS, DatasetInfo, DatasetSummary, dataset_prefix
from minjiang.storage._reader import dataset_schema, open_dataset_info
from minjiang.storage._store import Store
from minjiang.storage._summary import (
    block_summary,
    finish_summary,
    merge_summaries,
    values_summary,
    with_summaries,
)
from minjiang.storage._writer import DatasetWriter

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["write_xarray"]


def write_xarray(
    store: Store,
    dataset_id: str,
    ds: xr.Dataset,
    *,
    chunks: Mapping[str, int] | None = None,
    max_block_bytes: int = DEFAULT_MAX_BLOCK_BYTES,
    writer: DatasetWriter | None = None,
    tables: Iterable[tuple[str, str, Any]] | None = None,
) -> DatasetSummary:
    """Write an ``xarray.Dataset`` as a minjiang dataset, block by block.

    Each data variable is read and written in chunk-aligned blocks of at most
    ``max_block_bytes`` decoded bytes, so a lazily opened NetCDF (or a dask-backed
    dataset) is never loaded whole. Values are stored decoded (mask, scale and offset
    applied); datetime variables are stored as int64 with CF units. Coordinates are
    written with :meth:`DatasetWriter.write_coord`, the dataset attributes on the group,
    and the metadata is consolidated at the end.

    Parameters
    ----------
    store : Store
        The store.
    dataset_id : str
        The dataset id (for ingest, a hash of the source files).
    ds : xarray.Dataset
        The data.
    chunks : Mapping of str to int, optional
        Chunk length per dimension name (``-1``: full extent); dimensions not named get
        :func:`default_chunks` (about 8 MiB, full extent on short dimensions).
    max_block_bytes : int, optional
        Upper bound on the decoded bytes held per block (default 256 MiB).
    writer : DatasetWriter, optional
        Where to write (default: ``DatasetWriter(store, dataset_id)``, the dataset's
        own group). A writer from :class:`~minjiang.storage.Staging` with
        ``recompute=True`` stages a second ingest of a committed id apart, so that it
        can be compared with the record without touching the committed group.
    tables : iterable of (str, str, table), optional
        Table parts written beside the arrays, each as it is produced: ``(table name,
        part name, rows)`` with rows a ``pyarrow.Table``, ``pandas.DataFrame`` or
        mapping of columns. A reader streams a table too large for memory this way
        (:meth:`minjiang.core.Reader.tables`); parts are read back in order of name.

    Returns
    -------
    DatasetSummary

    Raises
    ------
    ValueError
        If a single chunk is larger than ``max_block_bytes``, a variable has a dtype
        that cannot be stored, ``writer`` writes another dataset or store, or two
        table parts have the same table and part name.
    """
    if writer is None:
        writer = DatasetWriter(store, dataset_id)
    elif writer.dataset_id != dataset_id or writer.store.url != store.url:
        raise ValueError(
            f"write_xarray into {writer!r} was asked to write dataset {dataset_id!r} of "
            f"store {store.url!r}; pass a writer of that dataset and store"
        )
    writer.create(dict(ds.attrs))
    sums: dict[str, dict[str, str]] = {}
    summaries: dict[str, dict[str, Any]] = {}
    fixed = dict(chunks or {})
    all_dims = set(ds.dims)
    unknown = sorted(set(fixed) - {str(d) for d in all_dims})
    if unknown:
        raise ValueError(
            f"chunks name dimensions {unknown} that the dataset does not have; its dims are "
            f"{sorted(str(d) for d in all_dims)}"
        )

    # by name: xarray's order of coordinates can differ from one process to the next
    # (its CF decoding goes through sets), and the group's ``coordinates`` attribute,
    # hence its metadata and the record, must not
    for name, coord in sorted(ds.coords.items(), key=lambda item: str(item[0])):
        var = coord.variable
        nbytes = var.size * var.dtype.itemsize
        dims = tuple(str(d) for d in var.dims)
        is_dim = var.ndim == 1 and dims[0] == name
        if var.dtype.kind in _DATA_KINDS and nbytes > max_block_bytes and not is_dim:
            sums[str(name)], summaries[str(name)] = _write_variable(
                writer, str(name), var, fixed, max_block_bytes, coord=True
            )
            writer.register_coord(str(name), dims)
        else:
            summaries[str(name)] = values_summary(var.values)
            sums[str(name)] = writer.write_coord(
                str(name), var.values, dims=dims, attrs=dict(var.attrs)
            )
    for name, da in ds.data_vars.items():
        sums[str(name)], summaries[str(name)] = _write_variable(
            writer, str(name), da.variable, fixed, max_block_bytes
        )
    parts = _write_tables(writer, tables or ())
    writer.consolidate()
    if writer.arrays_prefix == f"{dataset_prefix(dataset_id)}/{ARRAYS}":
        info = open_dataset_info(store, dataset_id)
    else:
        info = _staged_info(writer, parts)
    return DatasetSummary(
        schema=with_summaries(dataset_schema(info), summaries),
        checksums=sums,
        bytes_written=writer.bytes_written,
        tables=parts,
    )


def _write_tables(
    writer: DatasetWriter, tables: Iterable[tuple[str, str, Any]]
) -> dict[str, dict[str, str]]:
    """Write each ``(table, part, rows)`` as it comes; -> table -> part key -> digest."""
    out: dict[str, dict[str, str]] = {}
    for item in tables:
        if not (isinstance(item, tuple) and len(item) == 3):
            raise ValueError(
                f"a table part must be a (table name, part name, rows) tuple, got "
                f"{type(item).__name__}; yield one tuple per part"
            )
        table, part, rows = item
        key, digest = writer.write_table_part(table, part, rows)
        seen = out.setdefault(table, {})
        if key in seen:
            raise ValueError(
                f"table {table!r}: part {part!r} was written twice; give every part of a "
                "table its own name"
            )
        seen[key] = digest
    return out


def _staged_info(writer: DatasetWriter, tables: Mapping[str, Mapping[str, str]]) -> DatasetInfo:
    """What a writer's group outside the dataset's own (a recompute area) holds,
    described as :func:`open_dataset_info` describes a dataset (``tables``: the parts
    written, by table)."""
    from minjiang.storage._reader import open_staged_group, table_schema

    group = open_staged_group(writer.store, writer.arrays_prefix, writer.dataset_id)
    attrs = dict(group.attrs)
    infos = {
        name: _array_info(arr, name, f"{writer.arrays_prefix}/{name}", writer.dataset_id)
        for name, arr in group.arrays()
    }
    coord_names = set(_coord_list(attrs.get(_COORDS_ATTR)))
    for a in infos.values():
        if len(a.dims) == 1 and a.dims[0] == a.name:
            coord_names.add(a.name)
        coord_names.update(_coord_list(a.attrs.get(_COORDS_ATTR)))
    return DatasetInfo(
        id=writer.dataset_id,
        prefix=writer.prefix,
        attrs=attrs,
        arrays={n: a for n, a in sorted(infos.items()) if n not in coord_names},
        coords={n: a for n, a in sorted(infos.items()) if n in coord_names},
        tables={
            t: sorted(p, key=lambda k: k.rsplit("/", 1)[-1]) for t, p in sorted(tables.items())
        },
        table_schemas={
            t: table_schema(writer.store, sorted(p, key=lambda k: k.rsplit("/", 1)[-1]))
            for t, p in tables.items()
        },
    )


_TIME_UNITS = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}


def _write_variable(
    writer: DatasetWriter,
    name: str,
    var: xr.Variable,
    fixed: Mapping[str, int],
    max_block_bytes: int,
    *,
    coord: bool = False,
) -> tuple[dict[str, str], dict[str, Any]]:
    """Write one variable block by block: -> (chunk digests, its data summary)."""
    dims = tuple(str(d) for d in var.dims)
    attrs = dict(var.attrs)
    attrs.pop(_COORDS_ATTR, None)
    dtype = np.dtype(var.dtype)
    convert: Callable[[np.ndarray], np.ndarray] = np.asarray
    if dtype.kind == "M":
        unit, _ = np.datetime_data(dtype)
        if unit not in _TIME_UNITS:
            unit = "ns"
        target = np.dtype(f"datetime64[{unit}]")
        attrs.update(
            units=f"{_TIME_UNITS[unit]} since 1970-01-01",
            calendar="proleptic_gregorian",
            _FillValue=int(np.iinfo(np.int64).min),
        )

        def convert(block: np.ndarray) -> np.ndarray:
            # NaT is int64 min, which the _FillValue attribute maps back to NaT.
            return np.asarray(block).astype(target).view(np.int64)

        dtype = np.dtype(np.int64)
    elif dtype.kind not in _DATA_KINDS:
        raise ValueError(
            f"variable {name!r} has dtype {str(dtype)!r}; minjiang stores numeric, boolean and "
            "datetime64 variables (encode labels as integer codes)"
        )
    local_fixed = {d: fixed[d] for d in dims if d in fixed}
    chunks = default_chunks(var.shape, dtype.itemsize, dims=dims, fixed=local_fixed)
    chunk_bytes = math.prod(chunks) * dtype.itemsize
    if chunk_bytes > max_block_bytes:
        raise ValueError(
            f"variable {name!r}: one chunk {chunks} of {dtype} is {chunk_bytes / MiB:.1f} MiB, "
            f"more than max_block_bytes {max_block_bytes / MiB:.1f} MiB; choose smaller chunks "
            "or raise max_block_bytes"
        )
    writer.create_array(
        name, shape=var.shape, dtype=dtype, chunks=chunks, dims=dims, attrs=attrs, coord=coord
    )
    sums: dict[str, str] = {}
    parts = []
    for region in _iter_blocks(tuple(var.shape), chunks, dtype.itemsize, max_block_bytes):
        values = var[region].values
        parts.append(block_summary(values))
        sums.update(writer.write_region(name, region, convert(values)))
    return sums, finish_summary(merge_summaries(parts))

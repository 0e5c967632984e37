"""Writing a dataset: its Zarr group, arrays, coordinates and Parquet table parts.

Every array write goes through a :class:`~minjiang.storage._guard.DigestingStore`,
which digests each chunk's encoded bytes as they are stored: the checksums a task
reports cost no read-back. Arrays with minjiang's codec have their chunks encoded
by :class:`~minjiang.storage._encoding.ChunkCodec` straight from views of the block
written (the bytes zarr would store, without its per-chunk fill-and-copy); other
arrays go through zarr. The write protocol is in ``storage/DESIGN.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from minjiang.errors import KeyNotFoundError, StoreError
from minjiang.storage._digest import digest_bytes
from minjiang.storage._encoding import (
    _COORDS_ATTR,
    _DATA_KINDS,
    _RESERVED_ARRAY_NAMES,
    ChunkCodec,
    _array_info,
    _as_arrow_table,
    _attrs_equal,
    _chunk_indices,
    _consolidate,
    _coord_list,
    _default_fill,
    _dims,
    _encode_coord,
    _fmt_region,
    _normalise_region,
    _open_group,
    _zarr_attrs,
    array_codecs,
    chunk_codec,
)
from minjiang.storage._info import ARRAYS, TABLES, ArrayInfo, dataset_prefix
from minjiang.storage._names import jsonable, validate_key, validate_segment
from minjiang.storage._store import Store

if TYPE_CHECKING:
    import zarr

__all__ = ["DatasetWriter"]


class DatasetWriter:
    """Write one dataset into a store: its Zarr group, arrays, coordinates and tables.

    Every operation is idempotent, so a staged write can be re-run after a crash: the
    group and arrays are created if missing and checked if present, and chunks are
    simply rewritten. Nothing here publishes: a dataset becomes visible to others
    only when its catalog record is published (see ``storage/DESIGN.md``).

    Parameters
    ----------
    store : Store
        The store to write into.
    dataset_id : str
        The dataset id (one name segment, normally a content hash).
    group : str, optional
        Path of the Zarr group below ``datasets/<id>``: ``"arrays.zarr"`` (the dataset
        itself, the default) or, for intermediates, ``"_scratch/arrays.zarr"``.
    tables_prefix : str, optional
        Store key below which table parts go (``<tables_prefix>/tables/<table>/...``);
        the dataset's prefix ``datasets/<id>`` by default. Staging areas
        (aggregation partial states, a recompute) put theirs elsewhere.
    """

    def __init__(
        self,
        store: Store,
        dataset_id: str,
        *,
        group: str = ARRAYS,
        tables_prefix: str | None = None,
    ) -> None:
        self.store = store
        self.dataset_id = validate_segment(dataset_id, kind="dataset id")
        self.prefix = dataset_prefix(self.dataset_id)
        self.tables_prefix = validate_key(tables_prefix) if tables_prefix is not None else None
        # ``group`` lets the runtime stage intermediates (``_scratch/arrays.zarr``)
        # under the same dataset prefix with the same chunk and checksum rules.
        self.group = validate_key(group)
        self.arrays_prefix = f"{self.prefix}/{self.group}"
        self.bytes_written = 0
        self._zstore: Any = None
        self._arrays: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"DatasetWriter({self.store.url!r}, {self.dataset_id!r}, group={self.group!r})"

    # -------------------------------------------------------------- internals
    @property
    def _zs(self) -> Any:
        if self._zstore is None:
            from minjiang.storage._guard import DigestingStore

            self._zstore = DigestingStore(self.store.zarr_store(self.arrays_prefix))
        return self._zstore

    def _group(self) -> zarr.Group:
        if not self.store.exists(f"{self.arrays_prefix}/zarr.json"):
            return self.create({})
        return _open_group(self._zs, mode="r+", consolidated=False)

    def _array_path(self, name: str) -> str:
        return f"{self.arrays_prefix}/{name}"

    def _open(self, name: str) -> Any:
        import zarr

        arr = self._arrays.get(name)
        if arr is None:
            name = validate_segment(name, kind="array name")
            if not self.store.exists(f"{self._array_path(name)}/zarr.json"):
                raise StoreError(
                    f"dataset {self.dataset_id!r} has no array {name!r} yet; create it with "
                    "create_array (or write_coord) before writing regions"
                )
            arr = zarr.open_array(self._zs, path=name, mode="r+", zarr_format=3)
            # Every chunk is stored, even one equal to the fill value: a chunk that is
            # absent cannot be told apart from one that was lost.
            arr = arr.with_config({"write_empty_chunks": True})
            self._arrays[name] = arr
        return arr

    def _consolidated(self) -> bool:
        try:
            meta = self.store.read_json(f"{self.arrays_prefix}/zarr.json")
        except KeyNotFoundError:
            return False
        return isinstance(meta, dict) and meta.get("consolidated_metadata") is not None

    def _metadata_changed(self) -> None:
        # Keep consolidated metadata true if a re-run touches a committed layout.
        if self._consolidated():
            self.consolidate()

    def _nondim_coords(self, group: zarr.Group) -> list[str]:
        return _coord_list(group.attrs.get(_COORDS_ATTR))

    # -------------------------------------------------------------- public API
    def create(self, attrs: Mapping[str, Any]) -> zarr.Group:
        """Create the dataset's Zarr group with ``attrs`` (or update them if it exists).

        Parameters
        ----------
        attrs : Mapping
            Group attributes (JSON-safe after numpy conversion). The ``coordinates``
            attribute minjiang maintains for non-dimension coordinates is kept.

        Returns
        -------
        zarr.Group
        """
        import zarr

        new = jsonable(dict(attrs), nonfinite="keep")
        key = f"{self.arrays_prefix}/zarr.json"
        if not self.store.exists(key):
            try:
                group = zarr.create_group(self._zs, zarr_format=3, attributes=new, overwrite=False)
            except zarr.errors.ContainsGroupError:
                group = _open_group(self._zs, mode="r+", consolidated=False)
            else:
                return group
        else:
            group = _open_group(self._zs, mode="r+", consolidated=False)
        current = dict(group.attrs)
        managed = _coord_list(current.get(_COORDS_ATTR))
        merged = dict(new)
        if managed:
            names = _coord_list(merged.get(_COORDS_ATTR))
            merged[_COORDS_ATTR] = " ".join(dict.fromkeys([*names, *managed]))
        if not _attrs_equal(current, merged):
            group.attrs.put(merged)
            self._metadata_changed()
        return group

    def create_array(
        self,
        name: str,
        *,
        shape: Sequence[int],
        dtype: Any,
        chunks: Sequence[int],
        dims: Sequence[str],
        attrs: Mapping[str, Any] | None = None,
        fill_value: Any = None,
        coord: bool = False,
    ) -> ArrayInfo:
        """Create a Zarr v3 array (idempotent when it exists with the same metadata).

        Parameters
        ----------
        name : str
            Array name (one segment, e.g. ``"sst"``).
        shape, chunks : sequence of int
            Array and chunk shape (regular chunks).
        dtype : numpy dtype-like
            Booleans, integers, floats or complex numbers.
        dims : sequence of str
            Dimension names, stored as Zarr v3 ``dimension_names``.
        attrs : Mapping, optional
            Attributes (units, CF attributes...). A ``_FillValue`` entry is stored the
            way xarray reads it from Zarr v3.
        fill_value : scalar, optional
            Zarr fill value (NaN for floats, 0 otherwise). minjiang stores every
            chunk, and a read of a chunk that is not stored is an error, never this
            value.
        coord : bool, optional
            Create a coordinate written region by region (a large curvilinear
            coordinate): it gets no ``coordinates`` attribute of its own. Call
            :meth:`register_coord` once it is written. Small coordinates are simpler
            with :meth:`write_coord`.

        Returns
        -------
        ArrayInfo

        Raises
        ------
        StoreError
            If the array exists with different metadata.
        ValueError
            For inconsistent shapes, chunks, dims or an unsupported dtype.
        """
        dt = np.dtype(dtype)
        if dt.kind not in _DATA_KINDS:
            raise ValueError(
                f"array {name!r} of dataset {self.dataset_id!r}: dtype {str(dt)!r} cannot be "
                "stored as a data array; use booleans, integers, floats or complex numbers "
                "(times go through write_coord, which encodes them the CF way)"
            )
        return self._create(
            name,
            shape=shape,
            dtype=dt,
            chunks=chunks,
            dims=dims,
            attrs=attrs,
            fill_value=fill_value,
            coord=coord,
        )

    def _create(
        self,
        name: str,
        *,
        shape: Sequence[int],
        dtype: np.dtype[Any],
        chunks: Sequence[int],
        dims: Sequence[str],
        attrs: Mapping[str, Any] | None,
        fill_value: Any,
        coord: bool,
        codecs: Mapping[str, Any] | None = None,
    ) -> ArrayInfo:
        import zarr

        name = validate_segment(name, kind="array name")
        if name in _RESERVED_ARRAY_NAMES:
            raise ValueError(f"{name!r} is reserved by Zarr and cannot name an array")
        shape_t = tuple(int(s) for s in shape)
        chunks_t = tuple(int(c) for c in chunks)
        dims_t = tuple(dims)
        where = f"array {name!r} of dataset {self.dataset_id!r}"
        if any(s < 0 for s in shape_t):
            raise ValueError(f"{where}: shape {shape_t} has a negative extent")
        if len(chunks_t) != len(shape_t) or any(c < 1 for c in chunks_t):
            raise ValueError(
                f"{where}: chunks {chunks_t} must give one positive length per dimension of "
                f"shape {shape_t}"
            )
        if len(dims_t) != len(shape_t):
            raise ValueError(
                f"{where}: dims {dims_t} must name each of the {len(shape_t)} dimensions"
            )
        if any(not isinstance(d, str) or not d for d in dims_t) or len(set(dims_t)) != len(dims_t):
            raise ValueError(f"{where}: dims {dims_t} must be distinct non-empty strings")
        if fill_value is None:
            fill_value = _default_fill(dtype)
        zattrs = _zarr_attrs(attrs, dtype)
        group = self._group()

        if not coord:
            wanted = _coord_list(zattrs.get(_COORDS_ATTR))
            for c in self._nondim_coords(group):
                if (
                    c not in wanted
                    and self._dims_of(c) is not None
                    and set(self._dims_of(c) or ()) <= set(dims_t)
                ):
                    wanted.append(c)
            if wanted:
                zattrs[_COORDS_ATTR] = " ".join(wanted)

        codec_kw = dict(codecs) if codecs is not None else array_codecs(dtype)
        want_codecs = [
            c.to_dict()["name"] for c in (codec_kw["serializer"], *codec_kw["compressors"])
        ]
        path = self._array_path(name)
        if not self.store.exists(f"{path}/zarr.json"):
            try:
                zarr.create_array(
                    self._zs,
                    name=name,
                    shape=shape_t,
                    dtype=dtype,
                    chunks=chunks_t,
                    dimension_names=dims_t,
                    attributes=zattrs,
                    fill_value=fill_value,
                    overwrite=False,
                    **codec_kw,
                )
            except zarr.errors.ContainsArrayError:
                pass  # created concurrently: check it below like any existing array
            else:
                self._arrays.pop(name, None)
                self._metadata_changed()
                arr = zarr.open_array(self._zs, path=name, mode="r", zarr_format=3)
                return _array_info(arr, name, path, self.dataset_id)

        arr = zarr.open_array(self._zs, path=name, mode="r", zarr_format=3)
        diffs = []
        if tuple(arr.shape) != shape_t:
            diffs.append(f"shape {tuple(arr.shape)} (asked {shape_t})")
        if np.dtype(arr.dtype) != dtype:
            diffs.append(f"dtype {str(np.dtype(arr.dtype))!r} (asked {str(dtype)!r})")
        if tuple(arr.chunks) != chunks_t:
            diffs.append(f"chunks {tuple(arr.chunks)} (asked {chunks_t})")
        have_dims = _dims(arr)
        if have_dims != dims_t:
            diffs.append(f"dims {have_dims} (asked {dims_t})")
        have_fill = arr.fill_value
        same_fill = (
            isinstance(have_fill, float | np.floating)
            and np.isnan(have_fill)
            and isinstance(fill_value, float | np.floating)
            and np.isnan(fill_value)
        ) or bool(np.asarray(have_fill == dtype.type(fill_value)).all())
        if not same_fill:
            diffs.append(f"fill_value {have_fill!r} (asked {fill_value!r})")
        have_codecs = [c.to_dict()["name"] for c in getattr(arr.metadata, "codecs", ())]
        if have_codecs != want_codecs:
            diffs.append(f"codecs {have_codecs} (asked {want_codecs})")
        have_attrs = dict(arr.attrs)
        have_coords = _coord_list(have_attrs.pop(_COORDS_ATTR, None))
        want_attrs = dict(zattrs)
        want_coords = _coord_list(want_attrs.pop(_COORDS_ATTR, None))
        if not _attrs_equal(have_attrs, want_attrs):
            diffs.append("attrs differ")
        if diffs:
            raise StoreError(
                f"{where} already exists with different metadata: {'; '.join(diffs)}. A staged "
                "write can only be re-run with the same metadata; delete "
                f"{self.prefix!r} from the store to start this dataset over"
            )
        missing = [c for c in want_coords if c not in have_coords]
        if missing:
            rw = zarr.open_array(self._zs, path=name, mode="r+", zarr_format=3)
            rw.update_attributes({_COORDS_ATTR: " ".join([*have_coords, *missing])})
            self._arrays.pop(name, None)
            self._metadata_changed()
            arr = rw
        return _array_info(arr, name, path, self.dataset_id)

    def _dims_of(self, name: str) -> tuple[str, ...] | None:
        import zarr

        if not self.store.exists(f"{self._array_path(name)}/zarr.json"):
            return None
        arr = zarr.open_array(self._zs, path=name, mode="r", zarr_format=3)
        return _dims(arr)

    def write_coord(
        self,
        name: str,
        values: Any,
        *,
        dims: Sequence[str],
        attrs: Mapping[str, Any] | None = None,
    ) -> dict[str, str]:
        """Write a coordinate array (one chunk) the CF/xarray way.

        A 1-D coordinate named like its dimension is a dimension coordinate. Any other
        (2-D curvilinear ``lat``/``lon``, scalar coordinates) is listed in the
        ``coordinates`` attribute of every data variable whose dimensions include its
        own, now and when later data variables are created, and in the group's
        ``coordinates`` attribute, so ``xarray.open_zarr`` makes it a coordinate.
        ``datetime64``, ``timedelta64`` and cftime values are encoded to integers with
        CF ``units``/``calendar`` by xarray's own encoder, so xarray decodes them back.

        Parameters
        ----------
        name : str
            Coordinate name.
        values : array-like
            The values (read whole: coordinates are small).
        dims : sequence of str
            Its dimension names.
        attrs : Mapping, optional
            Attributes (``units``, ``standard_name``, ``axis``...).

        Returns
        -------
        dict of str to str
            ``{chunk key: digest of the stored chunk}``.
        """
        values = np.asarray(values)
        dims_t = tuple(dims)
        if values.ndim != len(dims_t):
            raise ValueError(
                f"coordinate {name!r} of dataset {self.dataset_id!r}: {values.ndim}-D values "
                f"with dims {dims_t}"
            )
        data, enc_attrs = _encode_coord(name, values, dims_t, attrs)
        self._create(
            name,
            shape=data.shape,
            dtype=data.dtype,
            chunks=tuple(max(1, s) for s in data.shape),
            dims=dims_t,
            attrs=enc_attrs,
            fill_value=None,
            coord=True,
        )
        sums = self.write_region(name, tuple(slice(0, s) for s in data.shape), data)
        if not (len(dims_t) == 1 and dims_t[0] == name):
            self.register_coord(name, dims_t)
        return sums

    def register_coord(self, name: str, dims: Sequence[str]) -> None:
        """List a non-dimension coordinate where xarray looks for it.

        Adds ``name`` to the group's ``coordinates`` attribute and to that of every
        data variable whose dimensions include ``dims`` (data variables created later
        pick it up from the group). :meth:`write_coord` does this itself; call it
        after writing a coordinate created with ``create_array(..., coord=True)``.
        """
        import zarr

        dims = tuple(dims)
        group = self._group()
        coords = self._nondim_coords(group)
        changed = False
        if name not in coords:
            attrs = dict(group.attrs)
            attrs[_COORDS_ATTR] = " ".join([*coords, name])
            group.attrs.put(attrs)
            coords.append(name)
            changed = True
        dim_coords = set()
        for key in group.array_keys():
            d = self._dims_of(key) or ()
            if len(d) == 1 and d[0] == key:
                dim_coords.add(key)
        for key in sorted(group.array_keys()):
            if key in coords or key in dim_coords:
                continue
            arr = zarr.open_array(self._zs, path=key, mode="r+", zarr_format=3)
            if not set(dims) <= set(_dims(arr)):
                continue
            have = _coord_list(arr.attrs.get(_COORDS_ATTR))
            if name not in have:
                arr.update_attributes({_COORDS_ATTR: " ".join([*have, name])})
                self._arrays.pop(key, None)
                changed = True
        if changed:
            self._metadata_changed()

    def write_region(self, name: str, region: tuple[slice, ...], data: Any) -> dict[str, str]:
        """Write a chunk-aligned region of an array and digest what was stored.

        Parameters
        ----------
        name : str
            The array.
        region : tuple of slice
            One slice per dimension (step 1). Each must start on a chunk boundary and
            end on one or at the array edge.
        data : numpy.ndarray
            Values of exactly the region's shape (any strides: each chunk is encoded
            from a view); cast to the array dtype only within the same kind (float64
            to float32 yes, float to int no).

        Returns
        -------
        dict of str to str
            For every chunk written, its key relative to the array (``"c/0/3/1"``) and
            the digest of its stored (encoded) bytes (``"xxh3-128:<hex>"``), taken as
            they are stored: nothing is read back.

        Raises
        ------
        ValueError
            For a region that is unaligned, out of bounds or does not match ``data``.
        """
        arr = self._open(name)
        shape = tuple(int(s) for s in arr.shape)
        chunks = tuple(int(c) for c in arr.chunks)
        dims = _dims(arr)
        sel = _normalise_region(region, shape, f"array {name!r} of dataset {self.dataset_id!r}")
        for i, (s, c, n) in enumerate(zip(sel, chunks, shape, strict=True)):
            if s.start % c or (s.stop % c and s.stop != n):
                dim = dims[i] if i < len(dims) else f"dim {i}"
                raise ValueError(
                    f"region {_fmt_region(sel)} of array {name!r} in dataset "
                    f"{self.dataset_id!r} is not aligned to its chunks {chunks}: along "
                    f"{dim!r} the slice {s.start}:{s.stop} must start at a multiple of {c} and "
                    f"end at a multiple of {c} or at the edge {n}; align the task's region "
                    "to the chunk grid (two tasks writing parts of one chunk would race)"
                )
        values = np.asarray(data)
        want = tuple(s.stop - s.start for s in sel)
        if values.shape != want:
            raise ValueError(
                f"data of shape {values.shape} does not fit region {_fmt_region(sel)} "
                f"(shape {want}) of array {name!r} in dataset {self.dataset_id!r}"
            )
        dtype = np.dtype(arr.dtype)
        if values.dtype != dtype and not np.can_cast(values.dtype, dtype, casting="same_kind"):
            raise ValueError(
                f"cannot store {values.dtype} data in array {name!r} of dtype {dtype} "
                f"(dataset {self.dataset_id!r}) without changing its kind; cast explicitly"
            )
        if 0 in want:
            return {}
        base = validate_segment(name, kind="array name")
        codec = chunk_codec(arr)
        if codec is None:
            arr[sel] = values
        else:
            self._write_chunks(base, arr, codec, sel, values)
        out: dict[str, str] = {}
        for idx in _chunk_indices(sel, chunks):
            key = str(arr.metadata.encode_chunk_key(idx))
            taken = self._zs.take(f"{base}/{key}")
            if taken is None:
                raise StoreError(
                    f"chunk {key!r} of array {name!r} in dataset {self.dataset_id!r} was not "
                    f"stored by zarr (store {self.store.url!r}); every chunk must be stored, "
                    "even one equal to the fill value"
                )
            out[key] = taken[0]
            self.bytes_written += taken[1]
        return out

    def _write_chunks(
        self,
        name: str,
        arr: Any,
        codec: ChunkCodec,
        sel: tuple[slice, ...],
        values: np.ndarray,
    ) -> None:
        """Encode and store the chunks of ``sel`` from views of ``values``.

        Each chunk is encoded on a worker thread (Blosc releases the GIL), at most
        zarr's ``async.concurrency`` at once, and stored through the writer's
        :class:`~minjiang.storage._guard.DigestingStore`, which digests the encoded
        bytes as they go to the store. The bytes are zarr's own (:class:`ChunkCodec`).
        """
        import asyncio

        import zarr
        from zarr.core.buffer import default_buffer_prototype
        from zarr.core.sync import sync

        prototype = default_buffer_prototype()
        jobs = []
        for idx in _chunk_indices(sel, codec.chunks):
            cells = codec.chunk_region(idx)
            local = tuple(
                slice(c.start - s.start, c.stop - s.start) for c, s in zip(cells, sel, strict=True)
            )
            jobs.append((f"{name}/{arr.metadata.encode_chunk_key(idx)}", local))
        limit = max(1, int(zarr.config.get("async.concurrency") or 1))
        zs = self._zs

        async def write_all() -> list[BaseException | None]:
            gate = asyncio.Semaphore(limit)

            async def one(key: str, local: tuple[slice, ...]) -> None:
                async with gate:
                    block = values[local] if local else values[...]  # 0-d: an array
                    data = await asyncio.to_thread(codec.encode, block)
                    await zs.set(key, prototype.buffer.from_bytes(data))

            return await asyncio.gather(*(one(k, loc) for k, loc in jobs), return_exceptions=True)

        for err in sync(write_all()):
            if err is not None:
                raise err

    def write_table_part(self, table: str, part: str, data: Any) -> tuple[str, str]:
        """Write one Parquet part of a table, atomically.

        Parameters
        ----------
        table : str
            Table name (one segment, e.g. ``"events"``).
        part : str
            Part name (one segment, e.g. ``"00003"``); parts are read back in order
            of their names.
        data : pyarrow.Table
            The rows (a ``pandas.DataFrame`` or a mapping of columns is converted).

        Returns
        -------
        tuple of str
            The part's store key and the digest of its bytes.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = validate_segment(table, kind="table name")
        part = validate_segment(part, kind="table part name")
        tbl = _as_arrow_table(data)
        sink = pa.BufferOutputStream()
        pq.write_table(tbl, sink, compression="zstd")
        raw = sink.getvalue().to_pybytes()
        base = self.tables_prefix if self.tables_prefix is not None else self.prefix
        key = validate_key(f"{base}/{TABLES}/{table}/part-{part}.parquet")
        self.store.write_bytes(key, raw)
        self.bytes_written += len(raw)
        return key, digest_bytes(raw)

    def consolidate(self) -> None:
        """Consolidate the group's metadata (done at commit: one read opens it all)."""
        self._group()
        _consolidate(self._zs)

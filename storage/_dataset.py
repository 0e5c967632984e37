"""Datasets: Zarr v3 groups of arrays and coordinates, plus Parquet tables.

Everything here is written so that plain ``xarray.open_zarr`` and plain
``pyarrow.parquet.read_table`` read it without minjiang: dimension names are Zarr v3
``dimension_names``, coordinates follow CF (1-D coordinates named like their
dimension; other coordinates listed in the ``coordinates`` attribute of the data
variables that use them and of the group), times are integers with CF ``units`` and
``calendar``, and ``_FillValue`` attributes are spelt the way xarray spells them for
Zarr v3. The store layout and write protocol are described in ``storage/DESIGN.md``.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import math
import struct
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
from minjiang.core.errors import (
    ChecksumMismatchError,
    DatasetNotFoundError,
    KeyNotFoundError,
    StoreError,
)
from minjiang.storage._info import (
    ARRAYS,
    TABLES,
    ArrayInfo,
    ChunkProblem,
    DatasetInfo,
    DatasetSummary,
    VerifyReport,
    dataset_prefix,
)
from minjiang.storage._names import canonical_json, jsonable, validate_key, validate_segment
from minjiang.storage._store import LocalStore, Store

if TYPE_CHECKING:
    import pyarrow as pa
    import xarray as xr
    import zarr

__all__ = [
    "DatasetWriter",
    "array_codecs",
    "dataset_schema",
    "default_chunks",
    "ensure_verified",
    "open_dataset_info",
    "read_array",
    "read_coord_values",
    "read_region",
    "read_table",
    "verify_dataset",
    "write_xarray",
]

MiB = 1 << 20
DEFAULT_CHUNK_BYTES = 8 * MiB
DEFAULT_MAX_BLOCK_BYTES = 256 * MiB
SMALL_DIM = 16  # dims this short keep their full extent in default chunks
_DATA_KINDS = "biufc"
_COORDS_ATTR = "coordinates"
_RESERVED_ARRAY_NAMES = frozenset({"zarr.json"})

T = TypeVar("T")
R = TypeVar("R")


# --------------------------------------------------------------------------- codecs


def array_codecs(dtype: Any = None) -> dict[str, Any]:
    """Codec keyword arguments for ``zarr.create_array``: the minjiang default.

    ``BytesCodec`` (little-endian) serialises; ``BloscCodec(cname="lz4", clevel=5)``
    with byte shuffle for multi-byte dtypes (bit shuffle for 1-byte dtypes) compresses;
    ``Crc32cCodec`` appends a CRC-32C so zarr itself refuses a damaged chunk on read.

    The codec was chosen by measurement: on CPU the codec, not the kernel, sets the
    pace of a Zarr-to-Zarr step, and zarr's default zstd level 3 cost about 28 CPU
    seconds per GB written against about 3 for blosc-lz4 with shuffle, at the same
    compression ratio on the float32 fields measured.

    Parameters
    ----------
    dtype : numpy dtype-like, optional
        Chooses the shuffle explicitly; without it zarr picks it from the array's
        dtype when the array is created (the same choice).

    Returns
    -------
    dict
        ``{"serializer": ..., "compressors": [...]}`` with zarr's own codec objects.
    """
    from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec

    shuffle: Literal["shuffle", "bitshuffle"] | None = None
    if dtype is not None:
        shuffle = "bitshuffle" if np.dtype(dtype).itemsize == 1 else "shuffle"
    return {
        "serializer": BytesCodec(),
        "compressors": [BloscCodec(cname="lz4", clevel=5, shuffle=shuffle), Crc32cCodec()],
    }


def _default_fill(dtype: np.dtype[Any]) -> Any:
    if dtype.kind in "fc":
        return np.nan
    if dtype.kind == "b":
        return False
    return 0


def _encode_fill_attr(value: Any, dtype: np.dtype[Any]) -> Any:
    # xarray reads the `_FillValue` attribute of Zarr v3 arrays through its
    # FillValueCoder: floats as base64 of a little-endian double, ints as ints.
    if value is None or isinstance(value, str | list):
        return value
    if dtype.kind == "f":
        return base64.standard_b64encode(struct.pack("<d", float(value))).decode()
    if dtype.kind == "c":
        c = complex(value)
        return [
            base64.standard_b64encode(struct.pack("<d", c.real)).decode(),
            base64.standard_b64encode(struct.pack("<d", c.imag)).decode(),
        ]
    if dtype.kind in "iu":
        return int(value)
    if dtype.kind == "b":
        return bool(value)
    return jsonable(value)


def _decode_fill_attr(value: Any, dtype: np.dtype[Any]) -> Any:
    if dtype.kind == "f" and isinstance(value, str):
        return dtype.type(struct.unpack("<d", base64.standard_b64decode(value))[0])
    if dtype.kind == "c" and isinstance(value, list) and len(value) == 2:
        re_, im = (struct.unpack("<d", base64.standard_b64decode(v))[0] for v in value)
        return dtype.type(complex(re_, im))
    return value


def _zarr_attrs(attrs: Mapping[str, Any] | None, dtype: np.dtype[Any]) -> dict[str, Any]:
    out = jsonable(dict(attrs or {}), nonfinite="keep")
    if "_FillValue" in out:
        out["_FillValue"] = _encode_fill_attr(out["_FillValue"], dtype)
    return out


def _attrs_equal(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return canonical_json(dict(a)) == canonical_json(dict(b))


def _coord_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return []


# --------------------------------------------------------------------------- chunking


def default_chunks(
    shape: Sequence[int],
    itemsize: int,
    *,
    dims: Sequence[str] | None = None,
    fixed: Mapping[str, int] | None = None,
    target_bytes: int = DEFAULT_CHUNK_BYTES,
) -> tuple[int, ...]:
    """Chunk shape of about ``target_bytes`` for an array.

    Dimensions of at most 16 elements keep their full extent; the longest of the
    others is halved until a chunk fits, so chunks stay roughly balanced across
    dimensions (a fair start for both map-like and along-axis work). ``fixed`` pins
    some dimensions by name (``-1`` means the full extent).

    Parameters
    ----------
    shape : sequence of int
        Array shape.
    itemsize : int
        Bytes per element.
    dims : sequence of str, optional
        Dimension names, needed with ``fixed``.
    fixed : Mapping, optional
        Dimension name to chunk length.
    target_bytes : int, optional
        Upper bound of a chunk's decoded size in bytes (default 8 MiB), unless fixed
        dimensions alone exceed it.

    Returns
    -------
    tuple of int
        Chunk lengths, each at least 1 and at most the extent (or 1 for empty dims).
    """
    shape = tuple(int(s) for s in shape)
    fixed = dict(fixed or {})
    names = tuple(dims) if dims is not None else tuple(f"dim_{i}" for i in range(len(shape)))
    unknown = sorted(set(fixed) - set(names))
    if unknown:
        raise ValueError(
            f"chunks name dimensions {unknown} that the array does not have; its dims are "
            f"{list(names)}"
        )
    chunks = [max(1, s) for s in shape]
    pinned = set()
    for i, name in enumerate(names):
        if name in fixed:
            size = int(fixed[name])
            if size == -1:
                size = shape[i]
            if size < 1 and not (size == 0 and shape[i] == 0):
                raise ValueError(
                    f"chunk length {fixed[name]!r} for dim {name!r} must be a positive integer "
                    "or -1 (the full extent)"
                )
            chunks[i] = max(1, min(size, max(1, shape[i])))
            pinned.add(i)
    while math.prod(chunks) * itemsize > target_bytes:
        free = [i for i in range(len(chunks)) if i not in pinned and chunks[i] > 1]
        big = [i for i in free if shape[i] > SMALL_DIM]
        candidates = big or free
        if not candidates:
            break
        i = max(candidates, key=lambda j: chunks[j])
        chunks[i] = -(-chunks[i] // 2)
    return tuple(chunks)


def _iter_blocks(
    shape: tuple[int, ...], chunks: tuple[int, ...], itemsize: int, max_block_bytes: int
) -> Iterator[tuple[slice, ...]]:
    """Chunk-aligned blocks of at most ``max_block_bytes``, grown along the inner dims first."""
    if any(s == 0 for s in shape):
        return
    block = [min(c, s) for c, s in zip(chunks, shape, strict=True)]
    for d in reversed(range(len(shape))):
        per = math.prod(block) * itemsize
        k = max(1, max_block_bytes // per)
        n = -(-shape[d] // chunks[d])
        block[d] = min(shape[d], min(k, n) * chunks[d])
        if block[d] < shape[d]:
            break
    starts = [range(0, s, b) for s, b in zip(shape, block, strict=True)]
    for origin in itertools.product(*starts):
        yield tuple(slice(o, min(o + b, s)) for o, b, s in zip(origin, block, shape, strict=True))


def _map(fn: Callable[[T], R], items: Sequence[T], *, parallel: bool, workers: int = 8) -> list[R]:
    if not parallel or len(items) < 2:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(fn, items))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _consolidate(zstore: Any) -> None:
    import zarr

    with warnings.catch_warnings():
        # Consolidated metadata is a zarr-python convention for Zarr v3, not yet part of
        # the spec; readers without it fall back to listing, so it is safe to write.
        warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
        zarr.consolidate_metadata(zstore, zarr_format=3)


def _open_group(zstore: Any, *, mode: str, consolidated: bool | None) -> zarr.Group:
    import zarr

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
        return zarr.open_group(zstore, mode=mode, zarr_format=3, use_consolidated=consolidated)  # type: ignore[arg-type]


def _dims(arr: Any) -> tuple[str, ...]:
    names = getattr(arr.metadata, "dimension_names", None) or (None,) * len(arr.shape)
    return tuple(d if d is not None else f"dim_{i}" for i, d in enumerate(names))


def _array_info(arr: Any, name: str, path: str, dataset_id: str) -> ArrayInfo:
    return ArrayInfo(
        name=name,
        path=path,
        dims=_dims(arr),
        shape=tuple(int(s) for s in arr.shape),
        dtype=str(np.dtype(arr.dtype)),
        chunks=tuple(int(c) for c in arr.chunks),
        attrs=dict(arr.attrs),
        dataset_id=dataset_id,
    )


# --------------------------------------------------------------------------- writer


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
    """

    def __init__(self, store: Store, dataset_id: str, *, group: str = ARRAYS) -> None:
        self.store = store
        self.dataset_id = validate_segment(dataset_id, kind="dataset id")
        self.prefix = dataset_prefix(self.dataset_id)
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
            self._zstore = self.store.zarr_store(self.arrays_prefix)
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
            Zarr fill value of never-written chunks (NaN for floats, 0 otherwise).

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
            coord=False,
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
            ``{chunk key: sha256 of the stored chunk}``.
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
            self._register_coord(name, dims_t)
        return sums

    def _register_coord(self, name: str, dims: tuple[str, ...]) -> None:
        import zarr

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
        """Write a chunk-aligned region of an array and checksum what was stored.

        Parameters
        ----------
        name : str
            The array.
        region : tuple of slice
            One slice per dimension (step 1). Each must start on a chunk boundary and
            end on one or at the array edge.
        data : numpy.ndarray
            Values of exactly the region's shape; cast to the array dtype only within
            the same kind (float64 to float32 yes, float to int no).

        Returns
        -------
        dict of str to str
            For every chunk written, its key relative to the array (``"c/0/3/1"``) and
            the sha256 of its stored (encoded) bytes.

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
        arr[sel] = values
        keys = [arr.metadata.encode_chunk_key(idx) for idx in _chunk_indices(sel, chunks)]
        base = self._array_path(validate_segment(name, kind="array name"))

        def digest(key: str) -> tuple[str, str, int]:
            raw = self.store.read_bytes(f"{base}/{key}")
            return key, _sha256(raw), len(raw)

        results = _map(digest, keys, parallel=not isinstance(self.store, LocalStore))
        self.bytes_written += sum(n for _, _, n in results)
        return {k: h for k, h, _ in results}

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
            The part's store key and the sha256 of its bytes.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = validate_segment(table, kind="table name")
        part = validate_segment(part, kind="table part name")
        tbl = _as_arrow_table(data)
        sink = pa.BufferOutputStream()
        pq.write_table(tbl, sink, compression="zstd")
        raw = sink.getvalue().to_pybytes()
        key = f"{self.prefix}/{TABLES}/{table}/part-{part}.parquet"
        self.store.write_bytes(key, raw)
        self.bytes_written += len(raw)
        return key, _sha256(raw)

    def consolidate(self) -> None:
        """Consolidate the group's metadata (done at commit: one read opens it all)."""
        self._group()
        _consolidate(self._zs)


def _normalise_region(region: Any, shape: tuple[int, ...], where: str) -> tuple[slice, ...]:
    if isinstance(region, slice):
        region = (region,)
    region = tuple(region)
    if len(region) != len(shape):
        raise ValueError(
            f"region {region!r} of {where} has {len(region)} slices; the array has "
            f"{len(shape)} dimensions (shape {shape})"
        )
    out = []
    for r, n in zip(region, shape, strict=True):
        if not isinstance(r, slice):
            raise ValueError(f"region {region!r} of {where}: use slices, not {type(r).__name__}")
        if r.step not in (None, 1):
            raise ValueError(f"region {region!r} of {where}: slices must have step 1")
        start = 0 if r.start is None else int(r.start)
        stop = n if r.stop is None else int(r.stop)
        if not 0 <= start <= stop <= n:
            raise ValueError(f"region {region!r} of {where} is out of bounds for shape {shape}")
        out.append(slice(start, stop))
    return tuple(out)


def _fmt_region(sel: tuple[slice, ...]) -> str:
    return "(" + ", ".join(f"{s.start}:{s.stop}" for s in sel) + ")"


def _chunk_indices(sel: tuple[slice, ...], chunks: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
    ranges = [range(s.start // c, -(-s.stop // c)) for s, c in zip(sel, chunks, strict=True)]
    return itertools.product(*ranges)


def _as_arrow_table(data: Any) -> pa.Table:
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if hasattr(data, "to_arrow") and not isinstance(data, Mapping):
        return data.to_arrow()
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(data, pd.DataFrame):
        return pa.Table.from_pandas(data, preserve_index=False)
    if isinstance(data, Mapping):
        return pa.table({str(k): np.asarray(v) for k, v in data.items()})
    raise TypeError(
        f"a table part must be a pyarrow.Table, pandas.DataFrame or mapping of columns, "
        f"not {type(data).__name__}"
    )


def _is_cftime(values: np.ndarray) -> bool:
    if values.dtype.kind != "O" or values.size == 0:
        return False
    first = values.flat[0]
    return type(first).__module__.split(".")[0] == "cftime"


def _encode_coord(
    name: str, values: np.ndarray, dims: tuple[str, ...], attrs: Mapping[str, Any] | None
) -> tuple[np.ndarray, dict[str, Any]]:
    kind = values.dtype.kind
    if kind in "Mm" or _is_cftime(values):
        import xarray as xr
        from xarray.conventions import encode_cf_variable

        var = xr.Variable(dims, values, attrs=dict(attrs or {}))
        enc = encode_cf_variable(var, name=name)
        return np.asarray(enc.values), dict(enc.attrs)
    if kind in _DATA_KINDS:
        return values, dict(attrs or {})
    raise ValueError(
        f"coordinate {name!r} has dtype {str(values.dtype)!r}; minjiang stores numeric, "
        "boolean, datetime64, timedelta64 and cftime coordinates (encode labels as integer "
        "codes with a 'flag_values'/'flag_meanings' attribute)"
    )


# --------------------------------------------------------------------------- reading


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
    """
    import zarr

    prefix = dataset_prefix(dataset_id)
    arrays_prefix = f"{prefix}/{ARRAYS}"
    tables = _table_parts(store, prefix)
    attrs: dict[str, Any] = {}
    infos: dict[str, ArrayInfo] = {}
    if store.exists(f"{arrays_prefix}/zarr.json"):
        group = _open_group(
            store.zarr_store(arrays_prefix, read_only=True), mode="r", consolidated=None
        )
        attrs = dict(group.attrs)
        for name, arr in group.arrays():
            if isinstance(arr, zarr.Array):
                infos[name] = _array_info(arr, name, f"{arrays_prefix}/{name}", dataset_id)
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
        {t: _table_schema(store, parts) for t, parts in tables.items()} if table_schemas else {}
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


def _table_schema(store: Store, parts: list[str]) -> dict[str, Any]:
    columns: dict[str, str] = {}
    rows = 0
    for key in parts:
        pf = _parquet_file(store, key)
        rows += pf.metadata.num_rows
        for field in pf.schema_arrow:
            columns.setdefault(field.name, str(field.type))
    return {"columns": columns, "rows": rows}


@lru_cache(maxsize=256)
def _cached_array(store: Store, path: str, shape: tuple[int, ...], chunks: tuple[int, ...]) -> Any:
    # Opening reads the array's zarr.json; tasks read many regions of few arrays.
    import zarr

    arr = zarr.open_array(store.zarr_store(path, read_only=True), mode="r", zarr_format=3)
    if (tuple(arr.shape), tuple(arr.chunks)) != (shape, chunks):
        raise StoreError(
            f"array at {path!r} in store {store.url!r} has shape {tuple(arr.shape)} and chunks "
            f"{tuple(arr.chunks)}; the ArrayInfo says {shape} and {chunks}: reopen the "
            "dataset info"
        )
    return arr


def _open_for_read(store: Store, info: ArrayInfo) -> Any:
    validate_key(info.path)
    try:
        return _cached_array(store, info.path, tuple(info.shape), tuple(info.chunks))
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

    Parameters
    ----------
    store : Store
        The store.
    info : ArrayInfo
        The array.
    region : tuple of slice
        One slice per dimension.
    out : numpy.ndarray, optional
        A C-contiguous array of the region's shape and the array's dtype to decode
        into (a pinned host buffer, for instance) instead of a new one.
    device : bool
        Assemble the region on the current CUDA device with zarr's GPU buffers and
        return a CuPy array (needs CuPy; zarr's CPU codecs still decode on the host).

    Returns
    -------
    numpy.ndarray or cupy.ndarray
        ``out`` when given.

    Raises
    ------
    ChecksumMismatchError
        If a chunk in the region fails zarr's CRC-32C check (damaged or truncated); the
        message names the dataset, array and chunk key.
    """
    arr = _open_for_read(store, info)
    sel = _normalise_region(
        region, tuple(info.shape), f"array {info.name!r} of dataset {info.dataset_id!r}"
    )
    if out is not None:
        want = tuple(s.stop - s.start for s in sel)
        if out.shape != want or out.dtype != arr.dtype or not out.flags.c_contiguous:
            raise ValueError(
                f"out has shape {out.shape!r} and dtype {out.dtype}; reading {info.name!r} "
                f"needs a C-contiguous {want!r} {arr.dtype} array"
            )
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


def _find_bad_chunk(arr: Any, sel: tuple[slice, ...], chunks: tuple[int, ...]) -> str | None:
    for idx in _chunk_indices(sel, chunks):
        try:
            arr.get_block_selection(idx)
        except Exception:
            return str(arr.metadata.encode_chunk_key(idx))
    return None


def read_array(store: Store, info: ArrayInfo) -> np.ndarray:
    """Read a whole array (for coordinates and other small arrays)."""
    return read_region(store, info, tuple(slice(0, s) for s in info.shape))


def read_coord_values(store: Store, info: ArrayInfo) -> np.ndarray:
    """Read a coordinate and decode it as xarray would.

    CF times become ``datetime64`` (or cftime objects for non-standard calendars),
    ``_FillValue`` entries become NaN/NaT, scale and offset are applied.

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
    import xarray as xr
    from xarray.conventions import decode_cf_variable

    raw = read_array(store, info)
    attrs = dict(info.attrs)
    attrs.pop(_COORDS_ATTR, None)
    if "_FillValue" in attrs:
        attrs["_FillValue"] = _decode_fill_attr(attrs["_FillValue"], raw.dtype)
    var = xr.Variable(info.dims, raw, attrs=attrs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=FutureWarning)
        decoded = decode_cf_variable(info.name, var, decode_timedelta=True)
    return np.asarray(decoded.values)


def read_table(store: Store, dataset_id: str, name: str) -> pa.Table:
    """Read a table: all its Parquet parts, concatenated in order of part name.

    Raises
    ------
    KeyNotFoundError
        If the dataset has no table of that name (the message lists those it has).
    """
    import pyarrow as pa

    prefix = dataset_prefix(dataset_id)
    name = validate_segment(name, kind="table name")
    tables = _table_parts(store, prefix)
    if name not in tables:
        raise KeyNotFoundError(
            f"dataset {dataset_id!r} has no table {name!r} in store {store.url!r}; its "
            f"tables: {sorted(tables)}"
        )
    parts = [_parquet_file(store, k).read() for k in tables[name]]
    return pa.concat_tables(parts, promote_options="default") if len(parts) > 1 else parts[0]


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


# --------------------------------------------------------------------------- verify


def verify_keys(store: Store, expected: Mapping[str, str]) -> dict[str, str]:
    """Re-read each store key and compare its sha256 with ``expected[key]``.

    Returns only the keys that fail, mapped to ``"missing"`` or ``"checksum mismatch"``
    (empty when everything verifies). Reads run in parallel on object stores.
    """

    def check(key: str) -> tuple[str, str | None]:
        try:
            raw = store.read_bytes(key)
        except KeyNotFoundError:
            return key, "missing"
        return key, None if _sha256(raw) == expected[key] else "checksum mismatch"

    keys = [validate_key(k) for k in expected]
    return {k: p for k, p in _map(check, keys, parallel=len(keys) > 4) if p is not None}


def verify_dataset(
    store: Store,
    dataset_id: str,
    checksums: Mapping[str, Mapping[str, str]],
    *,
    tables: Mapping[str, Mapping[str, str]] | None = None,
) -> VerifyReport:
    """Check stored chunks (and table parts) against the checksums recorded at write time.

    Parameters
    ----------
    store : Store
        The store.
    dataset_id : str
        The dataset id.
    checksums : Mapping
        Array name to ``{chunk key: sha256}`` (a record's ``checksums``).
    tables : Mapping, optional
        Table name to ``{part store key: sha256}`` (a record's ``tables``).

    Returns
    -------
    VerifyReport
    """
    prefix = dataset_prefix(dataset_id)
    jobs: list[tuple[str, str, str, str]] = []
    for array, chunks in checksums.items():
        base = f"{prefix}/{ARRAYS}/{validate_segment(array, kind='array name')}"
        for ck, sha in chunks.items():
            jobs.append((array, ck, validate_key(f"{base}/{ck}"), sha))
    for table, parts in (tables or {}).items():
        validate_segment(table, kind="table name")
        for key, sha in parts.items():
            if not validate_key(key).startswith(f"{prefix}/{TABLES}/{table}/"):
                raise ValueError(
                    f"table part key {key!r} is not below {prefix}/{TABLES}/{table}/ (dataset "
                    f"{dataset_id!r})"
                )
            jobs.append((table, key, key, sha))

    found = verify_keys(store, {key: sha for _, _, key, sha in jobs})
    problems = sorted(
        (ChunkProblem(array, ck, found[key]) for array, ck, key, _ in jobs if key in found),
        key=lambda p: (p.array, p.chunk_key),
    )
    return VerifyReport(ok=not problems, checked=len(jobs), problems=problems)


def ensure_verified(report: VerifyReport, dataset_id: str) -> None:
    """Raise :class:`ChecksumMismatchError` unless ``report`` is clean.

    The message names the dataset, how many chunks failed and the first few chunk
    keys with what is wrong with each.
    """
    if report.ok:
        return
    first = ", ".join(f"{p.array}/{p.chunk_key} ({p.problem})" for p in report.problems[:5])
    more = f" and {len(report.problems) - 5} more" if len(report.problems) > 5 else ""
    raise ChecksumMismatchError(
        f"dataset {dataset_id!r}: {len(report.problems)} of {report.checked} chunks failed "
        f"verification: {first}{more}. The stored bytes differ from those recorded when they "
        "were written; re-run the step that produced the dataset (it rewrites those chunks) "
        "or restore them from a copy"
    )


# --------------------------------------------------------------------------- xarray


def write_xarray(
    store: Store,
    dataset_id: str,
    ds: xr.Dataset,
    *,
    chunks: Mapping[str, int] | None = None,
    max_block_bytes: int = DEFAULT_MAX_BLOCK_BYTES,
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

    Returns
    -------
    DatasetSummary

    Raises
    ------
    ValueError
        If a single chunk is larger than ``max_block_bytes`` or a variable has a dtype
        that cannot be stored.
    """
    writer = DatasetWriter(store, dataset_id)
    writer.create(dict(ds.attrs))
    sums: dict[str, dict[str, str]] = {}
    fixed = dict(chunks or {})
    all_dims = set(ds.dims)
    unknown = sorted(set(fixed) - {str(d) for d in all_dims})
    if unknown:
        raise ValueError(
            f"chunks name dimensions {unknown} that the dataset does not have; its dims are "
            f"{sorted(str(d) for d in all_dims)}"
        )

    for name, coord in ds.coords.items():
        var = coord.variable
        nbytes = var.size * var.dtype.itemsize
        dims = tuple(str(d) for d in var.dims)
        is_dim = var.ndim == 1 and dims[0] == name
        if var.dtype.kind in _DATA_KINDS and nbytes > max_block_bytes and not is_dim:
            sums[str(name)] = _write_variable(
                writer, str(name), var, fixed, max_block_bytes, coord=True
            )
            writer._register_coord(str(name), dims)
        else:
            sums[str(name)] = writer.write_coord(
                str(name), var.values, dims=dims, attrs=dict(var.attrs)
            )
    for name, da in ds.data_vars.items():
        sums[str(name)] = _write_variable(writer, str(name), da.variable, fixed, max_block_bytes)
    writer.consolidate()
    info = open_dataset_info(store, dataset_id)
    return DatasetSummary(
        schema=dataset_schema(info), checksums=sums, bytes_written=writer.bytes_written
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
) -> dict[str, str]:
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
    writer._create(
        name,
        shape=var.shape,
        dtype=dtype,
        chunks=chunks,
        dims=dims,
        attrs=attrs,
        fill_value=None,
        coord=coord,
    )
    sums: dict[str, str] = {}
    for region in _iter_blocks(tuple(var.shape), chunks, dtype.itemsize, max_block_bytes):
        block = convert(var[region].values)
        sums.update(writer.write_region(name, region, block))
    return sums

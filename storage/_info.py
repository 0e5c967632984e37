"""Plain descriptions of stored datasets (no zarr, no pyarrow: cheap to import and pickle)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

__all__ = [
    "ArrayInfo",
    "ChunkProblem",
    "DatasetInfo",
    "DatasetSummary",
    "VerifyReport",
    "array_key",
    "dataset_prefix",
]

DATASETS = "datasets"
ARRAYS = "arrays.zarr"
TABLES = "tables"


def dataset_prefix(dataset_id: str) -> str:
    """Store key prefix of a dataset: ``datasets/<id>`` (the id is validated)."""
    from minjiang.storage._names import validate_segment

    return f"{DATASETS}/{validate_segment(dataset_id, kind='dataset id')}"


def array_key(dataset_id: str, name: str) -> str:
    """Store key prefix of an array: ``datasets/<id>/arrays.zarr/<name>``."""
    from minjiang.storage._names import validate_segment

    return f"{dataset_prefix(dataset_id)}/{ARRAYS}/{validate_segment(name, kind='array name')}"


@dataclasses.dataclass(frozen=True)
class ArrayInfo:
    """One stored Zarr v3 array, as the planner and the tasks see it.

    Attributes
    ----------
    name : str
        Array name within its dataset (``"sst"``).
    path : str
        Store key prefix of the array (``"datasets/<id>/arrays.zarr/sst"``).
    dims : tuple of str
        Dimension names (the Zarr v3 ``dimension_names``).
    shape, chunks : tuple of int
        Array and (regular) chunk shape.
    dtype : str
        The numpy dtype as a string (``"float32"``).
    attrs : dict
        The array attributes (units, CF attributes, ``coordinates``).
    dataset_id : str
        The dataset the array belongs to.
    """

    name: str
    path: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: str
    chunks: tuple[int, ...]
    attrs: dict[str, Any]
    dataset_id: str

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self.shape)

    @property
    def itemsize(self) -> int:
        """Bytes per element."""
        import numpy as np

        return int(np.dtype(self.dtype).itemsize)

    @property
    def nbytes(self) -> int:
        """Decoded size of the whole array in bytes."""
        return math.prod(self.shape) * self.itemsize

    @property
    def chunk_nbytes(self) -> int:
        """Decoded size of one full chunk in bytes."""
        return math.prod(self.chunks) * self.itemsize

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """Number of chunks along each dimension."""
        return tuple(-(-s // c) if s else 0 for s, c in zip(self.shape, self.chunks, strict=True))


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """The metadata of one stored dataset (read without touching chunk data).

    Attributes
    ----------
    id : str
        Dataset id.
    prefix : str
        Store key prefix (``"datasets/<id>"``).
    attrs : dict
        Group attributes.
    arrays : dict of str to ArrayInfo
        Data variables.
    coords : dict of str to ArrayInfo
        Coordinate arrays: those named like their only dimension, or listed in a
        ``coordinates`` attribute (of an array or of the group).
    tables : dict of str to list of str
        Table name to the store keys of its Parquet parts, sorted by part name.
    table_schemas : dict of str to dict
        Table name to ``{"columns": {column: arrow type}, "rows": int}``.
    """

    id: str
    prefix: str
    attrs: dict[str, Any]
    arrays: dict[str, ArrayInfo]
    coords: dict[str, ArrayInfo]
    tables: dict[str, list[str]]
    table_schemas: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def __getitem__(self, name: str) -> ArrayInfo:
        """An array or coordinate by name."""
        if name in self.arrays:
            return self.arrays[name]
        if name in self.coords:
            return self.coords[name]
        known = sorted(self.arrays) + sorted(self.coords)
        raise KeyError(f"dataset {self.id!r} has no array {name!r}; it has {known}")


@dataclasses.dataclass(frozen=True)
class DatasetSummary:
    """What :func:`~minjiang.storage.write_xarray` wrote.

    Attributes
    ----------
    schema : dict
        :func:`~minjiang.storage.dataset_schema` of the written dataset (JSON-safe).
    checksums : dict
        Array name to ``{chunk key: digest of the stored chunk bytes}``.
    bytes_written : int
        Encoded bytes written (chunks and table parts).
    tables : dict
        Table name to ``{part store key: digest of the part's bytes}``.
    """

    schema: dict[str, Any]
    checksums: dict[str, dict[str, str]]
    bytes_written: int
    tables: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ChunkProblem:
    """One chunk, table part, metadata document, record or file that failed verification.

    Attributes
    ----------
    array : str
        The array (or table) it belongs to; ``""`` for the group's own metadata,
        ``"(record)"`` for the catalog record.
    chunk_key : str
        The chunk key within the array (``"c/0/3"``), the metadata document
        (``"sst/zarr.json"``), the table part's store key, or the record's key.
    problem : str
        ``"missing"`` (not in the store), ``"checksum mismatch"`` (bytes differ from
        the recorded digest), ``"not recorded"`` (a chunk of the grid the record
        gives no digest), ``"stray file"`` (a file the record does not list, such as
        a temporary file of a killed writer) or ``"record mismatch"`` (the record's
        own digest or id does not hold).
    """

    array: str
    chunk_key: str
    problem: Literal[
        "missing", "checksum mismatch", "not recorded", "stray file", "record mismatch"
    ]


@dataclasses.dataclass(frozen=True)
class VerifyReport:
    """Result of :func:`~minjiang.storage.verify_dataset`.

    Attributes
    ----------
    ok : bool
        True when everything checked is present with its recorded digest and nothing
        else is in the dataset.
    checked : int
        Number of chunks, table parts, metadata documents and records checked.
    problems : list of ChunkProblem
        What failed, sorted by array and chunk key.
    """

    ok: bool
    checked: int
    problems: list[ChunkProblem]

"""minjiang.storage: stores, datasets, chunk checksums, catalog and lineage.

``import minjiang.storage`` is light: zarr, pyarrow, xarray and pydantic are imported
only when a dataset or catalog function is first used. The store layout, the write
protocol and the guarantees of each store kind are in ``storage/DESIGN.md``.
"""

from __future__ import annotations

if __name__ != "minjiang.storage":  # this folder is only importable as minjiang.storage
    raise ImportError(
        f"'{__name__}' is minjiang.storage: install minjiang (`make demo` or `pip install -e .`) and `import minjiang.storage`"
    )

from typing import TYPE_CHECKING, Any

from minjiang.storage._info import (
    ArrayInfo,
    ChunkProblem,
    DatasetInfo,
    DatasetSummary,
    VerifyReport,
    array_key,
    dataset_prefix,
)
from minjiang.storage._names import (
    canonical_json,
    content_id,
    hash_files,
    validate_key,
    validate_name,
    validate_segment,
)
from minjiang.storage._staging import Staging, arrays_group_key
from minjiang.storage._store import LocalStore, ObjectStore, Store, open_store
from minjiang.storage._tiles import parse_tile_part, tile_overlaps, tile_part_name

if TYPE_CHECKING:
    from minjiang.storage._catalog import Catalog, LineageGraph, Record, utc_now
    from minjiang.storage._encoding import array_codecs, default_chunks
    from minjiang.storage._reader import (
        dataset_schema,
        decoded_nbytes,
        forget_cached,
        open_dataset_info,
        open_xarray,
        read_array,
        read_coord_values,
        read_region,
        read_table,
    )
    from minjiang.storage._summary import (
        block_summary,
        finish_summary,
        merge_summaries,
        values_summary,
        with_summaries,
    )
    from minjiang.storage._verify import ensure_verified, verify_dataset, verify_keys
    from minjiang.storage._writer import DatasetWriter
    from minjiang.storage._xarray import write_xarray

__all__ = [
    "ArrayInfo",
    "Catalog",
    "ChunkProblem",
    "DatasetInfo",
    "DatasetSummary",
    "DatasetWriter",
    "LineageGraph",
    "LocalStore",
    "ObjectStore",
    "Record",
    "Staging",
    "Store",
    "VerifyReport",
    "array_codecs",
    "array_key",
    "arrays_group_key",
    "block_summary",
    "canonical_json",
    "content_id",
    "dataset_prefix",
    "dataset_schema",
    "decoded_nbytes",
    "default_chunks",
    "ensure_verified",
    "finish_summary",
    "forget_cached",
    "hash_files",
    "merge_summaries",
    "open_dataset_info",
    "open_store",
    "open_xarray",
    "parse_tile_part",
    "read_array",
    "read_coord_values",
    "read_region",
    "read_table",
    "tile_overlaps",
    "tile_part_name",
    "utc_now",
    "validate_key",
    "validate_name",
    "validate_segment",
    "values_summary",
    "verify_dataset",
    "verify_keys",
    "with_summaries",
    "write_xarray",
]

_LAZY = {
    "block_summary": "minjiang.storage._summary",
    "finish_summary": "minjiang.storage._summary",
    "merge_summaries": "minjiang.storage._summary",
    "values_summary": "minjiang.storage._summary",
    "with_summaries": "minjiang.storage._summary",
    "Catalog": "minjiang.storage._catalog",
    "LineageGraph": "minjiang.storage._catalog",
    "Record": "minjiang.storage._catalog",
    "utc_now": "minjiang.storage._catalog",
    "DatasetWriter": "minjiang.storage._writer",
    "array_codecs": "minjiang.storage._encoding",
    "default_chunks": "minjiang.storage._encoding",
    "dataset_schema": "minjiang.storage._reader",
    "open_dataset_info": "minjiang.storage._reader",
    "open_xarray": "minjiang.storage._reader",
    "read_array": "minjiang.storage._reader",
    "read_coord_values": "minjiang.storage._reader",
    "decoded_nbytes": "minjiang.storage._reader",
    "forget_cached": "minjiang.storage._reader",
    "read_region": "minjiang.storage._reader",
    "read_table": "minjiang.storage._reader",
    "ensure_verified": "minjiang.storage._verify",
    "verify_dataset": "minjiang.storage._verify",
    "verify_keys": "minjiang.storage._verify",
    "write_xarray": "minjiang.storage._xarray",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'minjiang.storage' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

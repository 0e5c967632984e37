"""The dataset API in one import, for code written before it was split by concern.

Encoding lives in ``_encoding``, writing in ``_writer``, reading in ``_reader``,
integrity (seal and verify) in ``_verify``, ``write_xarray`` in ``_xarray``; new code
imports from ``minjiang.storage`` (or those modules) directly.
"""

from __future__ import annotations

from minjiang.storage._encoding import array_codecs, default_chunks
from minjiang.storage._reader import (
    dataset_schema,
    open_dataset_info,
    open_xarray,
    read_array,
    read_coord_values,
    read_region,
    read_table,
)
from minjiang.storage._verify import ensure_verified, verify_dataset, verify_keys
from minjiang.storage._writer import DatasetWriter
from minjiang.storage._xarray import write_xarray

__all__ = [
    "DatasetWriter",
    "array_codecs",
    "dataset_schema",
    "default_chunks",
    "ensure_verified",
    "open_dataset_info",
    "open_xarray",
    "read_array",
    "read_coord_values",
    "read_region",
    "read_table",
    "verify_dataset",
    "verify_keys",
    "write_xarray",
]

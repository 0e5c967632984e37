"""Helpers that make small input datasets for tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def write_zarr(
    path: Path,
    arrays: dict[str, tuple[tuple[str, ...], np.ndarray]],
    *,
    chunks: dict[str, tuple[int, ...]] | None = None,
    coords: dict[str, Any] | None = None,
) -> Path:
    """Write ``arrays`` (name -> (dims, values)) as a plain Zarr v3 group with xarray."""
    import xarray as xr

    ds = xr.Dataset({k: (dims, v) for k, (dims, v) in arrays.items()}, coords=coords or {})
    encoding = {k: {"chunks": c} for k, c in (chunks or {}).items()}
    ds.to_zarr(path, mode="w", zarr_format=3, consolidated=False, encoding=encoding)
    return path


def ingest_array(
    rt: Any,
    tmp: Path,
    name: str,
    values: np.ndarray,
    dims: tuple[str, ...],
    chunks: tuple[int, ...],
    *,
    coords: dict[str, Any] | None = None,
    var: str = "data",
) -> Any:
    """Ingest one array into ``rt``'s store (through the array.zarr reader) and return the Result."""
    path = write_zarr(
        tmp / f"{name.replace('/', '_')}.zarr",
        {var: (dims, values)},
        chunks={var: chunks},
        coords=coords,
    )
    return rt.ingest("array.zarr", [path], name=name)

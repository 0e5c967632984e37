"""The microstructure image reader: TIFF stacks (tifffile), NumPy and Zarr arrays.

Images are read lazily: a TIFF through tifffile's Zarr view of its pages (no page is
decoded before the runtime writes its chunk), a ``.npy`` file memory-mapped, a Zarr
array through zarr; the runtime writes them chunk by chunk. The array is ``image``
with dims ``("y", "x")`` or ``("z", "y", "x")`` and the attributes ``spacing`` (voxel
size per dim) and ``units``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from minjiang.core import Reader
from minjiang.core.errors import ReaderError
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["ImageParams", "ImageReader"]


class ImageParams(BaseModel):
    """Parameters of ``materials.image``."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    voxel_size: list[float] | None = Field(
        default=None,
        description="Voxel size per dim ((y, x) or (z, y, x)); default: the TIFF's ImageJ "
        "spacing and resolution tags, else required.",
    )
    units: str = Field(default="um", description="Units of voxel_size.")
    crop_bottom: int = Field(
        default=0, ge=0, description="Rows removed from the bottom of every image (SEM info bar)."
    )
    chunks: dict[str, int] | None = Field(default=None, description="Chunk length per dim.")


def _tiff(path: Path) -> tuple[Any, list[float] | None]:
    import dask.array as da
    import tifffile
    import zarr

    with tifffile.TiffFile(path) as tf:
        series = tf.series[0]
        spacing = None
        page = series.pages[0]
        tags = getattr(page, "tags", {})
        xr_, yr_ = tags.get("XResolution"), tags.get("YResolution")
        if xr_ is not None and yr_ is not None and xr_.value[0] and yr_.value[0]:
            rx = xr_.value[1] / xr_.value[0]
            ry = yr_.value[1] / yr_.value[0]
            spacing = [ry, rx]
            meta = tf.imagej_metadata or {}
            if len(series.shape) == 3:
                spacing = [float(meta["spacing"]), ry, rx] if "spacing" in meta else None
    store = tifffile.imread(path, aszarr=True)
    arr = da.from_zarr(zarr.open_array(store, mode="r"))
    return arr, spacing


def _open(path: Path) -> tuple[Any, list[float] | None]:
    import dask.array as da
    import numpy as np

    name = path.name.lower()
    if name.endswith((".tif", ".tiff")):
        return _tiff(path)
    if name.endswith(".npy"):
        return da.from_array(np.load(path, mmap_mode="r"), chunks="auto"), None
    if name.endswith(".zarr"):
        import zarr

        return da.from_zarr(zarr.open_array(str(path), mode="r")), None
    raise ReaderError(f"materials.image: {path.suffix!r} is not a TIFF, .npy or .zarr image")


class ImageReader(Reader):
    """2-D micrographs and 3-D volumes (TIFF stacks, ``.npy``, Zarr) with physical voxel size."""

    name: ClassVar[str] = "materials.image"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "Microstructure images: TIFF stacks, .npy, Zarr (lazy)"
    extensions: ClassVar[tuple[str, ...]] = (".tif", ".tiff", ".npy", ".zarr")
    params: ClassVar[type[BaseModel] | None] = ImageParams
    supports_directories: ClassVar[bool] = True  # a .zarr array is a folder
    supports_multiple: ClassVar[bool] = False

    def guess_can_open(self, path: str | os.PathLike[str]) -> bool:
        try:
            p = Path(path)
            if p.is_dir():
                return p.name.lower().endswith(".zarr")
            return p.name.lower().endswith((".tif", ".tiff", ".npy"))
        except (OSError, ValueError, TypeError):
            return False

    def source_files(self, paths: Any) -> list[Path]:
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        if len(paths) == 1 and Path(paths[0]).is_dir():
            p = Path(paths[0])
            if not p.name.lower().endswith(".zarr"):
                raise ReaderError(f"{self.name}: a folder must be a .zarr array")
            return sorted(f for f in p.rglob("*") if f.is_file())
        return super().source_files(paths)

    def open(self, files: list[Path], params: Any) -> xr.Dataset:
        import xarray as xr

        params = params or ImageParams()
        path = next(
            (p for p in Path(files[0]).parents if p.name.lower().endswith(".zarr")), files[0]
        )
        try:
            arr, spacing = _open(Path(path))
        except ReaderError:
            raise
        except Exception as err:  # tifffile/zarr raise many types for a bad file
            raise ReaderError(
                f"{self.name}: the image cannot be read ({type(err).__name__}); check the file"
            ) from err
        if arr.ndim not in (2, 3):
            raise ReaderError(f"{self.name}: the image is {arr.ndim}-D; 2-D or 3-D images only")
        if params.crop_bottom:
            if params.crop_bottom >= arr.shape[-2]:
                raise ReaderError(
                    f"{self.name}: crop_bottom {params.crop_bottom} removes all {arr.shape[-2]} rows"
                )
            arr = arr[..., : arr.shape[-2] - params.crop_bottom, :]
        dims = ("y", "x") if arr.ndim == 2 else ("z", "y", "x")
        if params.voxel_size is not None:
            spacing = [float(v) for v in params.voxel_size]
        if spacing is None:
            raise ReaderError(
                f"{self.name}: the file does not state its voxel size; pass voxel_size "
                f"({len(dims)} values for {dims})"
            )
        if len(spacing) != arr.ndim or any(not (v > 0) for v in spacing):
            raise ReaderError(
                f"{self.name}: voxel_size needs {arr.ndim} positive values for {dims}, got {spacing!r}"
            )
        attrs = {"spacing": spacing, "units": params.units}
        return xr.Dataset({"image": (dims, arr, attrs)}, attrs={"source_format": "image"})

    def chunks(self, ds: xr.Dataset, params: Any) -> Mapping[str, int] | None:
        return getattr(params, "chunks", None)

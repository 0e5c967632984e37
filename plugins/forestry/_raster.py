"""``forestry.raster``: GeoTIFF/COG (and any single-grid raster GDAL reads) via rasterio.

Each band becomes one array named after the band (``bands`` parameter, else the
band description, else ``band_1``, ``band_2``...), with dims ``("y", "x")``; several
files of one grid become a stack ``("time", "y", "x")`` with one date per file.
Arrays are read lazily by windows, with Zarr chunks that are whole multiples of the
file's internal tiles (or strips). See :mod:`minjiang.plugins.forestry._grid` for the
georeferencing attributes every array carries.

Values: cells equal to the nodata value (or outside the file's internal mask) become
NaN when ``mask_nodata`` (the default), so that nodata is a mask and never a number in
statistics; then ``value = raw * scale + offset`` when the band has a scale or offset
(from the file's tags, or given explicitly) and ``apply_scale`` is true. The scale and
offset used are recorded as ``source_scale``/``source_offset`` (never as CF
``scale_factor``/``add_offset``, which readers would apply a second time).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from minjiang.core import Reader
from minjiang.core.errors import ReaderError
from minjiang.plugins.forestry._grid import Grid
from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["RasterParams", "RasterReader"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_TARGET = 1024  # cells along y and x per chunk, rounded to whole tiles


class RasterParams(BaseModel):
    """Parameters of ``forestry.raster``."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    bands: list[str] | None = Field(
        default=None,
        description="Array name of each band, in band order (default: the band descriptions, "
        "else band_1, band_2...).",
    )
    dates: list[str] | None = Field(
        default=None,
        description="One ISO date per file when several files are stacked along 'time'.",
    )
    mask_nodata: bool = Field(
        default=True, description="Nodata cells (and the file's masked cells) become NaN."
    )
    nodata: float | None = Field(
        default=None, description="Nodata value to use instead of the file's."
    )
    apply_scale: bool = Field(
        default=True, description="Apply value = raw * scale + offset (stored as float)."
    )
    scale: float | dict[str, float] | None = Field(
        default=None,
        description="Scale per band name (or one for all) overriding the file's, e.g. "
        "2.75e-05 for Landsat C2 L2 surface reflectance, 1e-4 for Sentinel-2 L2A.",
    )
    offset: float | dict[str, float] | None = Field(
        default=None,
        description="Offset per band name (or one for all) overriding the file's, e.g. -0.2 "
        "for Landsat C2 L2 surface reflectance, -0.1 for Sentinel-2 L2A (baseline 04.00+).",
    )
    dtype: str = Field(
        default="float32",
        pattern=r"^float(32|64)$",
        description="dtype of masked or scaled bands (float32 or float64).",
    )
    chunks: dict[str, int] | None = Field(
        default=None, description="Chunk length per dim (y, x, time) instead of tile-aligned."
    )

    @field_validator("bands")
    @classmethod
    def _names(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        for n in v:
            if not _NAME.match(n):
                raise ValueError(f"band name {n!r} must be an identifier (letters, digits, _)")
        if len(set(v)) != len(v):
            raise ValueError("band names must be unique")
        return v


def _band_names(src: Any, params: RasterParams, name: str) -> list[str]:
    if params.bands is not None:
        if len(params.bands) != src.count:
            raise ReaderError(
                f"{name}: 'bands' names {len(params.bands)} bands but the file has {src.count}; "
                "give one name per band"
            )
        return list(params.bands)
    names = []
    for i, d in enumerate(src.descriptions, start=1):
        cand = re.sub(r"[^A-Za-z0-9_]", "_", d or "")
        names.append(cand if cand and _NAME.match(cand) else f"band_{i}")
    if len(set(names)) != len(names):
        names = [f"band_{i}" for i in range(1, src.count + 1)]
    return names


def _per_band(value: float | dict[str, float] | None, band: str, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, dict):
        return float(value.get(band, default))
    return float(value)


def _crs_wkt(src: Any) -> str:
    if src.crs is not None:
        return str(src.crs.to_wkt())
    # GDAL's netCDF driver leaves the CRS of rioxarray-written files in a tag
    for k, v in src.tags().items():
        if k.endswith("#crs") and v:
            try:
                from pyproj import CRS

                return str(CRS.from_user_input(v.replace("+init=", "")).to_wkt())
            except Exception:
                return ""
    return ""


def _grid(src: Any) -> Grid:
    t = src.transform
    return Grid(_crs_wkt(src), (t.a, t.b, t.c, t.d, t.e, t.f), (src.height, src.width))


class _Window:
    """A lazily read band (or band stack over files): ``__getitem__`` reads a window."""

    def __init__(
        self,
        files: list[str],
        band: int,
        shape: tuple[int, ...],
        dtype: Any,
        nodata: float | None,
        mask: bool,
        scale: float,
        offset: float,
        scaled: bool,
    ) -> None:
        import numpy as np

        self.files, self.band = files, band
        self.shape, self.dtype, self.ndim = shape, np.dtype(dtype), len(shape)
        self.nodata, self.mask = nodata, mask
        self.scale, self.offset, self.scaled = scale, offset, scaled

    def _read(self, path: str, rows: slice, cols: slice) -> Any:
        import numpy as np
        import rasterio
        from rasterio.windows import Window

        w = Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)
        with rasterio.open(path) as src:
            raw = src.read(self.band, window=w)
            if not (self.mask or self.scaled):
                return raw
            out = raw.astype(self.dtype)
            if self.mask:
                bad = src.read_masks(self.band, window=w) == 0
                if self.nodata is not None:
                    bad |= raw == self.nodata if not np.isnan(self.nodata) else np.isnan(raw)
                out[bad] = np.nan
            if self.scaled:
                out *= self.dtype.type(self.scale)
                out += self.dtype.type(self.offset)
            return out

    def __getitem__(self, key: Any) -> Any:
        import numpy as np

        key = key if isinstance(key, tuple) else (key,)
        sl = [
            slice(*k.indices(n)) if isinstance(k, slice) else slice(int(k), int(k) + 1)
            for k, n in zip(key, self.shape, strict=False)
        ]
        sl += [slice(0, n) for n in self.shape[len(sl) :]]
        if self.ndim == 2:
            return self._read(self.files[0], sl[0], sl[1])
        blocks = [
            self._read(self.files[t], sl[1], sl[2]) for t in range(*sl[0].indices(len(self.files)))
        ]
        if not blocks:
            return np.empty((0, sl[1].stop - sl[1].start, sl[2].stop - sl[2].start), self.dtype)
        return np.stack(blocks)


def _tile_chunk(block: int, size: int) -> int:
    if block >= size:
        return size
    return min(size, max(block, (_TARGET // block) * block))


class RasterReader(Reader):
    """GeoTIFF/COG rasters (one file, or several files of one grid stacked along time)."""

    name: ClassVar[str] = "forestry.raster"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = (
        "GeoTIFF/COG via rasterio: CRS, transform, nodata mask, scale/offset, tile-aligned chunks"
    )
    extensions: ClassVar[tuple[str, ...]] = (".tif", ".tiff")
    params: ClassVar[type[BaseModel] | None] = RasterParams
    supports_directories: ClassVar[bool] = False
    supports_multiple: ClassVar[bool] = True

    def source_files(self, paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
        # order matters (one date per file): keep the order given
        return super().source_files(paths)

    def open(self, files: list[Path], params: Any) -> xr.Dataset:
        import numpy as np
        import rasterio
        import xarray as xr
        from dask import array as da

        params = params or RasterParams()
        paths = [str(f) for f in files]
        if len(paths) > 1 and (params.dates is None or len(params.dates) != len(paths)):
            raise ReaderError(
                f"{self.name}: {len(paths)} files are stacked along 'time' and need one date "
                f"each; give 'dates' with {len(paths)} ISO dates "
                f"(got {0 if params.dates is None else len(params.dates)})"
            )
        if len(paths) == 1 and params.dates is not None and len(params.dates) != 1:
            raise ReaderError(f"{self.name}: one file takes at most one date in 'dates'")
        try:
            srcs = [rasterio.open(p) for p in paths]
        except rasterio.errors.RasterioError as err:
            raise ReaderError(
                f"{self.name}: source {Path(paths[0]).name!r} is not a raster GDAL can read ({err})"
            ) from None
        try:
            src = srcs[0]
            grid = _grid(src)
            for other, p in zip(srcs[1:], paths[1:], strict=True):
                g = _grid(other)
                if not grid.same(g) or other.count != src.count:
                    raise ReaderError(
                        f"{self.name}: files {Path(paths[0]).name!r} ({grid.describe()}, "
                        f"{src.count} bands) and {Path(p).name!r} ({g.describe()}, {other.count} "
                        "bands) differ; a stack needs one grid: resample them onto one grid first"
                    )
            if src.transform.b != 0 or src.transform.d != 0:
                raise ReaderError(
                    f"{self.name}: {Path(paths[0]).name!r} has a rotated transform "
                    f"{tuple(src.transform)[:6]!r}; warp it north-up (gdalwarp) before ingest"
                )
            names = _band_names(src, params, self.name)
            stacked = len(paths) > 1 or params.dates is not None
            shape: tuple[int, ...] = (
                (len(paths), src.height, src.width) if stacked else (src.height, src.width)
            )
            bh, bw = src.block_shapes[0]
            chunks = {"y": _tile_chunk(bh, src.height), "x": _tile_chunk(bw, src.width)}
            if params.chunks:
                chunks.update(params.chunks)
            dims = ("time", "y", "x") if stacked else ("y", "x")
            ychunks = {"time": 1, **chunks}
            yc, xc = grid.centres()
            variables = {}
            for i, band in enumerate(names, start=1):
                raw_dtype = np.dtype(src.dtypes[i - 1])
                nodata = params.nodata if params.nodata is not None else src.nodatavals[i - 1]
                file_scale = float(src.scales[i - 1] if src.scales else 1.0)
                file_offset = float(src.offsets[i - 1] if src.offsets else 0.0)
                scale = _per_band(params.scale, band, file_scale)
                offset = _per_band(params.offset, band, file_offset)
                scaled = params.apply_scale and (scale != 1.0 or offset != 0.0)
                has_mask = nodata is not None or any(
                    f & rasterio.enums.MaskFlags.per_dataset or f & rasterio.enums.MaskFlags.alpha
                    for f in src.mask_flag_enums[i - 1]
                )
                mask = params.mask_nodata and has_mask
                if mask or scaled:
                    dtype = np.dtype(params.dtype)
                    if raw_dtype == np.float64:
                        dtype = np.dtype(np.float64)
                else:
                    dtype = raw_dtype
                win = _Window(paths, i, shape, dtype, nodata, mask, scale, offset, scaled)
                arr = da.from_array(
                    win,
                    chunks=tuple(ychunks[d] for d in dims),
                    meta=np.empty((0,) * len(dims), dtype),
                    lock=False,
                    asarray=False,
                    name=f"forestry-raster-{band}-{id(win)}",
                )
                units = (src.units[i - 1] if src.units else None) or ""
                attrs: dict[str, Any] = {
                    **grid.attrs(),
                    "grid_mapping": "spatial_ref",
                    "units": units,
                    "band": i,
                    "description": src.descriptions[i - 1] or "",
                    "source_dtype": raw_dtype.name,
                    "source_scale": scale,
                    "source_offset": offset,
                    "scale_applied": bool(scaled),
                    "nodata_masked": bool(mask),
                }
                if nodata is not None and not (isinstance(nodata, float) and np.isnan(nodata)):
                    attrs["source_nodata"] = float(nodata)
                variables[band] = (dims, arr, attrs)
            linear = "metre"
            if grid.crs:
                from pyproj import CRS

                c = CRS.from_user_input(grid.crs)
                linear = "degree" if c.is_geographic else (c.axis_info[0].unit_name or "metre")
            coords: dict[str, Any] = {
                "y": ("y", yc, {"units": linear, "axis": "Y", "long_name": "cell centre y"}),
                "x": ("x", xc, {"units": linear, "axis": "X", "long_name": "cell centre x"}),
                "spatial_ref": ((), np.int32(0), grid.spatial_ref_attrs()),
            }
            if stacked:
                coords["time"] = ("time", np.array(params.dates, dtype="datetime64[ns]"))
            ds = xr.Dataset(
                {k: xr.Variable(d, a, attrs=at) for k, (d, a, at) in variables.items()},
                coords=coords,
                attrs={**grid.attrs(), "source_format": src.driver, "band_names": names},
            )
        finally:
            for s in srcs:
                s.close()
        return ds

    def chunks(self, ds: xr.Dataset, params: Any) -> Mapping[str, int] | None:
        first = next(iter(ds.data_vars.values()))
        out = {str(d): int(c[0]) for d, c in zip(first.dims, first.chunks or (), strict=True)}
        return out

"""``forestry.lidar``: LAS/LAZ/COPC point clouds via laspy (LAZ through lazrs).

The points are streamed in chunks of ``chunk_points`` (laspy's ``chunk_iterator``:
memory holds one chunk, never the file) and binned to a north-up raster grid:

* **Grid.** Square cells of side ``cell`` (the file's horizontal units) whose
  top-left corner is ``origin = [left, top]``; by default the header's bounding box
  rounded outwards to multiples of ``cell``: ``left = floor(min_x / cell) * cell``,
  ``top = ceil(max_y / cell) * cell``. The grid has
  ``floor((max_x - left) / cell) + 1`` columns and ``floor((top - min_y) / cell) + 1``
  rows, so every point falls inside it.
* **Floor convention.** A point ``(x, y)`` is in row ``floor((top - y) / cell)`` and
  column ``floor((x - left) / cell)`` (rasterio's ``rowcol(op=floor)``; whitebox's
  LiDAR gridding): a point on a vertical cell edge belongs to the cell east of it, on a
  horizontal edge to the cell south of it.

``open()`` gives the array ``count`` (int32, ``("y", "x")``, points per cell, counted
while streaming), with cell-centre ``y``/``x`` coordinates and the georeferencing of
:mod:`minjiang.plugins.forestry._grid` (``crs``, ``transform``, ``spatial_ref``),
chunked by ``tile`` cells. The points themselves go into the table ``points`` (x, y,
z in the file's units after scale and offset, classification, return number, number
of returns, intensity), one part per grid tile and streamed chunk, named by
:func:`minjiang.storage.tile_part_name`, so that an operator reads only the tiles near
its block and the points can be re-gridded without reading the LAZ again.

The CRS comes from the file's WKT or GeoTIFF-key VLRs (laspy's ``parse_crs``) unless
``crs`` is given; the horizontal unit from the CRS, the vertical unit from a vertical
CRS or the GeoTIFF ``VerticalUnitsGeoKey``, else ``z_units``; nothing is converted.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from minjiang.core import Reader
from minjiang.core.errors import ReaderError
from minjiang.plugins.forestry._grid import Grid
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["POINT_COLUMNS", "LidarParams", "LidarReader", "lidar_grid"]

#: columns of the ``points`` table (Arrow type names)
POINT_COLUMNS: dict[str, str] = {
    "x": "float64",
    "y": "float64",
    "z": "float64",
    "classification": "uint8",
    "return_number": "uint8",
    "number_of_returns": "uint8",
    "intensity": "uint16",
}
# EPSG unit codes of the GeoTIFF VerticalUnitsGeoKey (4099)
_GEOKEY_UNITS = {9001: "metre", 9002: "foot", 9003: "US survey foot"}


class LidarParams(BaseModel):
    """Parameters of ``forestry.lidar``."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    cell: float = Field(
        gt=0, le=1e6, description="Cell side of the grid, in the file's horizontal units."
    )
    origin: tuple[float, float] | None = Field(
        default=None,
        description="Top-left corner [left, top] of the grid (default: the header's bounding "
        "box rounded outwards to multiples of 'cell').",
    )
    tile: int = Field(
        default=256, ge=1, le=65536, description="Cells per side of a tile (chunks, table parts)."
    )
    crs: str | None = Field(
        default=None,
        max_length=100_000,
        description="CRS to use instead of the file's (WKT, 'EPSG:n', PROJ string).",
    )
    z_units: str | None = Field(
        default=None,
        max_length=64,
        description="Unit of z when the file does not say (e.g. 'metre', 'foot').",
    )
    chunk_points: int = Field(
        default=1_000_000, ge=1_000, le=100_000_000, description="Points per streamed chunk."
    )


def lidar_grid(
    mins: Sequence[float], maxs: Sequence[float], cell: float, origin: Sequence[float] | None
) -> tuple[float, float, int, int]:
    """``(left, top, rows, cols)`` of the grid holding the box ``mins``-``maxs``."""
    if origin is None:
        left = math.floor(mins[0] / cell) * cell
        top = math.ceil(maxs[1] / cell) * cell
    else:
        left, top = float(origin[0]), float(origin[1])
    cols = math.floor((maxs[0] - left) / cell) + 1
    rows = math.floor((top - mins[1]) / cell) + 1
    return left, top, rows, cols


def _open(path: Path, name: str) -> Any:
    import laspy

    try:
        return laspy.open(str(path), laz_backend=laspy.LazBackend.Lazrs)
    except Exception as err:  # laspy raises its own and OSError/ValueError alike
        raise ReaderError(
            f"{name}: {path.name!r} is not a LAS/LAZ/COPC file laspy can read with the lazrs "
            f"backend ({type(err).__name__}: {err})"
        ) from None


def _vertical_units(header: Any, crs: Any) -> tuple[str, str]:
    """(unit name, where it came from); ``("", ...)`` when the file does not say."""
    if crs is not None:
        for sub in [crs, *getattr(crs, "sub_crs_list", [])]:
            if sub.is_vertical and sub.axis_info:
                return str(sub.axis_info[0].unit_name), "vertical CRS"
    for vlr in header.vlrs:
        for key in getattr(vlr, "geo_keys", []) or []:
            if key.id == 4099 and key.tiff_tag_location == 0:
                unit = _GEOKEY_UNITS.get(int(key.value_offset))
                if unit:
                    return unit, "VerticalUnitsGeoKey"
    return "", "not in the file (no vertical CRS, no VerticalUnitsGeoKey)"


class LidarReader(Reader):
    """LAS/LAZ/COPC point clouds: a per-cell count grid and a point table by grid tile."""

    name: ClassVar[str] = "forestry.lidar"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = (
        "LAS/LAZ/COPC via laspy + lazrs, streamed: points per cell on a grid with an explicit "
        "origin and floor convention, points table partitioned by grid tile, CRS and units kept"
    )
    extensions: ClassVar[tuple[str, ...]] = (".las", ".laz")
    params: ClassVar[type[BaseModel] | None] = LidarParams
    supports_directories: ClassVar[bool] = False
    supports_multiple: ClassVar[bool] = False

    def _layout(self, files: list[Path], params: LidarParams) -> dict[str, Any]:
        """Header facts and the grid, before any point is read."""
        import numpy as np

        path = files[0]
        with _open(path, self.name) as f:
            h = f.header
            n = int(h.point_count)
            if n == 0:
                raise ReaderError(f"{self.name}: {path.name!r} holds no points")
            mins, maxs = [float(v) for v in h.mins], [float(v) for v in h.maxs]
            if not all(np.isfinite(mins + maxs)) or mins[0] > maxs[0] or mins[1] > maxs[1]:
                raise ReaderError(
                    f"{self.name}: {path.name!r} has an invalid header bounding box; rewrite "
                    "its header (e.g. pdal translate, lasinfo -repair)"
                )
            if params.crs is not None:
                from pyproj import CRS
                from pyproj.exceptions import CRSError

                try:
                    crs = CRS.from_user_input(params.crs)
                except CRSError as err:
                    raise ReaderError(
                        f"{self.name}: 'crs' is not a CRS pyproj reads: {err}"
                    ) from None
            else:
                try:
                    crs = h.parse_crs()
                except Exception as err:
                    raise ReaderError(
                        f"{self.name}: the CRS VLRs of {path.name!r} cannot be parsed ({err}); "
                        "give 'crs'"
                    ) from None
            left, top, rows, cols = lidar_grid(mins, maxs, params.cell, params.origin)
            if left > mins[0] or top < maxs[1]:
                raise ReaderError(
                    f"{self.name}: origin ({left!r}, {top!r}) is not the top-left of the points "
                    f"(x from {mins[0]!r}, y up to {maxs[1]!r}); give an origin left of and "
                    "above every point"
                )
            if rows * cols > 2**31:
                raise ReaderError(
                    f"{self.name}: the grid would be {rows} x {cols} cells of {params.cell:g}; "
                    "give a larger 'cell'"
                )
            horizontal = ""
            if crs is not None:
                if crs.is_geographic:
                    horizontal = "degree"
                elif crs.axis_info:
                    horizontal = str(crs.axis_info[0].unit_name)
            vertical, vsource = _vertical_units(h, crs)
            if not vertical and params.z_units:
                vertical, vsource = params.z_units, "z_units parameter"
            return {
                "path": path,
                "points": n,
                "mins": mins,
                "maxs": maxs,
                "scales": [float(v) for v in h.scales],
                "offsets": [float(v) for v in h.offsets],
                "version": str(h.version),
                "point_format": int(h.point_format.id),
                "compressed": bool(f.header.are_points_compressed),
                "crs": crs,
                "horizontal": horizontal,
                "vertical": vertical,
                "vertical_source": vsource,
                "grid": (left, top, rows, cols),
            }

    def _chunks(self, layout: Mapping[str, Any], params: LidarParams) -> Iterator[dict[str, Any]]:
        """The points chunk by chunk, with their cell (row, col); refuses points off the grid."""
        import numpy as np

        left, top, rows, cols = layout["grid"]
        cell = params.cell
        with _open(layout["path"], self.name) as f:
            for pts in f.chunk_iterator(params.chunk_points):
                x = np.asarray(pts.x, dtype=np.float64)
                y = np.asarray(pts.y, dtype=np.float64)
                r = np.floor((top - y) / cell).astype(np.int64)
                c = np.floor((x - left) / cell).astype(np.int64)
                if r.size and (r.min() < 0 or c.min() < 0 or r.max() >= rows or c.max() >= cols):
                    raise ReaderError(
                        f"{self.name}: {layout['path'].name!r} has points outside the header's "
                        "bounding box; fix the header (lasinfo -repair) before ingest"
                    )
                yield {
                    "row": r,
                    "col": c,
                    "x": x,
                    "y": y,
                    "z": np.asarray(pts.z, dtype=np.float64),
                    "classification": np.asarray(pts.classification, dtype=np.uint8),
                    "return_number": np.asarray(pts.return_number, dtype=np.uint8),
                    "number_of_returns": np.asarray(pts.number_of_returns, dtype=np.uint8),
                    "intensity": np.asarray(pts.intensity, dtype=np.uint16),
                }

    def open(self, files: list[Path], params: Any) -> xr.Dataset:
        import numpy as np
        import xarray as xr
        from dask import array as da

        layout = self._layout(files, params)
        left, top, rows, cols = layout["grid"]
        cell = params.cell
        count = np.zeros(rows * cols, np.int64)
        classes = np.zeros(256, np.int64)
        for ch in self._chunks(layout, params):
            count += np.bincount(ch["row"] * cols + ch["col"], minlength=rows * cols)
            classes += np.bincount(ch["classification"], minlength=256)
        crs = layout["crs"]
        wkt = "" if crs is None else str(crs.to_wkt())
        grid = Grid(wkt, (cell, 0.0, left, 0.0, -cell, top), (rows, cols))
        yc, xc = grid.centres()
        t = min(params.tile, rows), min(params.tile, cols)
        arr = da.from_array(count.reshape(rows, cols).astype(np.int32), chunks=t)
        units = layout["horizontal"]
        info = {
            "source_format": f"LAS {layout['version']} point format {layout['point_format']}"
            + (" (LAZ)" if layout["compressed"] else ""),
            "point_count": layout["points"],
            "las_scale": layout["scales"],
            "las_offset": layout["offsets"],
            "horizontal_units": units,
            "vertical_units": layout["vertical"],
            "vertical_units_source": layout["vertical_source"],
            "cell": cell,
            "origin": [left, top],
            "tile": params.tile,
            "binning": "row = floor((top - y) / cell), col = floor((x - left) / cell)",
            "class_counts": {str(k): int(v) for k, v in enumerate(classes) if v},
        }
        attrs = {
            **grid.attrs(),
            "grid_mapping": "spatial_ref",
            "units": "1",
            "long_name": "LiDAR points per cell",
            **{
                k: info[k]
                for k in ("cell", "binning", "horizontal_units", "vertical_units", "point_count")
            },
        }
        coord_units = units or "unknown"
        ds = xr.Dataset(
            {"count": (("y", "x"), arr, attrs)},
            coords={
                "y": ("y", yc, {"units": coord_units, "axis": "Y", "long_name": "cell centre y"}),
                "x": ("x", xc, {"units": coord_units, "axis": "X", "long_name": "cell centre x"}),
                "spatial_ref": ((), np.int32(0), grid.spatial_ref_attrs()),
            },
            attrs={**grid.attrs(), **info},
        )
        return ds

    def chunks(self, ds: xr.Dataset, params: Any) -> Mapping[str, int] | None:
        return {"y": min(params.tile, ds.sizes["y"]), "x": min(params.tile, ds.sizes["x"])}

    def table_columns(self, ds: xr.Dataset, params: Any) -> Mapping[str, Mapping[str, str]]:
        return {"points": POINT_COLUMNS}

    def tables(
        self, files: list[Path], params: Any, ds: xr.Dataset
    ) -> Iterator[tuple[str, str, Any]]:
        """The points, one part per grid tile and streamed chunk (``tile_part_name``)."""
        import numpy as np
        from minjiang.storage import tile_part_name

        layout = self._layout(files, params)
        _, _, rows, cols = layout["grid"]
        t = params.tile
        ntx = -(-cols // t)
        seqs: dict[int, int] = {}
        for ch in self._chunks(layout, params):
            key = (ch["row"] // t) * ntx + ch["col"] // t
            order = np.argsort(key, kind="stable")
            keys = key[order]
            starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
            ends = np.r_[starts[1:], keys.size]
            for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
                k = int(keys[s])
                ty, tx = divmod(k, ntx)
                tile = {
                    "y": (ty * t, min(ty * t + t, rows)),
                    "x": (tx * t, min(tx * t + t, cols)),
                }
                seq = seqs.get(k, 0)
                seqs[k] = seq + 1
                sel = order[s:e]
                yield "points", tile_part_name(tile, seq), {c: ch[c][sel] for c in POINT_COLUMNS}

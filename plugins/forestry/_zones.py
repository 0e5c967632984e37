"""``forestry.zones``: vector zones (GeoJSON, Shapefile, GeoPackage) burnt onto a raster grid.

Sources: the vector file (a Shapefile with its companion files) and, last, a GeoTIFF
whose grid (CRS, transform, shape) the zones are rasterised onto. The result is one
array ``zones`` (int32, dims ``("y", "x")``, 0 outside every zone) carrying the grid's
``crs``/``transform`` attributes, so that ``forestry.zonal_stats`` accepts it with the
raster it describes.

* Zone ids: the ``id_field`` property (positive integers), else 1, 2, ... in feature
  order. Where zones overlap, the later feature wins (rasterio's burn order).
* Pixel rule: ``centre`` burns a cell when its centre lies inside the polygon;
  ``all_touched`` burns every cell the polygon touches (GDAL's ``ALL_TOUCHED``).
* CRS: geometries are transformed into the raster's CRS with pyproj in
  longitude/latitude (x, y) order (``always_xy``), so GeoJSON's CRS84 coordinates are
  never read as lat/lon; a vector file with no CRS is refused.
* Attributes: the scalar properties of every feature are kept in the array attribute
  ``zone_attributes`` (column name -> values, with ``zone`` the ids), and joined to the
  zonal statistics table.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from minjiang.core import Reader
from minjiang.core.errors import ReaderError
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["ZonesParams", "ZonesReader"]

_VECTOR = (".geojson", ".json", ".shp", ".gpkg")
_SHP_COMPANIONS = (".shx", ".dbf", ".prj", ".cpg")
MAX_ZONES = 1_000_000


class ZonesParams(BaseModel):
    """Parameters of ``forestry.zones``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: Literal["centre", "all_touched"] = Field(
        default="centre", description="Cells whose centre is inside, or every cell touched."
    )
    id_field: str | None = Field(
        default=None, description="Property holding positive integer zone ids (default 1..n)."
    )
    layer: str | None = Field(default=None, description="Layer of a multi-layer GeoPackage.")
    chunks: dict[str, int] | None = Field(default=None, description="Chunk length per dim.")


class ZonesReader(Reader):
    """Vector zones rasterised onto the grid of a GeoTIFF."""

    name: ClassVar[str] = "forestry.zones"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = (
        "GeoJSON/Shapefile/GeoPackage zones rasterised onto a GeoTIFF's grid (centre or all_touched)"
    )
    extensions: ClassVar[tuple[str, ...]] = ()
    params: ClassVar[type[BaseModel] | None] = ZonesParams
    supports_directories: ClassVar[bool] = False
    supports_multiple: ClassVar[bool] = True

    def source_files(self, paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
        if isinstance(paths, str | os.PathLike) or len(paths) != 2:
            raise ReaderError(
                f"{self.name}: give two sources, the vector file and the GeoTIFF whose grid "
                "the zones are burnt onto"
            )
        vector, grid = super().source_files(paths)
        if vector.suffix.lower() not in _VECTOR:
            raise ReaderError(
                f"{self.name}: {vector.name!r} is not a vector file ({', '.join(_VECTOR)})"
            )
        files = [vector]
        if vector.suffix.lower() == ".shp":
            files += [p for ext in _SHP_COMPANIONS for p in [vector.with_suffix(ext)] if p.exists()]
        return [*files, grid]

    def open(self, files: list[Path], params: Any) -> xr.Dataset:
        import fiona  # type: ignore[import-untyped]
        import numpy as np
        import rasterio
        import shapely  # type: ignore[import-untyped]
        import xarray as xr
        from dask import array as da
        from minjiang.plugins.forestry._raster import _grid, _tile_chunk
        from pyproj import CRS, Transformer
        from shapely.geometry import mapping, shape  # type: ignore[import-untyped]

        params = params or ZonesParams()
        vector, grid_file = files[0], files[-1]
        with rasterio.open(grid_file) as src:
            grid = _grid(src)
            block = src.block_shapes[0]
        if not grid.crs:
            raise ReaderError(f"{self.name}: the grid raster {grid_file.name!r} has no CRS")
        try:
            with fiona.open(vector, layer=params.layer) as coll:
                vcrs = coll.crs_wkt or (coll.crs.to_wkt() if coll.crs else "")
                feats = [(f.geometry, dict(f.properties or {})) for f in coll]
        except (fiona.errors.FionaError, OSError, ValueError) as err:
            raise ReaderError(f"{self.name}: {vector.name!r} cannot be read ({err})") from None
        if not vcrs:
            raise ReaderError(
                f"{self.name}: {vector.name!r} declares no CRS; write one into the file"
            )
        if not feats:
            raise ReaderError(f"{self.name}: {vector.name!r} holds no feature")
        if len(feats) > MAX_ZONES:
            raise ReaderError(
                f"{self.name}: {len(feats)} zones, over the {MAX_ZONES} limit; split the file"
            )
        to_grid = Transformer.from_crs(
            CRS.from_user_input(vcrs), CRS.from_user_input(grid.crs), always_xy=True
        )
        same = CRS.from_user_input(vcrs) == CRS.from_user_input(grid.crs)
        ids: list[int] = []
        shapes = []
        for k, (geom, props) in enumerate(feats, start=1):
            if params.id_field is not None:
                raw = props.get(params.id_field)
                if not isinstance(raw, int | float) or int(raw) != raw or int(raw) < 1:
                    raise ReaderError(
                        f"{self.name}: feature {k} has {params.id_field}={raw!r}; zone ids must be "
                        "positive integers"
                    )
                zid = int(raw)
            else:
                zid = k
            g = shape(geom)
            if not same:
                g = shapely.transform(g, to_grid.transform, interleaved=False)
            ids.append(zid)
            shapes.append((mapping(g), zid))
        if len(set(ids)) != len(ids):
            raise ReaderError(f"{self.name}: zone ids in {params.id_field!r} are not unique")
        columns: dict[str, list[Any]] = {"zone": ids}
        keys = [k for k in feats[0][1] if k != "zone"]
        for key in keys:
            vals = [p.get(key) for _, p in feats]
            if all(v is None or isinstance(v, int | float | str | bool) for v in vals):
                columns[key] = vals
        rows, cols = grid.shape
        chunks = {"y": _tile_chunk(block[0], rows), "x": _tile_chunk(block[1], cols)}
        if params.chunks:
            chunks.update(params.chunks)
        all_touched = params.rule == "all_touched"
        transform = rasterio.Affine(*grid.transform)

        def burn(block_info: Any = None) -> Any:
            from rasterio.features import rasterize
            from rasterio.windows import Window
            from rasterio.windows import transform as wtransform

            (r0, r1), (c0, c1) = block_info[None]["array-location"]
            wt = wtransform(Window(c0, r0, c1 - c0, r1 - r0), transform)
            return rasterize(
                shapes,
                out_shape=(r1 - r0, c1 - c0),
                transform=wt,
                fill=0,
                all_touched=all_touched,
                dtype="int32",
            )

        arr = da.map_blocks(
            burn,
            chunks=(
                tuple(_split(rows, chunks["y"])),
                tuple(_split(cols, chunks["x"])),
            ),
            dtype=np.int32,
            meta=np.empty((0, 0), np.int32),
        )
        yc, xc = grid.centres()
        attrs = {
            **grid.attrs(),
            "grid_mapping": "spatial_ref",
            "rule": params.rule,
            "zone_attributes": columns,
            "long_name": "zone id (0: no zone)",
        }
        return xr.Dataset(
            {"zones": (("y", "x"), arr, attrs)},
            coords={
                "y": ("y", yc),
                "x": ("x", xc),
                "spatial_ref": ((), np.int32(0), {"crs_wkt": grid.crs, "spatial_ref": grid.crs}),
            },
            attrs={**grid.attrs(), "source_format": "vector zones"},
        )

    def chunks(self, ds: xr.Dataset, params: Any) -> dict[str, int] | None:
        z = ds["zones"]
        return {str(d): int(c[0]) for d, c in zip(z.dims, z.chunks or (), strict=True)}


def _split(n: int, c: int) -> list[int]:
    return [min(c, n - i) for i in range(0, n, c)]

"""minjiang.plugins.forestry: remote sensing, LiDAR and terrain for forest monitoring.

Readers: ``forestry.raster`` (GeoTIFF/COG and multi-date stacks via rasterio, CRS,
transform, nodata mask and scale/offset carried into the dataset, tile-aligned chunks);
``forestry.zones`` burns vector zones onto a raster's grid; ``forestry.lidar`` streams
LAS/LAZ/COPC points (laspy + lazrs) into a per-cell count grid with an explicit origin
and floor convention and a points table partitioned by grid tile, CRS and units kept.
Operators: ``forestry.spectral_index``, ``forestry.dnbr``, ``forestry.terrain``,
``forestry.zonal_stats``, ``forestry.tree_tops``, ``forestry.canopy_height`` (DSM, TIN
DTM, CHM, pit-free CHM, tile by tile with a buffer of neighbouring points),
``forestry.resample`` (a raster onto another grid of its CRS: nearest, bilinear,
average). Pipelines
``forestry.burn_severity`` and ``forestry.canopy_inventory``; reports (PNG)
``forestry.severity_quicklook``, ``forestry.index_quicklook``, ``forestry.chm_quicklook``.
Operators given rasters on different grids refuse them, naming both grids and
``forestry.resample``. See ``docs/plugins/forestry.md``.

This module only declares hook implementations; the readers, the operators and their
kernels are imported when a runtime asks for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from minjiang.core.hookspecs import hookimpl

if TYPE_CHECKING:
    from minjiang.core import Operator, Pipeline, Reader, Report

if __name__ != "minjiang.plugins.forestry":  # importable only as minjiang.plugins.forestry
    raise ImportError(
        f"'{__name__}' is minjiang.plugins.forestry: install minjiang and import it by that name"
    )

DOMAIN = "forestry"
#: the minjiang plugin API versions this plugin supports (checked before it loads)
MINJIANG_API = ">=1.0,<2"
__all__ = [
    "DOMAIN",
    "minjiang_catalog_metadata",
    "minjiang_register_operators",
    "minjiang_register_pipelines",
    "minjiang_register_readers",
    "minjiang_register_reports",
]


@hookimpl
def minjiang_register_operators() -> list[Operator]:
    """The forestry operators."""
    from minjiang.plugins.forestry._operators import OPERATORS

    return list(OPERATORS)


@hookimpl
def minjiang_register_readers() -> list[Reader]:
    """The forestry readers (``forestry.raster``, ``forestry.zones``, ``forestry.lidar``)."""
    from minjiang.plugins.forestry._lidar import LidarReader
    from minjiang.plugins.forestry._raster import RasterReader
    from minjiang.plugins.forestry._zones import ZonesReader

    return [RasterReader(), ZonesReader(), LidarReader()]


@hookimpl
def minjiang_register_pipelines() -> list[Pipeline]:
    """The ``forestry.burn_severity`` and ``forestry.canopy_inventory`` pipelines."""
    from minjiang.plugins.forestry._pipelines import burn_severity, canopy_inventory

    return [burn_severity(), canopy_inventory()]


@hookimpl
def minjiang_register_reports() -> list[Report]:
    """The forestry quick-look reports (PNG): severity, spectral index, CHM."""
    from minjiang.plugins.forestry._report import reports

    return reports()


@hookimpl
def minjiang_catalog_metadata(record: Any) -> dict[str, Any] | None:
    """Tag records of this domain with the plugin that understands them."""
    if getattr(record, "domain", None) != DOMAIN:
        return None
    return {"plugin": f"minjiang.plugins.{DOMAIN}", "domain": DOMAIN}

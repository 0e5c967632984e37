"""minjiang.plugins.forestry: Forestry: canopy height models, LiDAR point clouds, stand inventories.

The plugin is registered through the ``minjiang`` entry-point group like any
third-party plugin. Its data types (canopy height, LAS/LAZ point clouds, multispectral rasters) are
documented in the domain's catalog metadata; operators of this domain build on the
generic kernels in ``minjiang.kernels`` (3-D filters, labelling, statistics).
"""

from __future__ import annotations

from typing import Any

from minjiang.core.hookspecs import hookimpl

DOMAIN = "forestry"
__all__ = ["DOMAIN", "minjiang_catalog_metadata"]


@hookimpl
def minjiang_catalog_metadata(record: Any) -> dict[str, Any] | None:
    """Tag records of this domain with the plugin that understands them."""
    if getattr(record, "domain", None) != DOMAIN:
        return None
    return {"plugin": f"minjiang.plugins.{DOMAIN}", "domain": DOMAIN}

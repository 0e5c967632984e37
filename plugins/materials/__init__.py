"""minjiang.plugins.materials: Materials science: micro-CT volumes, diffraction patterns, grain statistics.

The plugin is registered through the ``minjiang`` entry-point group like any
third-party plugin. Its data types (micro-CT volumes, XYZ atomic structures, EBSD maps) are
documented in the domain's catalog metadata; operators of this domain build on the
generic kernels in ``minjiang.kernels`` (3-D filters, labelling, statistics).
"""

from __future__ import annotations

from typing import Any

from minjiang.core.hookspecs import hookimpl

DOMAIN = "materials"
__all__ = ["DOMAIN", "minjiang_catalog_metadata"]


@hookimpl
def minjiang_catalog_metadata(record: Any) -> dict[str, Any] | None:
    """Tag records of this domain with the plugin that understands them."""
    if getattr(record, "domain", None) != DOMAIN:
        return None
    return {"plugin": f"minjiang.plugins.{DOMAIN}", "domain": DOMAIN}

"""minjiang.plugins.ocean: physical oceanography operators.

Registers, through the same hooks as any third-party plugin:

* reader ``ocean.netcdf`` (NetCDF-3/4, CF decoding, multi-file, curvilinear grids);
* operators ``ocean.climatology``, ``ocean.anomaly``, ``ocean.marine_heatwaves``,
  ``ocean.regional_mean``, ``ocean.running_mean``, ``ocean.eof`` (with its two stages
  ``ocean.eof_gram`` and ``ocean.eof_project``);
* pipeline ``ocean.mhw_report``, with its report ``ocean.mhw_quicklook``.

This module stays light: operators, readers and kernels are imported when a hook is
called or a task runs (see docs/plugins/ocean.md).
"""

from __future__ import annotations

if __name__ != "minjiang.plugins.ocean":  # importable only as minjiang.plugins.ocean
    raise ImportError(
        f"'{__name__}' is minjiang.plugins.ocean: install minjiang and import it by that name"
    )

from typing import Any

from minjiang.core.hookspecs import hookimpl

#: the minjiang plugin API versions this plugin supports (checked before it loads)
MINJIANG_API = ">=1.0,<2"
__all__ = [
    "minjiang_register_operators",
    "minjiang_register_pipelines",
    "minjiang_register_readers",
    "minjiang_register_reports",
]


@hookimpl
def minjiang_register_operators() -> list[Any]:
    """The ocean operators."""
    from minjiang.plugins.ocean._operators import operators

    return operators()


@hookimpl
def minjiang_register_readers() -> list[Any]:
    """The ``ocean.netcdf`` reader."""
    from minjiang.plugins.ocean._reader import NetCDFReader

    return [NetCDFReader()]


@hookimpl
def minjiang_register_pipelines() -> list[Any]:
    """The ``ocean.mhw_report`` pipeline."""
    from minjiang.plugins.ocean._pipelines import pipelines

    return pipelines()


@hookimpl
def minjiang_register_reports() -> list[Any]:
    """The ``ocean.mhw_quicklook`` report of ``ocean.mhw_report``."""
    from minjiang.plugins.ocean._report import reports

    return reports()

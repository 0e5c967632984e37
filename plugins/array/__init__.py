"""minjiang.plugins.array: the generic ``array`` operators and readers.

They work on any gridded data, whatever the discipline, and register through the
same hooks as every other plugin:

============================ =========== ==============================================
operator                     pattern     what
============================ =========== ==============================================
``array.band_math``          map         an arithmetic expression over inputs ``a``…``h``
``array.gaussian``           map + halo  n-D Gaussian filter (SciPy's weights and modes)
``array.reduce``             reduce      mean/std/var/min/max/count/sum over dims (NaN-skipping)
``array.quantile``           full_axis   NaN-skipping quantiles along one dim
``array.doy_climatology``    full_axis   mean per day of year (1..366) along ``time``
``array.doy_anomaly``        map         x − climatology(day of year)
``array.deseason``           full_axis   x − its own day-of-year climatology, one pass
``array.label_stats``        aggregate   count/sum/mean/std/min/max per label → table
``array.resample_time``      full_axis   months/seasons/years of the series' calendar,
                                         by a declared mean/sum/min/max/count
``array.regrid``             composite   onto another lat/lon, projected or curvilinear
                                         grid (nearest/bilinear/conservative); weights
                                         stored once per grid pair and reused
============================ =========== ==============================================

Readers: ``array.zarr`` (any Zarr group with dimension names) and ``array.netcdf``
(NetCDF4/HDF5 or NetCDF3 through xarray). The module stays light: the operators are
imported when a hook is called.
"""

from __future__ import annotations

if __name__ != "minjiang.plugins.array":  # importable only as minjiang.plugins.array
    raise ImportError(
        f"'{__name__}' is minjiang.plugins.array: install minjiang and import it by that name"
    )

from typing import Any

from minjiang.core.hookspecs import hookimpl

#: the minjiang plugin API versions this plugin supports (checked before it loads)
MINJIANG_API = ">=1.0,<2"
__all__ = ["minjiang_register_operators", "minjiang_register_readers"]


@hookimpl
def minjiang_register_operators() -> list[Any]:
    """The generic ``array`` operators."""
    from minjiang.plugins.array._operators import OPERATORS
    from minjiang.plugins.array._regrid import REGRID
    from minjiang.plugins.array._time import RESAMPLE_TIME

    return [*OPERATORS, RESAMPLE_TIME, REGRID]


@hookimpl
def minjiang_register_readers() -> list[Any]:
    """The ``array.zarr`` and ``array.netcdf`` readers."""
    from minjiang.plugins.array._operators import NetCDFReader, ZarrReader

    return [ZarrReader(), NetCDFReader()]

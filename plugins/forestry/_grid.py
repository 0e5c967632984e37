"""Raster grids: CRS, affine transform and shape, as carried in array attributes.

Every raster the forestry plugin writes carries, in each array's attributes,

``crs``        the coordinate reference system as WKT2 (``""`` when the source has none);
``transform``  the affine transform ``[a, b, c, d, e, f]`` (rasterio's order:
               ``x = a*col + b*row + c``, ``y = d*col + e*row + f``, of cell corners);

and the dataset has ``y``/``x`` coordinates of the cell centres, so that rioxarray
reads the CRS (``.rio.crs``) and the transform (``.rio.transform()``) back.

Two rasters are on the same grid when their CRS are equal, their transforms agree to
1e-9 of a cell and their ``(y, x)`` shapes are equal. Operators with several raster
inputs refuse inputs on different grids, naming both: combining them needs an
explicit resampling step (``forestry.resample``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from minjiang.core.errors import ContractError

__all__ = ["Grid", "check_same_grid", "geographic_spacing", "grid_of"]

# WGS84 / GRS80 share a and (to 1e-10) e^2; the metres per degree below use these.
_A = 6378137.0
_E2 = 0.00669437999014


@dataclasses.dataclass(frozen=True)
class Grid:
    """A raster grid: CRS (WKT), affine transform (rasterio order) and (rows, cols)."""

    crs: str
    transform: tuple[float, float, float, float, float, float]
    shape: tuple[int, int]

    @property
    def res(self) -> tuple[float, float]:
        """Cell size along x and y (positive, CRS units)."""
        a, b, _, d, e, _ = self.transform
        return math.hypot(a, d), math.hypot(b, e)

    def crs_name(self) -> str:
        if not self.crs:
            return "no CRS"
        try:
            from pyproj import CRS

            c = CRS.from_user_input(self.crs)
            epsg = c.to_epsg()
            return f"EPSG:{epsg}" if epsg else c.name
        except Exception:  # an unparsable CRS is still named, by its first characters
            return self.crs[:60]

    def describe(self) -> str:
        rx, ry = self.res
        _, _, c, _, _, f = self.transform
        return (
            f"{self.shape[0]} x {self.shape[1]} cells of {rx:g} x {ry:g} in {self.crs_name()}, "
            f"corner ({c:.10g}, {f:.10g})"
        )

    def same_crs(self, other: Grid) -> bool:
        if self.crs == other.crs:
            return True
        if not self.crs or not other.crs:
            return False
        from pyproj import CRS

        return bool(CRS.from_user_input(self.crs) == CRS.from_user_input(other.crs))

    def same(self, other: Grid) -> bool:
        if self.shape != other.shape:
            return False
        tol = 1e-9 * max(min(self.res), 1e-300)
        if any(abs(p - q) > tol for p, q in zip(self.transform, other.transform, strict=True)):
            return False
        return self.same_crs(other)

    def is_geographic(self) -> bool:
        if not self.crs:
            return False
        from pyproj import CRS

        return bool(CRS.from_user_input(self.crs).is_geographic)

    def centres(self) -> tuple[Any, Any]:
        """Cell-centre coordinates ``(y, x)`` of a north-up (unrotated) grid."""
        import numpy as np

        a, _, c, _, e, f = self.transform
        rows, cols = self.shape
        return f + e * (np.arange(rows) + 0.5), c + a * (np.arange(cols) + 0.5)

    def attrs(self) -> dict[str, Any]:
        return {"crs": self.crs, "transform": [float(v) for v in self.transform]}

    def spatial_ref_attrs(self) -> dict[str, Any]:
        """Attributes of the scalar ``spatial_ref`` coordinate (CF ``crs_wkt``, GDAL's
        ``GeoTransform`` in its ``c a b f d e`` order)."""
        a, b, c, d, e, f = self.transform
        return {
            "crs_wkt": self.crs,
            "spatial_ref": self.crs,
            "GeoTransform": " ".join(repr(float(v)) for v in (c, a, b, f, d, e)),
        }


def grid_of(info: Any) -> Grid | None:
    """The grid of an array (``ArrayInfo`` or anything with ``attrs`` and ``shape``).

    ``None`` when the array carries no ``transform`` attribute (not a georeferenced
    raster).
    """
    attrs = getattr(info, "attrs", {}) or {}
    t = attrs.get("transform")
    if t is None or len(info.shape) < 2:
        return None
    return Grid(
        str(attrs.get("crs", "") or ""),
        tuple(float(v) for v in t),  # type: ignore[arg-type]
        (int(info.shape[-2]), int(info.shape[-1])),
    )


def check_same_grid(operator: str, infos: Mapping[str, Any]) -> Grid | None:
    """Refuse inputs on different grids, naming both; return the common grid.

    Raises
    ------
    ContractError
        When two inputs differ in CRS, transform or ``(y, x)`` shape, or when one is
        georeferenced and another is not.
    """
    first: tuple[str, Grid | None] | None = None
    for name, info in infos.items():
        g = grid_of(info)
        if first is None:
            first = (name, g)
            continue
        fname, fg = first
        if fg is None and g is None:
            if tuple(info.shape[-2:]) != tuple(infos[fname].shape[-2:]):
                raise ContractError(
                    f"{operator}: inputs {fname!r} (shape {tuple(infos[fname].shape)!r}) and "
                    f"{name!r} (shape {tuple(info.shape)!r}) are on different grids; resample "
                    "one onto the other's grid first (forestry.resample with a 'like' input)"
                )
            continue
        if fg is None or g is None:
            plain, geo = (fname, name) if fg is None else (name, fname)
            raise ContractError(
                f"{operator}: input {geo!r} is georeferenced but {plain!r} carries no "
                "'transform'/'crs' attributes; ingest both with forestry.raster"
            )
        if not fg.same(g):
            what = (
                "CRS" if not fg.same_crs(g) else ("shape" if fg.shape != g.shape else "transform")
            )
            raise ContractError(
                f"{operator}: inputs {fname!r} and {name!r} are on different grids ({what} "
                f"differs): {fname!r} is {fg.describe()}; {name!r} is {g.describe()}. "
                "Resample one onto the other's grid first: forestry.resample with the other as "
                "'like' (within one CRS; across CRS, reproject with gdalwarp and ingest it)"
            )
    return None if first is None else first[1]


def geographic_spacing(lat_deg: Sequence[float] | Any, dlon: float, dlat: float) -> tuple[Any, Any]:
    """Cell size in metres along x and y for each latitude (WGS84 ellipsoid).

    Metres per degree of longitude ``pi/180 * a cos(phi) / sqrt(1 - e^2 sin^2 phi)``
    and of latitude ``pi/180 * a (1 - e^2) / (1 - e^2 sin^2 phi)^(3/2)``.
    """
    import numpy as np

    phi = np.deg2rad(np.asarray(lat_deg, dtype=np.float64))
    w = 1.0 - _E2 * np.sin(phi) ** 2
    per_lon = np.pi / 180.0 * _A * np.cos(phi) / np.sqrt(w)
    per_lat = np.pi / 180.0 * _A * (1.0 - _E2) / w**1.5
    return abs(dlon) * per_lon, abs(dlat) * per_lat

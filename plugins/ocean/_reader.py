"""``ocean.netcdf``: NetCDF-3/4 (and HDF5-based NetCDF-4) files into one dataset.

What it does, in order:

1. opens every file with the first engine that can read it (h5netcdf, then netCDF4,
   then SciPy's NetCDF-3 reader: real archives hold files that only one of them
   opens) and CF-decodes it: ``scale_factor``/``add_offset`` applied,
   ``_FillValue``/``missing_value`` turned into NaN, times decoded with their
   calendar (``datetime64`` for the standard calendars, cftime objects otherwise),
   ``units`` kept;
2. normalises names: the time dimension becomes ``time`` (its coordinate is the
   variable that carries CF time units, e.g. NEMO's ``time_centered`` for the
   ``time_counter`` dimension); a regular grid gets dims ``lat``/``lon`` with 1-D
   coordinates; a curvilinear grid keeps dims ``y``/``x`` and carries its 2-D
   ``lat``/``lon`` and the cell area (m², from the cell-corner bounds) as arrays
   ``lat``, ``lon`` and ``cell_area``, because operators read them block by block;
3. concatenates the files along time (sorted, overlaps refused);
4. proposes a chunking (:meth:`NetCDFReader.chunks`): *pencils* (the whole time
   axis, small spatial tiles) for multi-year daily data, which per-pixel analyses
   (climatology, heatwaves) read without a rechunk, or *slabs* (whole maps, a few
   time steps) for spatial analyses (regional means, EOFs).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from minjiang.core import Reader
from minjiang.core.errors import ReaderError
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["ENGINES", "NetCDFParams", "NetCDFReader", "cell_area_from_bounds"]

#: Engines tried in order.
ENGINES = ("h5netcdf", "netcdf4", "scipy")
_EARTH_RADIUS = 6_371_000.0
_LAT_NAMES = ("lat", "latitude", "nav_lat", "y_lat", "lat_rho", "yt_ocean", "yh")
_LON_NAMES = ("lon", "longitude", "nav_lon", "x_lon", "lon_rho", "xt_ocean", "xh")


class NetCDFParams(BaseModel):
    """Parameters of ``ocean.netcdf``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    variables: list[str] | dict[str, str] | None = Field(
        default=None,
        description="Data variables to keep (default: every numeric variable on the time axis); "
        "a mapping renames them, e.g. {'tos': 'sst'}.",
    )
    isel: dict[str, int] = Field(
        default_factory=dict, description="Pick one index along extra dims, e.g. {'depth': 0}."
    )
    chunking: Literal["auto", "pencils", "slabs"] = Field(
        default="auto",
        description="'pencils': whole time axis, small tiles (per-pixel analyses); 'slabs': whole "
        "maps, few time steps (spatial analyses); 'auto': pencils for series of a year or more.",
    )
    chunk_mib: float = Field(
        default=8.0, gt=0, le=256, description="Target chunk size (MiB, decoded)."
    )


def _engine_available(engine: str) -> bool:
    import importlib.util

    module = {"h5netcdf": "h5netcdf", "netcdf4": "netCDF4", "scipy": "scipy"}[engine]
    return importlib.util.find_spec(module) is not None


def _open_one(path: Path, reader: str) -> xr.Dataset:
    import xarray as xr

    problems = []
    for engine in ENGINES:
        if not _engine_available(engine):
            continue
        try:
            coder = xr.coders.CFDatetimeCoder(use_cftime=None)
            return xr.open_dataset(
                path,
                engine=engine,
                decode_times=coder,
                mask_and_scale=True,
                chunks={},
                decode_timedelta=False,
            )
        except Exception as err:  # each engine fails in its own way on a foreign file
            problems.append(f"{engine}: {type(err).__name__}")
    raise ReaderError(
        f"{reader}: cannot open {path.name!r} as NetCDF with any of {list(ENGINES)!r} "
        f"({'; '.join(problems) or 'no engine installed'}). Check that it is a complete NetCDF-3 or "
        "NetCDF-4/HDF5 file (`ncdump -h` reads it); re-download it if it is truncated, or convert it "
        "with `nccopy -k nc4` first"
    )


def _is_time_var(var: Any) -> bool:
    import numpy as np

    return var.ndim == 1 and (np.issubdtype(var.dtype, np.datetime64) or var.dtype == object)


def _time_dim(ds: xr.Dataset, path: Path, reader: str) -> tuple[str, str]:
    """(time dimension, time coordinate variable) of one file."""
    candidates = []
    for name, var in ds.variables.items():
        if (
            _is_time_var(var)
            and "bounds" not in str(name).lower()
            and "bnds" not in str(name).lower()
        ):
            candidates.append((str(name), str(var.dims[0])))
    # the dimension coordinate first, then anything with standard_name time
    candidates.sort(
        key=lambda c: (c[0] != c[1], ds[c[0]].attrs.get("standard_name") != "time", c[0])
    )
    if not candidates:
        raise ReaderError(
            f"{reader}: {path.name!r} has no decodable CF time coordinate (a variable with units "
            "'<unit> since <date>'); add one (e.g. with `ncap2`) or fix its units attribute"
        )
    name, dim = candidates[0]
    return dim, name


def _find(
    ds: xr.Dataset, names: tuple[str, ...], units: tuple[str, ...], standard: str
) -> str | None:
    for name, var in ds.variables.items():
        if var.attrs.get("standard_name") == standard:
            return str(name)
    for name, var in ds.variables.items():
        if str(var.attrs.get("units", "")).lower() in units:
            return str(name)
    for n in names:
        if n in ds.variables:
            return n
    return None


def cell_area_from_bounds(lat_b: Any, lon_b: Any, radius: float = _EARTH_RADIUS) -> Any:
    """Area (m²) of cells given their corner latitudes/longitudes (degrees), (..., n_vertices).

    Cells are spherical polygons with great-circle edges, split into triangles from the
    first corner; each triangle's area is its spherical excess (Van Oosterom and
    Strackee 1983: ``tan(E/2) = |a·(b×c)| / (1 + a·b + b·c + c·a)`` for unit vectors).
    """
    import numpy as np

    lat = np.deg2rad(np.asarray(lat_b, dtype=np.float64))
    lon = np.deg2rad(np.asarray(lon_b, dtype=np.float64))
    xyz = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)
    area = np.zeros(lat.shape[:-1])
    a = xyz[..., 0, :]
    for k in range(1, lat.shape[-1] - 1):
        b, c = xyz[..., k, :], xyz[..., k + 1, :]
        num = np.abs(np.einsum("...i,...i", a, np.cross(b, c)))
        den = (
            1.0
            + np.einsum("...i,...i", a, b)
            + np.einsum("...i,...i", b, c)
            + np.einsum("...i,...i", c, a)
        )
        area += 2.0 * np.arctan2(num, den)
    return area * radius**2


class NetCDFReader(Reader):
    """Ingest NetCDF files (one variable or several, one file or many along time)."""

    name: ClassVar[str] = "ocean.netcdf"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = (
        "NetCDF-3/4 and HDF5 NetCDF files, CF-decoded, concatenated along time, regular or curvilinear grids"
    )
    extensions: ClassVar[tuple[str, ...]] = (".nc", ".nc4", ".netcdf", ".cdf", ".h5", ".hdf5")
    params: ClassVar[type[BaseModel] | None] = NetCDFParams
    supports_multiple: ClassVar[bool] = True

    def guess_can_open(self, path: Any) -> bool:
        p = Path(path)
        if super().guess_can_open(p):
            return True
        try:
            with open(p, "rb") as fh:
                head = fh.read(8)
        except OSError:
            return False
        return head[:3] == b"CDF" or head == b"\x89HDF\r\n\x1a\n"

    # ------------------------------------------------------------------ open
    def open(self, files: list[Path], params: Any) -> xr.Dataset:
        """Open, decode, normalise and concatenate ``files`` (see the module docstring)."""
        import numpy as np
        import xarray as xr

        params = params if params is not None else NetCDFParams()
        parts = [self._normalise(_open_one(f, self.name), f, params) for f in files]
        parts.sort(key=lambda p: _first_time(p[0]))
        datasets = [p[0] for p in parts]
        ref, ref_file = datasets[0], parts[0][1]
        for ds, f in parts[1:]:
            if set(ds.data_vars) != set(ref.data_vars):
                raise ReaderError(
                    f"{self.name}: {f.name!r} has variables {sorted(map(str, ds.data_vars))!r} but {ref_file.name!r} has "
                    f"{sorted(map(str, ref.data_vars))!r}; pass params.variables to keep the common ones"
                )
            for dim in ("lat", "lon", "y", "x"):
                if ds.sizes.get(dim) != ref.sizes.get(dim):
                    raise ReaderError(
                        f"{self.name}: {f.name!r} has {dim}={ds.sizes.get(dim)} but {ref_file.name!r} has "
                        f"{dim}={ref.sizes.get(dim)}; files must share one grid (regrid them first)"
                    )
        if len(datasets) == 1:
            out = datasets[0]
        else:
            static = [v for v in ref.data_vars if "time" not in ref[v].dims]
            timed = [d.drop_vars(static) for d in datasets]
            out = xr.concat(
                timed,
                dim="time",
                data_vars="minimal",
                coords="minimal",
                compat="override",
                join="override",
                combine_attrs="override",
            )
            for v in static:
                out[v] = ref[v]
        times = out["time"].values
        if times.size > 1:
            order = np.argsort(times, kind="stable")
            if order is not None and not np.array_equal(order, np.arange(times.size)):
                out = out.isel(time=order)
                times = out["time"].values
            dup = _duplicates(times)
            if dup is not None:
                raise ReaderError(
                    f"{self.name}: time step {str(dup)!r} appears more than once across the files "
                    f"{[f.name for f in files]!r}; the files overlap in time: drop the duplicated files or steps"
                )
        first, last = _first_time(out), _last_time(out)
        out.attrs.update(time_coverage_start=first, time_coverage_end=last)
        for v in out.data_vars:
            if "time" in out[v].dims:
                out[v].attrs.update(time_coverage_start=first, time_coverage_end=last)
        return out

    def _normalise(
        self, ds: xr.Dataset, path: Path, params: NetCDFParams
    ) -> tuple[xr.Dataset, Path]:
        import numpy as np

        tdim, tname = _time_dim(ds, path, self.name)
        time_values = ds[tname]
        if tname != tdim:
            ds = ds.drop_vars([tdim], errors="ignore")
        ds = ds.rename({tdim: "time"}) if tdim != "time" else ds
        ds = ds.assign_coords(time=("time", time_values.values, dict(time_values.attrs)))
        if tname not in ("time",) and tname in ds.variables:
            ds = ds.drop_vars(tname)
        if params.isel:
            missing = [d for d in params.isel if d not in ds.dims]
            if missing:
                raise ReaderError(
                    f"{self.name}: params.isel names dims {missing!r} that {path.name!r} lacks "
                    f"(dims: {sorted(map(str, ds.dims))!r})"
                )
            ds = ds.isel(params.isel)

        lat_name = _find(ds, _LAT_NAMES, ("degrees_north", "degree_north", "degrees_n"), "latitude")
        lon_name = _find(ds, _LON_NAMES, ("degrees_east", "degree_east", "degrees_e"), "longitude")
        # data variables: numeric, on the time axis (or selected by name)
        wanted = params.variables
        rename: dict[str, str] = {}
        if isinstance(wanted, dict):
            rename, keep = dict(wanted), list(wanted)
        elif isinstance(wanted, list):
            keep = list(wanted)
        else:
            keep = [
                str(n)
                for n, v in ds.data_vars.items()
                if "time" in v.dims
                and v.ndim >= 2
                and v.dtype.kind in "biuf"
                and str(n) not in (lat_name, lon_name)
                and "bnds" not in str(n)
                and "bounds" not in str(n)
            ]
        absent = [k for k in keep if k not in ds.variables]
        if absent or not keep:
            raise ReaderError(
                f"{self.name}: {path.name!r} has no data variables {absent or keep!r}; it has "
                f"{sorted(map(str, ds.data_vars))!r}. Name them in params.variables"
            )
        for k in keep:
            if ds[k].dtype.kind not in "biuf":
                raise ReaderError(
                    f"{self.name}: variable {k!r} of {path.name!r} has dtype {str(ds[k].dtype)!r}; only numeric "
                    "variables can be ingested"
                )
        if lat_name is None or lon_name is None:
            raise ReaderError(
                f"{self.name}: {path.name!r} has no latitude/longitude coordinates (standard_name latitude/"
                "longitude or units degrees_north/east); add them before ingesting"
            )
        lat, lon = ds[lat_name], ds[lon_name]
        lat_bounds = lat.attrs.get("bounds")
        lon_bounds = lon.attrs.get("bounds")
        out_vars: dict[str, Any] = {}
        import xarray as xr

        if lat.ndim == 1 and lon.ndim == 1:
            ydim, xdim = str(lat.dims[0]), str(lon.dims[0])
            dims_map: dict[Hashable, str] = {ydim: "lat", xdim: "lon"}
            coords: dict[str, Any] = {
                "time": ds["time"].variable,
                "lat": (
                    "lat",
                    np.asarray(lat.values, dtype=np.float64),
                    _coord_attrs(lat, "latitude"),
                ),
                "lon": (
                    "lon",
                    np.asarray(lon.values, dtype=np.float64),
                    _coord_attrs(lon, "longitude"),
                ),
            }
            if lat_bounds in ds.variables and lon_bounds in ds.variables:
                coords["lat_bounds"] = (
                    ("lat", "nv"),
                    np.asarray(ds[lat_bounds].values, dtype=np.float64),
                )
                coords["lon_bounds"] = (
                    ("lon", "nv"),
                    np.asarray(ds[lon_bounds].values, dtype=np.float64),
                )
        elif lat.ndim == 2 and lon.ndim == 2 and lat.dims == lon.dims:
            ydim, xdim = (str(d) for d in lat.dims)
            dims_map = {ydim: "y", xdim: "x"}
            coords = {"time": ds["time"].variable}
            out_vars["lat"] = xr.Variable(
                ("y", "x"), np.asarray(lat.values, np.float64), _coord_attrs(lat, "latitude")
            )
            out_vars["lon"] = xr.Variable(
                ("y", "x"), np.asarray(lon.values, np.float64), _coord_attrs(lon, "longitude")
            )
            if lat_bounds in ds.variables and lon_bounds in ds.variables:
                area = cell_area_from_bounds(ds[lat_bounds].values, ds[lon_bounds].values)
                out_vars["cell_area"] = xr.Variable(
                    ("y", "x"),
                    area,
                    {
                        "units": "m2",
                        "standard_name": "cell_area",
                        "comment": "spherical polygon area from the cell-corner bounds",
                    },
                )
        else:
            raise ReaderError(
                f"{self.name}: {path.name!r} has latitude {lat_name!r} with dims {lat.dims!r} and longitude "
                f"{lon_name!r} with dims {lon.dims!r}; expected both 1-D (regular grid) or both 2-D on the "
                "same dims (curvilinear grid)"
            )
        for k in keep:
            var = ds[k].variable
            extra = [d for d in var.dims if d not in ("time", ydim, xdim)]
            if extra:
                raise ReaderError(
                    f"{self.name}: variable {k!r} of {path.name!r} has extra dims {extra!r}; pick one level "
                    f"with params.isel, e.g. {{{extra[0]!r}: 0}}"
                )
            order = [d for d in ("time", ydim, xdim) if d in var.dims]
            var = var.transpose(*order)
            attrs = {
                a: v
                for a, v in var.attrs.items()
                if a not in ("coordinates", "grid_mapping", "cell_methods")
            }
            if (
                var.dtype.kind in "iu"
            ):  # integers without scale/fill: keep as float so NaN works downstream
                var = var.astype(np.float32)
            out_vars[rename.get(k, k)] = xr.Variable(
                tuple(dims_map.get(d, d) for d in var.dims), var.data, attrs
            )
        new = xr.Dataset(out_vars, coords=coords)
        new.attrs = {a: v for a, v in ds.attrs.items() if isinstance(v, str | int | float)}
        new.attrs["source_files"] = path.name
        return new, path

    # ------------------------------------------------------------------ chunks
    def chunks(self, ds: xr.Dataset, params: Any) -> Mapping[str, int] | None:
        """Pencils (whole time axis, square spatial tiles) or slabs (whole maps).

        ``auto`` picks pencils when the series is at least a year long and one pencil
        tile of at least 8 × 8 cells fits ``chunk_mib``; otherwise slabs. Chunk sizes
        aim at ``chunk_mib`` decoded (default 8 MiB).
        """
        params = params if params is not None else NetCDFParams()
        ydim, xdim = ("lat", "lon") if "lat" in ds.dims else ("y", "x")
        nt, ny, nx = ds.sizes["time"], ds.sizes.get(ydim, 1), ds.sizes.get(xdim, 1)
        itemsize = max((v.dtype.itemsize for v in ds.data_vars.values()), default=4)
        target = max(1, int(params.chunk_mib * (1 << 20) / itemsize))
        mode = params.chunking
        if mode == "auto":
            mode = "pencils" if nt >= 365 and target // max(nt, 1) >= 64 else "slabs"
        if mode == "pencils":
            side = max(1, int(math.sqrt(max(1, target // max(nt, 1)))))
            return {"time": nt, ydim: min(ny, side), xdim: min(nx, side)}
        plane = ny * nx
        if plane <= target:
            return {"time": max(1, min(nt, target // max(plane, 1))), ydim: ny, xdim: nx}
        rows = max(1, target // max(nx, 1))
        return {"time": 1, ydim: min(ny, rows), xdim: nx if rows >= 1 else min(nx, target)}


def _coord_attrs(var: Any, standard_name: str) -> dict[str, Any]:
    units = "degrees_north" if standard_name == "latitude" else "degrees_east"
    return {"standard_name": standard_name, "units": units, "original_name": str(var.name)}


def _first_time(ds: xr.Dataset) -> str:
    return _iso(ds["time"].values[0])


def _last_time(ds: xr.Dataset) -> str:
    return _iso(ds["time"].values[-1])


def _iso(v: Any) -> str:
    import numpy as np

    if isinstance(v, np.datetime64):
        return str(v.astype("datetime64[s]"))
    return v.isoformat() if hasattr(v, "isoformat") else str(v)


def _duplicates(times: Any) -> Any:
    import numpy as np

    if times.dtype == object:
        for a, b in itertools.pairwise(times):
            if not a < b:
                return b
        return None
    d = np.diff(times.astype("datetime64[ns]").astype(np.int64))
    bad = np.flatnonzero(d <= 0)
    return times[bad[0] + 1] if bad.size else None

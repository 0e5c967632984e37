"""``array.regrid``: gridded data onto another horizontal grid (nearest, bilinear,
conservative), between regular lat/lon grids, projected rasters and curvilinear grids.

A composite of two steps:

1. ``weights`` (hidden): the sparse weight table ``weights`` (``dst``, ``src``,
   ``weight``; flat C-order cell indices) for the two grids and the method. Its
   parameters carry both grids (coordinates, or CRS + transform), and its ``x`` input
   is left out of its content id (``Input(identity=False)``), so its id depends on
   the grids and the method only: every dataset on the same grid pair (each year of
   a series) reuses one weights dataset. The tasks split the target cells between
   them; each builds its share with :func:`minjiang.kernels.regrid.regrid_weights`.
2. ``apply``: a full-axis step over the source's two grid dims; each task holds whole
   source planes for a block of the other dims (time, depth, band) and maps them
   through the table (:func:`minjiang.kernels.regrid.apply_weights`, numba), NaN
   sources left out and each target cell renormalised by the valid weight.

The source grid is the last two dims of ``x``; the target grid is a ``like`` input's
(its last two dims and their coordinates, or its CRS and transform) or a regular
lat/lon grid given by the ``lat``/``lon`` parameters. Everything is read and checked
at plan time.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from minjiang.core import (
    ArrayOutput,
    BlockContext,
    Composite,
    FullAxis,
    Input,
    Map,
    Operator,
    SubStep,
    TableOutput,
)
from minjiang.core.errors import ContractError
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["REGRID", "RegridParams"]

NUMERIC = ("f", "i", "u")
Method = Literal["nearest", "bilinear", "conservative"]
#: coordinate names read as latitude / longitude, in order of preference
_LATLON_NAMES = (("lat", "lon"), ("latitude", "longitude"))
#: cells a plane may have on either grid (the parameters of the steps carry the grids)
MAX_CELLS = 4_000_000
_WEIGHT_COLUMNS = {"dst": "int64", "src": "int64", "weight": "float64"}


def _axis_values(spec: tuple[float, float, float], what: str) -> list[float]:
    start, stop, step = spec
    if step == 0:
        raise ValueError(f"{what}: step is 0; give [start, stop, step] with a non-zero step")
    n = (stop - start) / step
    if n < 0 or abs(n - round(n)) > 1e-6 * max(1.0, abs(n)):
        raise ValueError(
            f"{what} {list(spec)!r}: (stop - start) / step must be a whole number >= 1 "
            "(stop is the last centre)"
        )
    count = round(n) + 1
    if count < 2 or count > MAX_CELLS:
        raise ValueError(
            f"{what} {list(spec)!r} gives {count} centres; 2 to {MAX_CELLS} are allowed"
        )
    return [start + i * step for i in range(count)]


class RegridParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    method: Method = Field(
        description="nearest (the source cell whose centre is nearest on the sphere), "
        "bilinear (the four source centres around the target centre) or conservative "
        "(area-weighted mean of the overlapped source cells)."
    )
    lat: tuple[float, float, float] | None = Field(
        default=None,
        description="Target latitudes [start, stop, step] in degrees (cell centres, stop "
        "included), with 'lon'; instead of a 'like' input.",
    )
    lon: tuple[float, float, float] | None = Field(
        default=None,
        description="Target longitudes [start, stop, step] in degrees (cell centres, stop "
        "included), with 'lat'.",
    )
    min_valid_fraction: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="A target cell gets a value where the valid (non-NaN) source weight "
        "reaching it is at least this: for conservative the fraction of its area covered "
        "by valid source cells, for bilinear the sum of the valid corners' weights, for "
        "nearest the one cell must be valid. Else NaN.",
    )

    @model_validator(mode="after")
    def _grid(self) -> RegridParams:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both 'lat' and 'lon' ([start, stop, step] each), or neither")
        if self.lat is not None and self.lon is not None:
            lat = _axis_values(self.lat, "lat")
            lon = _axis_values(self.lon, "lon")
            if max(abs(lat[0]), abs(lat[-1])) > 90:
                raise ValueError(f"lat {list(self.lat)!r}: centres must lie in [-90, 90]")
            if len(lon) * abs(self.lon[2]) > 360 + 1e-9:
                raise ValueError(f"lon {list(self.lon)!r}: the cells span more than 360 degrees")
            if len(lat) * len(lon) > MAX_CELLS:
                raise ValueError(
                    f"lat x lon is {len(lat)} x {len(lon)} cells, over {MAX_CELLS}; choose a coarser step"
                )
        return self


class GridSpec(BaseModel):
    """A horizontal grid, as the sub-steps carry it in their parameters: 1-D lat/lon
    centres as numbers, a raster as CRS and transform, and the 2-D centres of a
    curvilinear grid packed (:func:`pack`), so that hashing and recording the
    parameters stays cheap for large grids."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    kind: Literal["latlon", "projected", "curvilinear"]
    dims: tuple[str, str]
    shape: tuple[int, int]
    lat_name: str = "lat"
    lon_name: str = "lon"
    lat: list[float] | None = None
    lon: list[float] | None = None
    packed: str | None = Field(
        default=None,
        description="curvilinear: base64 of the zlib-compressed little-endian float64 "
        "centre latitudes then longitudes, C order over dims",
    )
    crs: str = ""
    transform: tuple[float, float, float, float, float, float] | None = None

    def latlon2d(self) -> tuple[Any, Any]:
        """The 2-D centre latitudes and longitudes of a curvilinear grid."""
        import base64
        import zlib

        import numpy as np

        assert self.packed is not None
        raw = np.frombuffer(zlib.decompress(base64.b64decode(self.packed)), dtype="<f8")
        both = raw.reshape(2, *self.shape)
        return both[0], both[1]

    def cells(self) -> Any:
        """The grid as :class:`minjiang.kernels.regrid.CellGrid`."""
        from minjiang.kernels.regrid import curvilinear_grid, latlon_grid, projected_grid

        if self.kind == "latlon":
            return latlon_grid(self.lat, self.lon)
        if self.kind == "curvilinear":
            return curvilinear_grid(*self.latlon2d())
        assert self.transform is not None
        return projected_grid(self.crs, self.transform, self.shape)

    def describe(self) -> str:
        n = f"{self.shape[0]} x {self.shape[1]}"
        if self.kind == "projected":
            return f"projected {n} over {self.dims!r} in {_crs_name(self.crs)}"
        return f"{self.kind} {n} over {self.dims!r}"


class _WeightsParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    method: Method
    src: GridSpec
    dst: GridSpec


class _ApplyParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    method: Method
    min_valid_fraction: float = Field(ge=0.0, le=1.0)
    src: GridSpec
    dst: GridSpec


def _crs_name(crs: str) -> str:
    try:
        from pyproj import CRS

        c = CRS.from_user_input(crs)
        epsg = c.to_epsg()
        return f"EPSG:{epsg}" if epsg else str(c.name)
    except Exception:  # an unparsable CRS is refused elsewhere; named by its start here
        return repr(crs[:40])


def pack(lat: Any, lon: Any) -> str:
    """2-D centre latitudes and longitudes as :attr:`GridSpec.packed` holds them."""
    import base64
    import zlib

    import numpy as np

    both = np.stack([np.asarray(lat, dtype="<f8"), np.asarray(lon, dtype="<f8")])
    return base64.b64encode(zlib.compress(both.tobytes(), 6)).decode("ascii")


def grid_of(inp: Any, what: str, given: tuple[Any, Any] | None = None) -> GridSpec:
    """The horizontal grid of a plan-time input (its last two dims).

    Raises
    ------
    ContractError
        When the input's last two dims carry no grid this operator knows, naming
        what it has and what it needs.
    """
    import numpy as np

    dims = tuple(inp.dims)
    if len(dims) < 2:
        raise ContractError(
            f"array.regrid: input {what!r} has dims {dims!r}; its last two dims must be the "
            "horizontal grid"
        )
    grid_dims = (str(dims[-2]), str(dims[-1]))
    ny, nx = int(inp.shape[-2]), int(inp.shape[-1])
    if ny * nx > MAX_CELLS:
        raise ContractError(
            f"array.regrid: input {what!r} has {ny} x {nx} cells a plane, over {MAX_CELLS}; "
            "regrid it in tiles or coarsen it first"
        )
    attrs = dict(inp.attrs)
    if attrs.get("transform") is not None and given is None:
        crs = str(attrs.get("crs") or "")
        if not crs:
            raise ContractError(
                f"array.regrid: input {what!r} has a 'transform' but no 'crs' attribute; a "
                "raster needs its CRS to be placed on the sphere (ingest it with forestry.raster)"
            )
        try:
            from pyproj import CRS

            CRS.from_user_input(crs)
        except Exception as err:
            raise ContractError(
                f"array.regrid: input {what!r} has a 'crs' attribute pyproj cannot read "
                f"({crs[:40]!r}); give it as WKT or 'EPSG:n'"
            ) from err
        transform = tuple(float(v) for v in attrs["transform"])
        if len(transform) != 6 or transform[0] * transform[4] - transform[1] * transform[3] == 0:
            raise ContractError(
                f"array.regrid: input {what!r} has transform {list(transform)!r}; it must be "
                "six numbers [a, b, c, d, e, f] of an invertible affine map"
            )
        return GridSpec(
            kind="projected",
            dims=grid_dims,
            shape=(ny, nx),
            crs=crs,
            transform=transform,
        )
    if given is not None:  # lat/lon arrays given as inputs (the ocean plugin's layout)
        lat_in, lon_in = given
        lat_name, lon_name = "lat", "lon"
        try:
            lat = np.asarray(lat_in.values(), dtype=np.float64)
            lon = np.asarray(lon_in.values(), dtype=np.float64)
        except ContractError:
            raise
        except Exception as err:
            raise ContractError(
                f"array.regrid: the latitude/longitude inputs of {what!r} cannot be read at "
                f"plan time ({type(err).__name__}); run the step that makes them first"
            ) from err
    else:
        names = set(inp.coord_names)
        for lat_name, lon_name in _LATLON_NAMES:
            if lat_name in names and lon_name in names:
                break
        else:
            hint = "'lat'/'lon'" if what == "x" else "'like_lat'/'like_lon'"
            raise ContractError(
                f"array.regrid: input {what!r} has no grid over its last two dims {grid_dims!r}: "
                "it needs 'lat'/'lon' coordinates (1-D, or 2-D for a curvilinear grid), "
                "'crs'/'transform' attributes (a raster), or its 2-D latitudes and longitudes "
                f"as the {hint} inputs; its coordinates are {sorted(names)!r}"
            )
        lat = np.asarray(inp.coord(lat_name), dtype=np.float64)
        lon = np.asarray(inp.coord(lon_name), dtype=np.float64)
    if lat.ndim == 1 and lon.ndim == 1:
        if (lat.size, lon.size) != (ny, nx):
            raise ContractError(
                f"array.regrid: input {what!r}: 1-D {lat_name!r} ({lat.size}) and {lon_name!r} "
                f"({lon.size}) do not match its last two dims {grid_dims!r} ({ny} x {nx}); "
                "transpose it so that latitude comes before longitude"
            )
        kind: Literal["latlon", "curvilinear"] = "latlon"
    elif lat.ndim == 2 and lat.shape == lon.shape == (ny, nx):
        kind = "curvilinear"
    else:
        raise ContractError(
            f"array.regrid: input {what!r}: coordinates {lat_name!r} {lat.shape!r} and "
            f"{lon_name!r} {lon.shape!r} are not a grid over its last two dims {grid_dims!r} "
            f"({ny} x {nx}): they must be 1-D over each, or both 2-D over the two"
        )
    if kind == "latlon":
        spec = GridSpec(
            kind=kind,
            dims=grid_dims,
            shape=(ny, nx),
            lat_name=lat_name,
            lon_name=lon_name,
            lat=lat.tolist(),
            lon=lon.tolist(),
        )
    else:
        spec = GridSpec(
            kind=kind,
            dims=grid_dims,
            shape=(ny, nx),
            lat_name=lat_name,
            lon_name=lon_name,
            packed=pack(lat, lon),
        )
    try:  # the geometry's own checks (monotonic axes, finite values) at plan time
        spec.cells()
    except ValueError as err:
        raise ContractError(f"array.regrid: input {what!r}: {err}") from None
    return spec


def _given(inputs: dict[str, Any], lat: str, lon: str, of: str) -> tuple[Any, Any] | None:
    if (lat in inputs) != (lon in inputs):
        raise ContractError(
            f"array.regrid: give both {lat!r} and {lon!r} (the 2-D latitudes and longitudes "
            f"of {of!r}'s grid), or neither"
        )
    if lat not in inputs:
        return None
    if of not in inputs:
        raise ContractError(
            f"array.regrid: inputs {lat!r}/{lon!r} describe {of!r}, which is not given"
        )
    return inputs[lat], inputs[lon]


def _expand(params: RegridParams, inputs: dict[str, Any]) -> list[SubStep]:
    import numpy as np

    x = inputs["x"]
    src = grid_of(x, "x", _given(inputs, "lat", "lon", "x"))
    like = inputs.get("like")
    if (like is None) == (params.lat is None):
        raise ContractError(
            "array.regrid: give the target grid either as a 'like' input (an array on that "
            "grid) or as the 'lat' and 'lon' parameters ([start, stop, step]), exactly one"
        )
    if like is not None:
        dst = grid_of(like, "like", _given(inputs, "like_lat", "like_lon", "like"))
    else:
        assert params.lat is not None and params.lon is not None
        lat, lon = _axis_values(params.lat, "lat"), _axis_values(params.lon, "lon")
        dst = GridSpec(
            kind="latlon", dims=("lat", "lon"), shape=(len(lat), len(lon)), lat=lat, lon=lon
        )
    lead = tuple(x.dims[:-2])
    clash = sorted(set(lead) & set(dst.dims))
    if clash:
        raise ContractError(
            f"array.regrid: the target grid's dims {dst.dims!r} include {clash!r}, a dim of "
            f"'x' {tuple(x.dims)!r} that is not its grid; rename one of them first"
        )
    if np.dtype(x.dtype).kind not in "fiu":
        raise ContractError(
            f"array.regrid: input 'x' has dtype {np.dtype(x.dtype).name!r}; it needs numbers"
        )
    w = {"method": params.method, "src": src.model_dump(), "dst": dst.model_dump()}
    a = {**w, "min_valid_fraction": params.min_valid_fraction}
    return [
        SubStep("weights", _WEIGHTS, {"x": "x"}, w),
        SubStep("apply", _APPLY, {"x": "x", "weights": "weights"}, a),
    ]


# -- the weights step ------------------------------------------------------------------


def weights_kernel(
    arrays: dict[str, Any], params: _WeightsParams, ctx: BlockContext
) -> dict[str, Any]:
    """Map kernel: this task's share of the target cells' weights (the block's values
    are not used: the grids come with the parameters)."""
    from minjiang.kernels.regrid import regrid_weights

    dst = params.dst.cells()
    n = dst.size
    lo, hi = n * ctx.task // ctx.n_tasks, n * (ctx.task + 1) // ctx.n_tasks
    d, s, w = regrid_weights(params.src.cells(), dst, params.method, slice(lo, hi))
    return {"weights": {"dst": d, "src": s, "weight": w}}


def _cells(g: GridSpec) -> int:
    return g.shape[0] * g.shape[1]


def _weights_memory(size: Any, params: Any) -> int:
    # the block as read, and both grids' geometry: for conservative weights centres,
    # corners, a KD tree and the candidate pairs, about 1 KiB a cell (measured on a
    # 1-degree global pair); nearest and bilinear keep centres and the four corners'
    # indices, about 350 bytes a cell (measured on a 160 x 160 lat/lon pair)
    per_cell = 1024 if params.method == "conservative" else 384
    return size.input_bytes + per_cell * (_cells(params.src) + _cells(params.dst))


def _table_rows(params: Any) -> int:
    ns, nd = _cells(params.src), _cells(params.dst)
    if params.method == "nearest":
        return nd
    if params.method == "bilinear":
        return 4 * nd
    ratio = ns / max(nd, 1)  # source cells over one target cell, plus its edges
    return int(nd * (math.sqrt(ratio) + 2) ** 2)


_WEIGHTS = Operator(
    name="array.regrid",
    version="1",
    inputs=(Input("x", identity=False),),
    outputs=(TableOutput("weights", _WEIGHT_COLUMNS),),
    pattern=Map(kernel=weights_kernel),
    params=_WeightsParams,
    memory=_weights_memory,
    description="The weight table of a regrid, for the grids its parameters carry.",
)


# -- the apply step --------------------------------------------------------------------


def _dst_coords(g: GridSpec, x: Any) -> dict[str, Any]:
    import numpy as np

    if g.kind == "projected":
        assert g.transform is not None
        a, b, c, d, e, f = g.transform
        col, row = np.arange(g.shape[1]) + 0.5, np.arange(g.shape[0]) + 0.5
        yd, xd = g.dims
        return {
            yd: ((yd,), f + e * row, {"axis": "Y", "long_name": "cell centre y"}),
            xd: ((xd,), c + a * col, {"axis": "X", "long_name": "cell centre x"}),
            "spatial_ref": (
                (),
                np.int32(0),
                {
                    "crs_wkt": g.crs,
                    "spatial_ref": g.crs,
                    "GeoTransform": " ".join(repr(float(v)) for v in (c, a, b, f, d, e)),
                },
            ),
        }
    lat_attrs = {"units": "degrees_north", "standard_name": "latitude"}
    lon_attrs = {"units": "degrees_east", "standard_name": "longitude"}
    if g.kind == "latlon":
        lat, lon = np.asarray(g.lat, dtype=np.float64), np.asarray(g.lon, dtype=np.float64)
    else:
        lat, lon = g.latlon2d()
    out: dict[str, Any] = {}
    if g.kind == "latlon":
        out[g.lat_name] = ((g.dims[0],), lat, lat_attrs)
        out[g.lon_name] = ((g.dims[1],), lon, lon_attrs)
    else:
        out[g.lat_name] = (g.dims, lat, lat_attrs)
        out[g.lon_name] = (g.dims, lon, lon_attrs)
    if "spatial_ref" in x.coord_names:  # the source's projection no longer applies
        from pyproj import CRS

        wkt = CRS.from_epsg(4326).to_wkt()
        out["spatial_ref"] = ((), np.int32(0), {"crs_wkt": wkt, "spatial_ref": wkt})
    return out


def _apply_outputs(params: _ApplyParams, inputs: dict[str, Any]) -> tuple[ArrayOutput, ...]:
    import numpy as np

    x = inputs["x"]
    dst = params.dst
    if tuple(x.dims[-2:]) != params.src.dims or tuple(x.shape[-2:]) != params.src.shape:
        raise ContractError(
            f"array.regrid: input 'x' has grid dims {tuple(x.dims[-2:])!r} of shape "
            f"{tuple(x.shape[-2:])!r}; the weights are for {params.src.describe()}"
        )
    dtype = "float32" if np.dtype(x.dtype) == np.float32 else "float64"
    drop = ("transform", "crs", "grid_mapping", "regrid_method", "regridded_from")
    attrs: dict[str, Any] = {k: v for k, v in x.attrs.items() if k not in drop}
    if dst.kind == "projected":
        assert dst.transform is not None
        attrs.update(crs=dst.crs, transform=list(dst.transform), grid_mapping="spatial_ref")
    attrs["regrid_method"] = params.method
    attrs["regridded_from"] = params.src.describe()
    return (
        ArrayOutput(
            x.name,
            dtype=dtype,
            dims=(*x.dims[:-2], *dst.dims),
            sizes=dict(zip(dst.dims, dst.shape, strict=True)),
            coords=_dst_coords(dst, x),
            attrs=attrs,
        ),
    )


def apply_kernel(arrays: dict[str, Any], params: _ApplyParams, ctx: BlockContext) -> dict[str, Any]:
    """Full-axis kernel: whole source planes through the weight table."""
    import numpy as np
    from minjiang.kernels import to_host
    from minjiang.kernels.regrid import apply_weights

    (name,) = ctx.outputs
    x = np.asarray(to_host(arrays["x"]))
    table = arrays["weights"]
    lead = x.shape[:-2]
    ny, nx = params.dst.shape
    out = apply_weights(
        x.reshape(-1, x.shape[-2] * x.shape[-1]),
        table.column("dst").to_numpy(),
        table.column("src").to_numpy(),
        table.column("weight").to_numpy(),
        ny * nx,
        min_valid_fraction=params.min_valid_fraction,
    )
    dtype = np.float32 if x.dtype == np.float32 else np.float64
    return {name: out.reshape(*lead, ny, nx).astype(dtype, copy=False)}


def _apply_memory(size: Any, params: Any) -> int:
    # the block, its float64 copy, the float64 result and its cast, and the whole
    # weight table (three 8-byte columns, and their sorted copies)
    f64 = size.input_bytes * 8 // max(size.itemsize, 1)
    planes = max(size.input_bytes // max(size.itemsize, 1) // max(_cells(params.src), 1), 1)
    out64 = planes * _cells(params.dst) * 8
    return size.input_bytes + f64 + 2 * out64 + 48 * _table_rows(params)


def _grid_dims(params: _ApplyParams, inputs: dict[str, Any]) -> tuple[str, ...]:
    return tuple(params.src.dims)


_APPLY = Operator(
    name="array.regrid",
    version="1",
    inputs=(Input("x", dtypes=NUMERIC), Input("weights", kind="table")),
    outputs=_apply_outputs,
    pattern=FullAxis(dims=_grid_dims, kernel=apply_kernel),
    params=_ApplyParams,
    memory=_apply_memory,
    description="Whole planes of a source grid mapped onto a target grid by a weight table.",
)

REGRID = Operator(
    name="array.regrid",
    version="1",
    inputs=(
        Input("x", dtypes=NUMERIC),
        Input("like", optional=True),
        Input("lat", dtypes=("f",), optional=True),
        Input("lon", dtypes=("f",), optional=True),
        Input("like_lat", dtypes=("f",), optional=True),
        Input("like_lon", dtypes=("f",), optional=True),
    ),
    outputs=(),
    pattern=Composite(_expand),
    params=RegridParams,
    description="Gridded data onto another grid (regular lat/lon, projected raster or "
    "curvilinear; nearest, bilinear or conservative), with the weights computed once "
    "per grid pair and reused.",
)

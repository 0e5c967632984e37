"""The forestry operators (see ``docs/plugins/forestry.md``).

============================ ============================ =====================================
operator                     pattern                      what
============================ ============================ =====================================
``forestry.spectral_index``  composite → map              a catalogue index or formula over bands
``forestry.dnbr``            composite → map              dNBR, RdNBR, RBR, USGS severity classes
``forestry.terrain``         map, 1-cell halo             Horn slope, aspect, hillshade
``forestry.zonal_stats``     composite → aggregate        per-zone statistics → Parquet table
``forestry.tree_tops``       aggregate, halo = max window variable-window local maxima → point table
``forestry.canopy_height``   composite → map, halo =      DSM, TIN DTM, CHM (pit-free) from LiDAR
                             buffer; tiled table input    points, buffer of neighbouring tiles
============================ ============================ =====================================

The operators with several raster inputs are composites: their expansion checks, at plan time and before anything else, that the
inputs share one grid (CRS, transform, shape; the error names both grids), then plans
one operator step over exactly the inputs the parameters use.
"""

from __future__ import annotations

from typing import Any, Literal

from minjiang.core import (
    Aggregate,
    ArrayOutput,
    BlockContext,
    Composite,
    Input,
    Map,
    Operator,
    SubStep,
    TableOutput,
)
from minjiang.core.errors import ContractError
from minjiang.plugins.forestry._grid import check_same_grid, geographic_spacing, grid_of
from minjiang.plugins.forestry._resample import RESAMPLE
from minjiang.plugins.forestry._spectral import BANDS, resolve_formula
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["OPERATORS"]

NUMERIC = ("f", "i", "u")
_ARRAY_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _grid_attrs(info: Any) -> dict[str, Any]:
    return {k: info.attrs[k] for k in ("crs", "transform", "grid_mapping") if k in info.attrs}


# ---------------------------------------------------------------- spectral index
class SpectralIndexParams(_Params):
    index: str | None = Field(
        default=None,
        max_length=64,
        description="An index of the Awesome Spectral Indices catalogue (spyndex), e.g. 'NDVI'.",
    )
    formula: str | None = Field(
        default=None,
        max_length=4096,
        description="Or a formula over the band symbols (N, R, G, B, S1, S2, RE1...).",
    )
    constants: dict[str, float] = Field(
        default_factory=dict, description="Values of the catalogue constants (L, g, C1...)."
    )
    output: str | None = Field(
        default=None, pattern=_ARRAY_NAME, description="Output array name (default: the index)."
    )
    dtype: Literal["float32", "float64"] | None = Field(
        default=None,
        description="Computation and output type (default: float32 when every band is float32 "
        "or an integer of at most 16 bits, else float64); integers are cast before arithmetic.",
    )

    @model_validator(mode="after")
    def _one(self) -> SpectralIndexParams:
        if (self.index is None) == (self.formula is None):
            raise ValueError("give exactly one of 'index' and 'formula'")
        return self


class _BandMathParams(_Params):
    expression: str
    output: str
    dtype: Literal["float32", "float64"]
    index: str
    formula: str


def _float_type(dtypes: list[Any]) -> str:
    import numpy as np

    small = all(
        np.dtype(d) == np.float32 or (np.dtype(d).kind in "iub" and np.dtype(d).itemsize <= 2)
        for d in dtypes
    )
    return "float32" if small else "float64"


def _index_outputs(params: _BandMathParams, inputs: dict[str, Any]) -> tuple[ArrayOutput, ...]:
    first = next(iter(inputs.values()))
    return (
        ArrayOutput(
            params.output,
            dtype=params.dtype,
            attrs={
                **_grid_attrs(first),
                "long_name": params.index,
                "formula": params.formula,
                "units": "1",
            },
        ),
    )


def band_math_kernel(
    arrays: dict[str, Any], params: _BandMathParams, ctx: BlockContext
) -> dict[str, Any]:
    """Map kernel: cast the bands, evaluate the guarded expression (numba, or CUDA)."""
    from minjiang.kernels.bandmath import band_math

    cast = {k: v.astype(params.dtype, copy=False) for k, v in arrays.items()}
    return {params.output: band_math(params.expression, cast, dtype=params.dtype)}


def _index_expand(params: SpectralIndexParams, inputs: dict[str, Any]) -> list[SubStep]:
    where = "forestry.spectral_index"
    f = resolve_formula(params.index, params.formula, dict(params.constants), where)
    missing = [b for b in f.bands if b not in inputs]
    if missing:
        raise ContractError(
            f"{where}: {f.name!r} ({f.source}) reads the bands {list(f.bands)!r}; "
            f"{missing!r} not given (inputs given: {sorted(inputs)!r})"
        )
    unused = sorted(set(inputs) - set(f.bands))
    if unused:
        raise ContractError(
            f"{where}: {f.name!r} ({f.source}) does not read {unused!r}; leave them out"
        )
    used = {b: inputs[b] for b in f.bands}
    check_same_grid(where, used)
    dtype = params.dtype or _float_type([i.dtype for i in used.values()])
    out = params.output or (params.index if params.index and _is_name(params.index) else "index")
    op = Operator(
        name="forestry.spectral_index",
        version="1",
        inputs=tuple(Input(b, dtypes=NUMERIC) for b in f.bands),
        outputs=_index_outputs,
        pattern=Map(band_math_kernel),
        params=_BandMathParams,
        backends=("cpu", "gpu"),
        description="The expression of a spectral index over its bands.",
    )
    p = {
        "expression": f.expression,
        "output": out,
        "dtype": dtype,
        "index": f.name,
        "formula": f.source,
    }
    return [SubStep("index", op, {b: b for b in f.bands}, p)]


def _is_name(s: str) -> bool:
    import re

    return re.match(_ARRAY_NAME, s) is not None


# ---------------------------------------------------------------- dNBR
class DnbrParams(_Params):
    pass


def _dnbr_outputs(params: Any, inputs: dict[str, Any]) -> tuple[ArrayOutput, ...]:
    from minjiang.plugins.forestry.severity import CLASS_NAMES, EDGES

    g = _grid_attrs(inputs["pre"])
    dtype = _float_type([inputs["pre"].dtype, inputs["post"].dtype])
    return (
        ArrayOutput(
            "dnbr", dtype=dtype, attrs={**g, "long_name": "NBR_pre - NBR_post", "units": "1"}
        ),
        ArrayOutput(
            "rdnbr",
            dtype=dtype,
            attrs={**g, "long_name": "dNBR / sqrt(|NBR_pre|) (Miller & Thode 2007)", "units": "1"},
        ),
        ArrayOutput(
            "rbr",
            dtype=dtype,
            attrs={**g, "long_name": "dNBR / (NBR_pre + 1.001) (Parks et al. 2014)", "units": "1"},
        ),
        ArrayOutput(
            "severity",
            dtype="uint8",
            attrs={
                **g,
                "long_name": "burn severity class (USGS, Key & Benson 2006)",
                "flag_values": list(range(len(CLASS_NAMES))),
                "flag_meanings": " ".join(
                    n.replace(", ", "_").replace(" ", "_") for n in CLASS_NAMES
                ),
                "class_lower_edges_dnbr": list(EDGES),
            },
        ),
    )


def dnbr_kernel(arrays: dict[str, Any], params: Any, ctx: BlockContext) -> dict[str, Any]:
    """Map kernel: dNBR, RdNBR, RBR and the severity classes (numba, or array code on
    the device on the GPU backend)."""
    import numpy as np
    from minjiang.plugins.forestry.severity import burn_severity

    dtype = np.dtype(_float_type([arrays["pre"].dtype, arrays["post"].dtype]))
    pre = arrays["pre"].astype(dtype, copy=False)
    post = arrays["post"].astype(dtype, copy=False)
    return burn_severity(pre, post, backend="gpu" if ctx.backend == "gpu" else "cpu")


_DNBR_INNER = Operator(
    name="forestry.dnbr",
    version="1",
    inputs=(Input("pre", dtypes=NUMERIC), Input("post", dtypes=NUMERIC)),
    outputs=_dnbr_outputs,
    pattern=Map(dnbr_kernel),
    params=DnbrParams,
    backends=("cpu", "gpu"),
    memory=lambda size, params: 2 * size.input_bytes + 2 * size.output_bytes,
    description="dNBR, RdNBR, RBR and severity classes from pre- and post-fire NBR.",
)


def _dnbr_expand(params: DnbrParams, inputs: dict[str, Any]) -> list[SubStep]:
    check_same_grid("forestry.dnbr", inputs)
    return [SubStep("dnbr", _DNBR_INNER, {"pre": "pre", "post": "post"}, {})]


# ---------------------------------------------------------------- terrain
_FOOT = {"foot": 0.3048, "us_survey_foot": 1200.0 / 3937.0, "metre": 1.0}


class TerrainParams(_Params):
    z_factor: float = Field(default=1.0, gt=0, le=1e6, description="Vertical exaggeration.")
    azimuth: float = Field(default=315.0, ge=0, le=360, description="Sun azimuth, degrees.")
    altitude: float = Field(default=45.0, ge=0, le=90, description="Sun altitude, degrees.")
    z_units: Literal["auto", "metre", "foot", "us_survey_foot"] = Field(
        default="auto",
        description="Units of the elevations ('auto': the array's 'units' attribute; when it "
        "is empty, the CRS's horizontal unit, or metres on a geographic CRS).",
    )


def _unit_name(u: str) -> str | None:
    u = u.strip().lower()
    if u in ("m", "metre", "meter", "metres", "meters"):
        return "metre"
    if u in ("ft", "foot", "feet", "international foot"):
        return "foot"
    if u in ("us survey foot", "us_survey_foot", "ftus", "us-ft", "foot_us"):
        return "us_survey_foot"
    return None


def _terrain_units(params: TerrainParams, info: Any, where: str) -> dict[str, Any]:
    """Horizontal handling and metres per z unit (refuses mixed or unknown units)."""
    g = grid_of(info)
    if g is None:
        raise ContractError(
            f"{where}: input 'dem' carries no 'transform' (cell size); ingest it with forestry.raster"
        )
    geographic, h_m = False, 1.0
    if g.crs:
        from pyproj import CRS

        crs = CRS.from_user_input(g.crs)
        geographic = bool(crs.is_geographic)
        if not geographic:
            h_m = float(crs.axis_info[0].unit_conversion_factor)
    if params.z_units != "auto":
        z_m = _FOOT[params.z_units]
    else:
        raw = str(info.attrs.get("units", "") or "")
        if raw:
            name = _unit_name(raw)
            if name is None:
                raise ContractError(
                    f"{where}: the elevations' units {raw!r} are not metres or feet; give "
                    "z_units explicitly"
                )
            z_m = _FOOT[name]
        else:
            z_m = 1.0 if geographic else h_m
    return {"geographic": geographic, "h_m": h_m, "z_m": z_m}


def _terrain_outputs(params: TerrainParams, inputs: dict[str, Any]) -> tuple[ArrayOutput, ...]:
    info = inputs["dem"]
    u = _terrain_units(params, info, "forestry.terrain")
    g = _grid_attrs(info)
    common = {
        **g,
        "method": "Horn (1981), GDAL conventions",
        "edge_policy": "NaN where the 3 x 3 window is incomplete or holds NaN",
        "z_metres_per_unit": u["z_m"],
    }
    return (
        ArrayOutput("slope", dtype="float32", attrs={**common, "units": "degree"}),
        ArrayOutput(
            "aspect",
            dtype="float32",
            attrs={**common, "units": "degree", "long_name": "clockwise from north; NaN when flat"},
        ),
        ArrayOutput(
            "hillshade",
            dtype="float32",
            attrs={
                **common,
                "units": "1",
                "long_name": f"1 + 254 cos(incidence), sun azimuth {params.azimuth:g}, "
                f"altitude {params.altitude:g}",
            },
        ),
    )


def terrain_kernel(
    arrays: dict[str, Any], params: TerrainParams, ctx: BlockContext
) -> dict[str, Any]:
    """Map kernel with a 1-cell halo: Horn slope, aspect, hillshade (numba, or
    numba.cuda on the GPU backend, where the block stays on the device)."""
    import numpy as np
    from minjiang.kernels import array_namespace
    from minjiang.plugins.forestry.terrain import horn_terrain

    gpu = ctx.backend == "gpu"
    xp = array_namespace(arrays["dem"]) if gpu else np
    z = xp.asarray(arrays["dem"], dtype=xp.float64)
    (ylo, yhi), (xlo, xhi) = ctx.halo["y"], ctx.halo["x"]
    # a complete 1-cell frame, NaN outside the raster (GDAL's edge policy)
    z = xp.pad(z, ((1 - ylo, 1 - yhi), (1 - xlo, 1 - xhi)), constant_values=np.nan)
    ys, xs = ctx.region["y"], ctx.region["x"]
    if ys.start == 0:
        z[0, :] = np.nan
    if ys.stop == ctx.sizes["y"]:
        z[-1, :] = np.nan
    if xs.start == 0:
        z[:, 0] = np.nan
    if xs.stop == ctx.sizes["x"]:
        z[:, -1] = np.nan
    info = ctx.attrs["dem"]
    a, _, _, _, e, f = (float(v) for v in info["transform"])
    u = _terrain_units(
        params, _AttrsInfo(info, (ctx.sizes["y"], ctx.sizes["x"])), "forestry.terrain"
    )
    rows = ys.stop - ys.start
    if u["geographic"]:
        lat = f + e * (np.arange(ys.start, ys.stop) + 0.5)
        ew, ns = geographic_spacing(lat, a, e)
    else:
        ew = np.full(rows, abs(a) * u["h_m"])
        ns = np.full(rows, abs(e) * u["h_m"])
    out = horn_terrain(
        z * u["z_m"],
        ew,
        ns,
        z_factor=params.z_factor,
        azimuth=params.azimuth,
        altitude=params.altitude,
        backend="gpu" if gpu else "cpu",
    )
    return {k: v.astype(np.float32) for k, v in out.items()}


class _AttrsInfo:
    def __init__(self, attrs: Any, shape: tuple[int, int]) -> None:
        self.attrs, self.shape = attrs, shape


# ---------------------------------------------------------------- zonal statistics
class ZonalStatsParams(_Params):
    percentiles: list[float] = Field(
        default_factory=list,
        max_length=99,
        description="Exact percentiles per zone (0..100, NumPy's linear interpolation); they "
        "make the partial states hold every valid value.",
    )

    @model_validator(mode="after")
    def _range(self) -> ZonalStatsParams:
        if any(not 0 <= q <= 100 for q in self.percentiles):
            raise ValueError("percentiles must lie in [0, 100]")
        return self


class _ZonalInner(_Params):
    percentiles: list[float]
    attributes: dict[str, list[Any]]
    attribute_types: dict[str, str]


def _pname(q: float) -> str:
    return "p" + f"{q:g}".replace(".", "_").replace("-", "m")


_STAT_COLUMNS = {
    "zone": "int64",
    "count": "int64",
    "sum": "double",
    "mean": "double",
    "std": "double",
    "min": "double",
    "max": "double",
}


def _zonal_outputs(params: _ZonalInner, inputs: dict[str, Any]) -> tuple[TableOutput, ...]:
    cols = dict(_STAT_COLUMNS)
    cols.update({_pname(q): "double" for q in params.percentiles})
    cols.update({k: v for k, v in params.attribute_types.items() if k not in cols})
    return (TableOutput("stats", cols),)


def zonal_partial(arrays: dict[str, Any], params: _ZonalInner, ctx: BlockContext) -> dict[str, Any]:
    """Per-block partial state: labelled sums (or, with percentiles, the valid values)."""
    import numpy as np
    from minjiang.kernels import to_host

    values = np.asarray(to_host(arrays["values"]))
    zones = np.asarray(to_host(arrays["zones"])).astype(np.int64, copy=False)
    if params.percentiles:
        ok = zones > 0
        if values.dtype.kind == "f":
            ok &= ~np.isnan(values)
        return {"zone": zones[ok], "value": values[ok].astype(np.float64)}
    from minjiang.kernels.labelstats import label_stats_partial

    return label_stats_partial(values, zones, ignore=0)


def zonal_combine(states: list[dict[str, Any]], params: _ZonalInner) -> dict[str, Any]:
    """Merge partial states (counts stay integers)."""
    import numpy as np

    if params.percentiles:
        return {
            "zone": np.concatenate([np.asarray(s["zone"], np.int64) for s in states]),
            "value": np.concatenate([np.asarray(s["value"], np.float64) for s in states]),
        }
    from minjiang.kernels.labelstats import label_stats_combine

    return label_stats_combine(states)


def zonal_finalize(state: dict[str, Any], params: _ZonalInner) -> dict[str, Any]:
    """The table: one row per zone of the zones file (count 0 where no valid cell)."""
    import numpy as np

    ids = np.asarray(params.attributes.get("zone", []), dtype=np.int64)
    n = len(ids)
    out: dict[str, Any] = {
        "zone": ids,
        "count": np.zeros(n, np.int64),
        **{k: np.full(n, np.nan) for k in ("sum", "mean", "std", "min", "max")},
        **{_pname(q): np.full(n, np.nan) for q in params.percentiles},
    }
    pos = {int(z): i for i, z in enumerate(ids)}
    if params.percentiles:
        from minjiang.plugins.forestry.zonal import group_values

        uniq, start, count, v = group_values(state["zone"], state["value"])
        for zid, s0, c in zip(uniq.tolist(), start.tolist(), count.tolist(), strict=True):
            i = pos.get(zid)
            if i is None:
                continue
            vals = v[s0 : s0 + c]
            out["count"][i] = c
            out["sum"][i] = vals.sum()
            out["mean"][i] = vals.mean()
            out["std"][i] = vals.std()
            out["min"][i], out["max"][i] = vals.min(), vals.max()
            qs = np.percentile(vals, params.percentiles)
            for q, value in zip(params.percentiles, qs, strict=True):
                out[_pname(q)][i] = value
    else:
        from minjiang.kernels.labelstats import label_stats_finalize

        table = label_stats_finalize(state)
        for j, zid in enumerate(np.asarray(table["label"]).tolist()):
            i = pos.get(int(zid))
            if i is None:
                continue
            out["count"][i] = table["count"][j]
            if table["count"][j] > 0:
                for k in ("sum", "mean", "std", "min", "max"):
                    out[k][i] = table[k][j]
    for k, column in params.attributes.items():
        if k not in out:
            out[k] = list(column)
    return {"stats": out}


def _arrow_type(values: list[Any]) -> str:
    kinds = {type(v) for v in values if v is not None}
    if kinds <= {bool}:
        return "bool"
    if kinds <= {int}:
        return "int64"
    if kinds <= {int, float}:
        return "double"
    return "string"


def _zonal_expand(params: ZonalStatsParams, inputs: dict[str, Any]) -> list[SubStep]:
    where = "forestry.zonal_stats"
    zones = inputs["zones"]
    check_same_grid(where, {"values": inputs["values"], "zones": zones})
    attributes = dict(zones.attrs.get("zone_attributes") or {})
    if "zone" not in attributes:
        raise ContractError(
            f"{where}: input 'zones' carries no 'zone_attributes'; ingest the zones with "
            "forestry.zones"
        )
    attributes = {k: v if k != "zone" else [int(i) for i in v] for k, v in attributes.items()}
    clash = sorted(
        set(attributes) & (set(_STAT_COLUMNS) | {_pname(q) for q in params.percentiles}) - {"zone"}
    )
    for k in clash:  # a property named like a statistic is kept under a prefixed name
        attributes[f"attr_{k}"] = attributes.pop(k)
    inner = Operator(
        name="forestry.zonal_stats",
        version="1",
        inputs=(Input("values", dtypes=NUMERIC), Input("zones", dtypes=("i", "u"))),
        outputs=_zonal_outputs,
        pattern=Aggregate(zonal_partial, zonal_combine, zonal_finalize),
        params=_ZonalInner,
        description="Per-zone statistics.",
    )
    p = {
        "percentiles": list(params.percentiles),
        "attributes": attributes,
        "attribute_types": {k: _arrow_type(v) for k, v in attributes.items() if k != "zone"},
    }
    return [SubStep("zonal", inner, {"values": "values", "zones": "zones"}, p)]


# ---------------------------------------------------------------- tree tops
class TreeTopsParams(_Params):
    a: float = Field(
        default=2.0, ge=0, le=1e4, description="Window diameter intercept (CRS units)."
    )
    b: float = Field(default=0.1, ge=0, le=1e3, description="Window diameter per unit of height.")
    min_window: float = Field(default=1.0, ge=0, le=1e4, description="Smallest window diameter.")
    max_window: float = Field(default=10.0, gt=0, le=1e4, description="Largest window diameter.")
    min_height: float = Field(default=2.0, description="Lowest height of a tree top.")

    @model_validator(mode="after")
    def _order(self) -> TreeTopsParams:
        if self.min_window > self.max_window:
            raise ValueError("min_window must not exceed max_window")
        return self


def _cell(info: Any, where: str) -> tuple[float, float]:
    g = grid_of(info)
    if g is None:
        raise ContractError(
            f"{where}: input 'chm' carries no 'transform'; ingest it with forestry.raster"
        )
    if g.is_geographic():
        raise ContractError(
            f"{where}: input 'chm' is on a geographic CRS ({g.crs_name()}); windows are in "
            "linear units: project it first"
        )
    return g.res


def _tops_halo(params: TreeTopsParams, inputs: dict[str, Any]) -> dict[str, int]:
    from minjiang.plugins.forestry.treetops import max_radius_cells

    dx, dy = _cell(inputs["chm"], "forestry.tree_tops")
    ry, rx = max_radius_cells(params.max_window, dx, dy)
    return {"y": ry, "x": rx}


def tree_tops_partial(
    arrays: dict[str, Any], params: TreeTopsParams, ctx: BlockContext
) -> dict[str, Any]:
    """Tops of the block's interior, looking into the halo (= the largest window)."""
    import numpy as np
    from minjiang.kernels import to_host
    from minjiang.plugins.forestry.treetops import max_radius_cells, tree_tops

    attrs = ctx.attrs["chm"]
    t = [float(v) for v in attrs["transform"]]
    dx, dy = abs(t[0]), abs(t[4])
    ry, rx = max_radius_cells(params.max_window, dx, dy)
    z = np.asarray(to_host(arrays["chm"]), dtype=np.float64)
    (ylo, yhi), (xlo, xhi) = ctx.halo["y"], ctx.halo["x"]
    z = np.pad(z, ((ry - ylo, ry - yhi), (rx - xlo, rx - xhi)), constant_values=np.nan)
    ys, xs = ctx.region["y"], ctx.region["x"]
    # outside the raster is no data, whatever the boundary padding holds
    if ys.start == 0:
        z[:ry] = np.nan
    if ys.stop == ctx.sizes["y"]:
        z[z.shape[0] - ry :] = np.nan
    if xs.start == 0:
        z[:, :rx] = np.nan
    if xs.stop == ctx.sizes["x"]:
        z[:, z.shape[1] - rx :] = np.nan
    rows, cols = tree_tops(
        z,
        dx=dx,
        dy=dy,
        a=params.a,
        b=params.b,
        min_window=params.min_window,
        max_window=params.max_window,
        min_height=params.min_height,
        halo=(ry, rx),
    )
    h = z[rows + ry, cols + rx]
    grow, gcol = rows + ys.start, cols + xs.start
    return {
        "row": grow.astype(np.int64),
        "col": gcol.astype(np.int64),
        "x": t[2] + t[0] * (gcol + 0.5),
        "y": t[5] + t[4] * (grow + 0.5),
        "height": h,
        "window": np.clip(params.a + params.b * h, params.min_window, params.max_window),
    }


def tree_tops_combine(states: list[dict[str, Any]], params: TreeTopsParams) -> dict[str, Any]:
    """Concatenate the blocks' tops."""
    import numpy as np

    keys = ("row", "col", "x", "y", "height", "window")
    return {k: np.concatenate([np.asarray(s[k]) for s in states]) for k in keys}


def tree_tops_finalize(state: dict[str, Any], params: TreeTopsParams) -> dict[str, Any]:
    """The point table, in raster order."""
    import numpy as np

    order = np.lexsort((state["col"], state["row"]))
    return {"tops": {k: np.asarray(v)[order] for k, v in state.items()}}


# ---------------------------------------------------------------- canopy height
class CanopyHeightParams(_Params):
    buffer: int = Field(
        default=64,
        ge=2,
        le=4096,
        description="Cells of neighbouring points each task triangulates around its block "
        "(the halo). TIN triangles with an edge longer than buffer/2 cells are left out "
        "(NaN), so that every task's TIN is the whole TIN over its block.",
    )
    exclude_classes: list[int] = Field(
        default_factory=lambda: [7, 18],
        max_length=256,
        description="Classes left out of the DSM and the pit-free layers (ASPRS noise: 7, 18).",
    )
    pit_free: bool = Field(
        default=False, description="Also write 'chm_pitfree' (Khosravipour et al. 2014)."
    )
    thresholds: list[float] = Field(
        default_factory=lambda: [0.0, 2.0, 5.0, 10.0, 15.0],
        min_length=1,
        max_length=64,
        description="Height thresholds of the pit-free layers (z units; must include 0).",
    )
    max_edge: float | None = Field(
        default=None,
        gt=0,
        description="Longest triangle edge of the pit-free layers above 0 (CRS units; "
        "default 3 cells).",
    )

    @model_validator(mode="after")
    def _classes(self) -> CanopyHeightParams:
        if any(not 0 <= c <= 255 for c in self.exclude_classes):
            raise ValueError("exclude_classes must be LAS classes in [0, 255]")
        if 0.0 not in self.thresholds or any(t < 0 for t in self.thresholds):
            raise ValueError("thresholds must be >= 0 and include 0")
        return self


class _CanopyInner(CanopyHeightParams):
    points_per_cell: float = Field(gt=0)
    max_points: int = Field(ge=0)


#: bytes per point a task holds: the table's columns, float64 copies, Qhull's
#: triangulation (about two triangles per point, vertices and neighbours as int64)
_BYTES_PER_POINT = 400


def _canopy_memory(size: Any, params: _CanopyInner) -> int:
    cells = size.input_bytes // max(size.itemsize, 1)  # the block and its buffer
    points = min(int(cells * params.points_per_cell), params.max_points)
    layers = 2 + (len(params.thresholds) if params.pit_free else 0)
    return points * _BYTES_PER_POINT + layers * size.output_bytes + size.input_bytes


def _canopy_expand(params: CanopyHeightParams, inputs: dict[str, Any]) -> list[SubStep]:
    """Plan the map step with the file's point density in its memory projection."""
    info = inputs["grid"]
    g = _canopy_grid(info, "forestry.canopy_height")
    rows, cols = g.shape
    n = float(info.attrs.get("point_count", 0) or 0)
    # twice the mean density: a block over the dense part of the cloud still fits
    density = max(1.0, 2.0 * n / max(rows * cols, 1))
    inner = Operator(
        name="forestry.canopy_height",
        version="1",
        inputs=(
            Input("grid", dims=("y", "x"), dtypes=("i", "u")),
            Input("points", kind="table", tiled=True),
        ),
        outputs=_canopy_outputs,
        pattern=Map(canopy_height_kernel, halo=_canopy_halo, boundary="constant"),
        params=_CanopyInner,
        memory=_canopy_memory,
        description="DSM, DTM, CHM of a block from its points and a buffer of neighbours.",
    )
    p = {**params.model_dump(mode="json"), "points_per_cell": density, "max_points": int(n)}
    return [SubStep("canopy", inner, {"grid": "grid", "points": "points"}, p)]


def _canopy_grid(info: Any, where: str) -> Any:
    g = grid_of(info)
    if g is None or "cell" not in info.attrs:
        raise ContractError(
            f"{where}: input 'grid' carries no LiDAR grid ('transform', 'cell'); give the "
            "'count' array of a forestry.lidar ingest"
        )
    a, b, _, d, e, _ = g.transform
    if b != 0 or d != 0 or a <= 0 or e >= 0 or abs(a + e) > 1e-9 * a:
        raise ContractError(
            f"{where}: input 'grid' is not a north-up grid of square cells ({g.describe()}); "
            "ingest the points with forestry.lidar"
        )
    return g


def _canopy_outputs(params: CanopyHeightParams, inputs: dict[str, Any]) -> tuple[ArrayOutput, ...]:
    info = inputs["grid"]
    _canopy_grid(info, "forestry.canopy_height")
    g = _grid_attrs(info)
    z = str(info.attrs.get("vertical_units", "") or "")
    common = {**g, "units": z, "binning": info.attrs.get("binning", "")}
    outs = [
        ArrayOutput(
            "dsm",
            dtype="float64",
            attrs={**common, "long_name": "highest return per cell (NaN: no point)"},
        ),
        ArrayOutput(
            "dtm",
            dtype="float64",
            attrs={
                **common,
                "long_name": "TIN-linear interpolation of ground points (class 2) at cell "
                "centres (NaN outside their hull and in triangles longer than buffer/2)",
                "tin_max_edge": params.buffer * float(info.attrs["cell"]) / 2.0,
            },
        ),
        ArrayOutput("chm", dtype="float64", attrs={**common, "long_name": "max(dsm - dtm, 0)"}),
    ]
    if params.pit_free:
        outs.append(
            ArrayOutput(
                "chm_pitfree",
                dtype="float64",
                attrs={
                    **common,
                    "long_name": "pit-free CHM (Khosravipour et al. 2014): max of TIN layers "
                    "of first returns above each threshold",
                    "thresholds": list(params.thresholds),
                },
            )
        )
    return tuple(outs)


def _canopy_halo(params: CanopyHeightParams, inputs: dict[str, Any]) -> dict[str, int]:
    _canopy_grid(inputs["grid"], "forestry.canopy_height")
    return {"y": params.buffer, "x": params.buffer}


def canopy_height_kernel(
    arrays: dict[str, Any], params: CanopyHeightParams, ctx: BlockContext
) -> dict[str, Any]:
    """Map kernel: the block's DSM, DTM and CHM from its points and those of the buffer."""
    import numpy as np
    from minjiang.plugins.forestry.canopy import canopy_height

    a, _, left, _, _, top = (float(v) for v in ctx.attrs["grid"]["transform"])
    cell = a
    ys, xs = ctx.region["y"], ctx.region["x"]
    ny, nx = ctx.sizes["y"], ctx.sizes["x"]
    b = params.buffer
    table = arrays["points"]
    cols = {c: table.column(c).to_numpy() for c in ("x", "y", "z", "classification")}
    cols["return_number"] = table.column("return_number").to_numpy()
    # exactly the points of the block and its buffer, whatever tiles the parts cover
    row = np.floor((top - cols["y"]) / cell)
    col = np.floor((cols["x"] - left) / cell)
    keep = (
        (row >= max(ys.start - b, 0))
        & (row < min(ys.stop + b, ny))
        & (col >= max(xs.start - b, 0))
        & (col < min(xs.stop + b, nx))
    )
    out = canopy_height(
        cols["x"][keep],
        cols["y"][keep],
        cols["z"][keep],
        cols["classification"][keep],
        cols["return_number"][keep],
        left=left,
        top=top,
        cell=cell,
        shape=(ys.stop - ys.start, xs.stop - xs.start),
        origin=(ys.start, xs.start),
        exclude_classes=tuple(params.exclude_classes),
        pit_free=params.pit_free,
        thresholds=tuple(params.thresholds),
        max_edge=params.max_edge,
        tin_max_edge=b * cell / 2.0,
        backend="cpu",
    )
    return out


OPERATORS: tuple[Operator, ...] = (
    Operator(
        name="forestry.spectral_index",
        version="1",
        inputs=tuple(Input(b, dtypes=NUMERIC, optional=True) for b in BANDS),
        outputs=(),
        pattern=Composite(_index_expand),
        params=SpectralIndexParams,
        backends=("cpu", "gpu"),
        description="Any index of the Awesome Spectral Indices catalogue (spyndex) by name, or a "
        "formula over named bands; integers cast first, zero denominators give NaN.",
    ),
    Operator(
        name="forestry.dnbr",
        version="1",
        inputs=(Input("pre", dtypes=NUMERIC), Input("post", dtypes=NUMERIC)),
        outputs=(),
        pattern=Composite(_dnbr_expand),
        params=DnbrParams,
        backends=("cpu", "gpu"),
        description="dNBR, RdNBR, RBR and USGS (Key & Benson 2006) severity classes from pre- "
        "and post-fire NBR on one grid.",
    ),
    Operator(
        name="forestry.zonal_stats",
        version="1",
        inputs=(Input("values", dtypes=NUMERIC), Input("zones", dtypes=("i", "u"))),
        outputs=(),
        pattern=Composite(_zonal_expand),
        params=ZonalStatsParams,
        description="count, sum, mean, std, min, max and exact percentiles per zone (NaN "
        "excluded) -> table 'stats' with the zone attributes joined.",
    ),
    Operator(
        name="forestry.tree_tops",
        version="1",
        inputs=(Input("chm", dims=("y", "x"), dtypes=NUMERIC),),
        outputs=(
            TableOutput(
                "tops",
                {
                    "row": "int64",
                    "col": "int64",
                    "x": "double",
                    "y": "double",
                    "height": "double",
                    "window": "double",
                },
            ),
        ),
        pattern=Aggregate(
            tree_tops_partial,
            tree_tops_combine,
            tree_tops_finalize,
            halo=_tops_halo,
            boundary="constant",
        ),
        params=TreeTopsParams,
        description="Variable-window local maxima of a canopy height model (window from "
        "height, halo = the largest window) -> point table 'tops'.",
    ),
    Operator(
        name="forestry.canopy_height",
        version="1",
        inputs=(
            Input("grid", dims=("y", "x"), dtypes=("i", "u")),
            Input("points", kind="table", tiled=True),
        ),
        outputs=(),
        pattern=Composite(_canopy_expand),
        params=CanopyHeightParams,
        description="DSM (highest return), DTM (TIN of ground points), CHM = max(DSM - DTM, 0) "
        "and optionally the pit-free CHM, from a forestry.lidar ingest; each task "
        "triangulates its block's points plus a buffer.",
    ),
    Operator(
        name="forestry.terrain",
        version="1",
        inputs=(Input("dem", dims=("y", "x"), dtypes=NUMERIC),),
        outputs=_terrain_outputs,
        pattern=Map(terrain_kernel, halo={"y": 1, "x": 1}, boundary="nearest"),
        params=TerrainParams,
        backends=("cpu", "gpu"),
        memory=lambda size, params: 5 * size.input_bytes + 3 * size.output_bytes,
        description="Slope, aspect, hillshade (Horn 1981, GDAL conventions, NaN edges); "
        "geographic DEMs in metres per degree by latitude.",
    ),
    RESAMPLE,
)

"""The generic ``array`` operators and readers; the table of them is in
``minjiang.plugins.array``'s docstring."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from minjiang.core import (
    Aggregate,
    ArrayOutput,
    BlockContext,
    FullAxis,
    Input,
    Map,
    Operator,
    Reader,
    Reduce,
    State,
    StateArray,
    TableOutput,
)
from minjiang.core.errors import ContractError, ReaderError
from pydantic import BaseModel, ConfigDict, Field, field_validator

NUMERIC = ("f", "i", "u", "b")
_BAND_INPUTS = tuple("abcdefgh")


class _Params(BaseModel):
    # NaN and infinities are data, never parameters: refuse them at validation
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


_ARRAY_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"


# ---------------------------------------------------------------- band math
class BandMathParams(_Params):
    expression: str = Field(
        min_length=1,
        max_length=4096,
        description="Arithmetic over the inputs a..h, e.g. '(a - b) / (a + b)'.",
    )
    output: str = Field(
        default="result", pattern=_ARRAY_NAME, description="Name of the output array."
    )
    dtype: Literal["float32", "float64"] | None = Field(
        default=None,
        description="Output dtype (default: float32 when every input is float32, else float64).",
    )


def _band_outputs(params: BandMathParams, inputs: dict[str, Any]) -> tuple[ArrayOutput, ...]:
    from minjiang.kernels.bandmath import compile_expression

    try:
        expr = compile_expression(params.expression, list(inputs))
    except ValueError as err:
        raise ContractError(f"array.band_math: {err}") from None
    unused = set(expr.names) - set(inputs)
    if unused:
        raise ContractError(
            f"array.band_math: expression uses {sorted(unused)!r} but only {sorted(inputs)!r} are given"
        )
    import numpy as np

    used = [inputs[n] for n in expr.names]  # the kernel types its result from the arrays it reads
    dtype = params.dtype or (
        "float32" if all(np.dtype(i.dtype) == np.float32 for i in used) else "float64"
    )
    return (ArrayOutput(params.output, dtype=dtype),)


def _band_math_memory(size: Any, params: Any) -> int:
    # the input blocks and the output: one fused loop, no temporaries
    return size.input_bytes + size.output_bytes


def band_math_kernel(
    arrays: dict[str, Any], params: BandMathParams, ctx: BlockContext
) -> dict[str, Any]:
    from minjiang.kernels.bandmath import band_math

    out = None
    if ctx.backend == "cpu" and params.output in ctx.dtypes:
        # into the output memory a task worked in steps hands out step after step (the
        # stored dtype is the kernel's result dtype: _band_outputs types it the same way)
        out = ctx.empty(params.output, next(iter(arrays.values())).shape)
    return {params.output: band_math(params.expression, arrays, dtype=params.dtype, out=out)}


# ---------------------------------------------------------------- gaussian
class GaussianParams(_Params):
    sigma: float | dict[str, float] = Field(
        description="Standard deviation in cells (0 to 10000): one number, or per dim."
    )
    truncate: float = Field(
        default=4.0, gt=0, le=100, description="Radius = int(truncate * sigma + 0.5), as SciPy."
    )
    mode: Literal["reflect", "mirror", "nearest", "wrap", "constant"] = Field(
        default="reflect",
        description="How the array is extended beyond its edges (scipy.ndimage's modes).",
    )

    @field_validator("sigma")
    @classmethod
    def _nonneg(cls, v: Any) -> Any:
        values = v.values() if isinstance(v, dict) else [v]
        if any(not 0 <= s <= 10_000 for s in values):
            raise ValueError("sigma must lie in [0, 10000] cells")
        if isinstance(v, dict) and any(not 1 <= len(d) <= 64 for d in v):
            raise ValueError("sigma's keys must be dim names (1 to 64 characters)")
        return v


def _sigmas(params: GaussianParams, dims: tuple[str, ...]) -> list[float]:
    if isinstance(params.sigma, dict):
        unknown = set(params.sigma) - set(dims)
        if unknown:
            raise ContractError(
                f"array.gaussian: sigma names dims {sorted(unknown)!r} not in {dims!r}"
            )
        return [float(params.sigma.get(d, 0.0)) for d in dims]
    return [float(params.sigma)] * len(dims)


def _gaussian_halo(params: GaussianParams, inputs: dict[str, Any]) -> dict[str, int]:
    from minjiang.kernels.gaussian import gaussian_radius

    dims = tuple(inputs["x"].dims)
    return {
        d: gaussian_radius(s, params.truncate)
        for d, s in zip(dims, _sigmas(params, dims), strict=True)
    }


def _gaussian_outputs(params: GaussianParams, inputs: dict[str, Any]) -> tuple[ArrayOutput, ...]:
    x = inputs["x"]
    return (
        ArrayOutput(
            x.name,
            attrs={
                k: v for k, v in x.attrs.items() if k in ("units", "standard_name", "long_name")
            },
        ),
    )


def gaussian_kernel(
    arrays: dict[str, Any], params: GaussianParams, ctx: BlockContext
) -> dict[str, Any]:
    from minjiang.kernels.gaussian import gaussian_valid

    (name,) = ctx.outputs
    return {name: gaussian_valid(arrays["x"], _sigmas(params, ctx.dims), truncate=params.truncate)}


def _gaussian_memory(size: Any, params: Any) -> int:
    # A block at the array's edge is read, then copied into its padded shape (2 x the
    # padded input); the filter then writes the output beside the padded block (its
    # line buffers are cache-sized). Measured within 3 % on a 35 MiB corner block.
    return max(2 * size.input_bytes, size.input_bytes + size.output_bytes)


def _gaussian_compute(size: Any, params: Any) -> float:
    from minjiang.kernels.gaussian import separable_seconds

    return separable_seconds(size.input_bytes // max(size.itemsize, 1), size.halo)


def _float_out(dtype: Any) -> str:
    """float32 stays float32; everything else is computed and stored as float64."""
    import numpy as np

    return "float32" if np.dtype(dtype) == np.float32 else "float64"


# ---------------------------------------------------------------- reduce
class ReduceParams(_Params):
    dims: list[str] = Field(min_length=1, max_length=32, description="Dims to reduce over.")
    stat: Literal["mean", "std", "var", "min", "max", "count", "sum"] = Field(
        default="mean", description="The statistic over 'dims' (NaN skipped; count: valid cells)."
    )
    ddof: int = Field(
        default=0,
        ge=0,
        le=1_000_000,
        description="Delta degrees of freedom of std and var (divisor: valid count - ddof).",
    )


def _reduce_outputs(params: ReduceParams, inputs: dict[str, Any]) -> tuple[ArrayOutput, ...]:

    x = inputs["x"]
    dtype = "int64" if params.stat == "count" else _float_out(x.dtype)
    return (
        ArrayOutput(
            params.stat,
            dtype=dtype,
            attrs={"cell_methods": " ".join(f"{d}: {params.stat}" for d in params.dims)},
        ),
    )


def _moments_memory(size: Any, params: Any) -> int:
    # the block, float64 accumulators over bands of it (measured: a quarter of the
    # block at most) and the partial state or output, twice
    return size.input_bytes + size.input_bytes // 4 + 2 * size.output_bytes


def reduce_partial(
    arrays: dict[str, Any], params: ReduceParams, ctx: BlockContext
) -> dict[str, Any]:
    from minjiang.kernels.reductions import moments_partial

    axes = tuple(ctx.dims.index(d) for d in params.dims)
    return moments_partial(arrays["x"], axes, stats=params.stat)


def reduce_combine(states: list[dict[str, Any]], params: ReduceParams) -> dict[str, Any]:
    """Merge the moments states in order (pairwise, left to right)."""
    from minjiang.kernels.reductions import moments_combine

    acc = states[0]
    for state in states[1:]:
        acc = moments_combine(acc, state)
    return acc


def reduce_state(params: ReduceParams, inputs: Mapping[str, Any]) -> State:
    """What ``reduce_partial`` returns per output cell: the arrays of the moments state
    ``params.stat`` needs (``kernels.reductions.moment_keys``; a mean's: count, mean)."""
    from minjiang.kernels.reductions import moment_keys

    return State(
        tuple(
            StateArray(k, "int64" if k == "count" else "float64") for k in moment_keys(params.stat)
        )
    )


def reduce_finalize(
    state: dict[str, Any], params: ReduceParams, ctx: BlockContext
) -> dict[str, Any]:
    from minjiang.kernels.reductions import moments_finalize

    return {params.stat: moments_finalize(state, params.stat, ddof=params.ddof)}


# ---------------------------------------------------------------- quantile
class QuantileParams(_Params):
    dim: str = Field(
        default="time",
        min_length=1,
        max_length=64,
        description="The dim to take quantiles along (read whole).",
    )
    q: float | list[float] = Field(description="Quantile(s) in [0, 1], e.g. 0.9 (at most 1000).")

    @field_validator("q")
    @classmethod
    def _in_range(cls, v: Any) -> Any:
        values = v if isinstance(v, list) else [v]
        if not values or any(not 0.0 <= q <= 1.0 for q in values):
            raise ValueError("every q must lie in [0, 1]")
        if len(values) > 1000:
            raise ValueError(f"{len(values)} quantiles; give at most 1000")
        return v


def _quantile_outputs(params: QuantileParams, inputs: dict[str, Any]) -> tuple[ArrayOutput, ...]:
    import numpy as np

    x = inputs["x"]
    dtype = _float_out(x.dtype)
    kept = tuple(d for d in x.dims if d != params.dim)
    if isinstance(params.q, list):
        return (
            ArrayOutput(
                "quantile",
                dtype=dtype,
                dims=("q", *kept),
                sizes={"q": len(params.q)},
                coords={"q": np.asarray(params.q, dtype=np.float64)},
            ),
        )
    return (ArrayOutput("quantile", dtype=dtype, dims=kept, attrs={"quantile": params.q}),)


def _quantile_memory(size: Any, params: Any) -> int:
    # the block and its lines copied into rows (sorted in place); the float64 result
    # and its cast to the output dtype
    return 2 * size.input_bytes + 2 * size.output_bytes


def quantile_kernel(
    arrays: dict[str, Any], params: QuantileParams, ctx: BlockContext
) -> dict[str, Any]:
    from minjiang.kernels.reductions import nanquantile

    return {"quantile": nanquantile(arrays["x"], params.q, axis=ctx.dims.index(params.dim))}


# ---------------------------------------------------------------- day-of-year climatology
class DoyParams(_Params):
    pass


def _day_of_year(times: Any) -> Any:
    """1-based day of year for datetime64 or cftime values."""
    import numpy as np

    values = np.asarray(times)
    if values.dtype.kind == "M":
        days = values.astype("datetime64[D]")
        years = values.astype("datetime64[Y]")
        return (days - years.astype("datetime64[D]")).astype(np.int64) + 1
    return np.asarray([t.timetuple().tm_yday for t in values], dtype=np.int64)


def _block_doy_index(ctx: BlockContext) -> Any:
    """0-based day of year of every time step of the block."""
    if "time" not in ctx.coords:
        raise ContractError(
            f"{ctx.operator}: input has no 'time' coordinate to take the day of year from"
        )
    return _day_of_year(ctx.coords["time"]) - 1


def _time_first(x: Any, op: str) -> None:
    if not x.dims or x.dims[0] != "time":
        raise ContractError(f"{op}: input dims {tuple(x.dims)!r} must start with 'time'")


def _doy_outputs(params: DoyParams, inputs: dict[str, Any]) -> tuple[ArrayOutput, ...]:
    import numpy as np

    x = inputs["x"]
    _time_first(x, "array.doy_climatology")
    return (
        ArrayOutput(
            "climatology",
            dtype=_float_out(x.dtype),
            dims=("doy", *x.dims[1:]),
            sizes={"doy": 366},
            coords={"doy": np.arange(1, 367)},
        ),
    )


def _doy_climatology_memory(size: Any, params: Any) -> int:
    # the block; float64 sums and counts per day of year and cell (3 x the float32
    # output) and the output
    return size.input_bytes + 4 * size.output_bytes


def _doy_anomaly_memory(size: Any, params: Any) -> int:
    # x, the climatology (inputs) and the output; the climatology once more as float64
    climatology = max(size.input_bytes - size.output_bytes, 0)
    return size.input_bytes + size.output_bytes + 2 * climatology


def doy_climatology_kernel(
    arrays: dict[str, Any], params: DoyParams, ctx: BlockContext
) -> dict[str, Any]:
    from minjiang.kernels.groupby import group_mean

    return {"climatology": group_mean(arrays["x"], _block_doy_index(ctx), 366)}


def doy_anomaly_kernel(
    arrays: dict[str, Any], params: DoyParams, ctx: BlockContext
) -> dict[str, Any]:
    from minjiang.kernels.groupby import subtract_group

    return {"anomaly": subtract_group(arrays["x"], _block_doy_index(ctx), arrays["climatology"])}


def _anomaly_outputs(params: DoyParams, inputs: dict[str, Any]) -> tuple[ArrayOutput, ...]:
    return (ArrayOutput("anomaly", dtype=_float_out(inputs["x"].dtype)),)


def _deseason_outputs(params: DoyParams, inputs: dict[str, Any]) -> tuple[ArrayOutput, ...]:
    _time_first(inputs["x"], "array.deseason")
    return _anomaly_outputs(params, inputs)


def deseason_kernel(arrays: dict[str, Any], params: DoyParams, ctx: BlockContext) -> dict[str, Any]:
    """Climatology and anomaly of a whole-time pencil in one pass; the climatology is
    rounded to the output dtype first, as ``array.doy_climatology`` stores it, so the
    result equals ``array.doy_anomaly`` of ``array.doy_climatology`` bit for bit."""
    from minjiang.kernels.groupby import group_mean, subtract_group

    x = arrays["x"]
    doy = _block_doy_index(ctx)
    clim = group_mean(x, doy, 366).astype(_float_out(x.dtype), copy=False)
    return {"anomaly": subtract_group(x, doy, clim)}


def _deseason_memory(size: Any, params: Any) -> int:
    # the pencil and the anomaly; per cell and day of year a float64 sum, a count and
    # the climatology in the output dtype (16 bytes)
    steps = max(1, size.block_shape[0]) if size.block_shape else 1
    per_step = size.input_bytes // steps // max(size.itemsize, 1)
    return size.input_bytes + size.output_bytes + 16 * 366 * per_step


# ---------------------------------------------------------------- label stats
class LabelStatsParams(_Params):
    ignore: int | None = Field(
        default=0,
        ge=-(1 << 63),
        le=(1 << 63) - 1,
        description="Label to skip (background); null keeps all.",
    )


def _label_stats_memory(size: Any, params: Any) -> int:
    # values and labels; the per-label tables are small (an eighth covers them)
    return size.input_bytes + size.input_bytes // 8 + 2 * size.output_bytes


def label_stats_partial(
    arrays: dict[str, Any], params: LabelStatsParams, ctx: BlockContext
) -> dict[str, Any]:
    from minjiang.kernels.labelstats import label_stats_partial as partial

    return partial(arrays["values"], arrays["labels"], ignore=params.ignore)


def label_stats_combine(states: list[dict[str, Any]], params: LabelStatsParams) -> dict[str, Any]:
    from minjiang.kernels.labelstats import label_stats_combine as combine

    return combine(states)


def label_stats_finalize(state: dict[str, Any], params: LabelStatsParams) -> dict[str, Any]:
    from minjiang.kernels.labelstats import label_stats_finalize as finalize

    return {"stats": finalize(state)}


OPERATORS: tuple[Operator, ...] = (
    Operator(
        name="array.band_math",
        version="1",
        inputs=tuple(Input(n, dtypes=NUMERIC, optional=n != "a") for n in _BAND_INPUTS),
        outputs=_band_outputs,
        pattern=Map(band_math_kernel),
        params=BandMathParams,
        memory=_band_math_memory,
        backends=("cpu", "gpu"),
        description="Elementwise arithmetic expression over inputs a..h (one fused loop: numba or CUDA).",
    ),
    Operator(
        name="array.gaussian",
        version="1",
        inputs=(Input("x", dtypes=("f",)),),
        outputs=_gaussian_outputs,
        pattern=Map(gaussian_kernel, halo=_gaussian_halo, boundary=lambda p: p.mode),
        params=GaussianParams,
        memory=_gaussian_memory,
        compute=_gaussian_compute,
        backends=("cpu", "gpu"),
        description="n-D Gaussian filter with SciPy's weights; keeps the input's array name; halo = radius, "
        "boundary only at the array edge.",
    ),
    Operator(
        name="array.reduce",
        version="1",
        inputs=(Input("x", dtypes=NUMERIC),),
        outputs=_reduce_outputs,
        pattern=Reduce(
            dims=lambda p, i: tuple(p.dims),
            partial=reduce_partial,
            combine=reduce_combine,
            state=reduce_state,
            finalize=reduce_finalize,
        ),
        params=ReduceParams,
        memory=_moments_memory,
        backends=("cpu", "gpu"),
        description="NaN-skipping mean/std/var/min/max/count/sum over dims.",
    ),
    Operator(
        name="array.quantile",
        version="1",
        inputs=(Input("x", dtypes=("f",)),),
        outputs=_quantile_outputs,
        pattern=FullAxis(dims=lambda p, i: (p.dim,), kernel=quantile_kernel),
        params=QuantileParams,
        memory=_quantile_memory,
        backends=("cpu", "gpu"),
        description="NaN-skipping quantiles (linear interpolation, as numpy.nanquantile) along one dim.",
    ),
    Operator(
        name="array.doy_climatology",
        version="1",
        inputs=(Input("x", dtypes=("f",)),),
        outputs=_doy_outputs,
        pattern=FullAxis(dims=("time",), kernel=doy_climatology_kernel),
        params=DoyParams,
        memory=_doy_climatology_memory,
        backends=("cpu", "gpu"),
        description="Mean per day of year (1..366) along 'time', NaN-skipping.",
    ),
    Operator(
        name="array.doy_anomaly",
        version="1",
        inputs=(Input("x", dtypes=("f",)), Input("climatology", dtypes=("f",), whole=("doy",))),
        outputs=_anomaly_outputs,
        pattern=Map(doy_anomaly_kernel),
        params=DoyParams,
        memory=_doy_anomaly_memory,
        backends=("cpu", "gpu"),
        description="x minus its day-of-year climatology.",
    ),
    Operator(
        name="array.deseason",
        version="1",
        inputs=(Input("x", dtypes=("f",)),),
        outputs=_deseason_outputs,
        pattern=FullAxis(dims=("time",), kernel=deseason_kernel),
        params=DoyParams,
        memory=_deseason_memory,
        backends=("cpu", "gpu"),
        description="x minus its own day-of-year climatology, in one pass over whole-time "
        "pencils (array.doy_anomaly of array.doy_climatology, without storing the climatology).",
    ),
    Operator(
        name="array.label_stats",
        version="1",
        inputs=(Input("values", dtypes=NUMERIC), Input("labels", dtypes=("i", "u"))),
        outputs=(
            TableOutput(
                "stats",
                {
                    "label": "int64",
                    "count": "int64",
                    "sum": "double",
                    "mean": "double",
                    "std": "double",
                    "min": "double",
                    "max": "double",
                },
            ),
        ),
        pattern=Aggregate(label_stats_partial, label_stats_combine, label_stats_finalize),
        params=LabelStatsParams,
        memory=_label_stats_memory,
        backends=("cpu", "gpu"),
        description="Per-label count, sum, mean, std, min, max → table 'stats'.",
    ),
)


# ---------------------------------------------------------------- readers
class ZarrReader(Reader):
    """Any Zarr (v2 or v3) group whose arrays carry dimension names."""

    name = "array.zarr"
    version = "1"
    description = "A Zarr group (v2 or v3) with named dimensions."
    extensions = (".zarr",)
    supports_directories = True
    supports_multiple = False

    def guess_can_open(self, path: Any) -> bool:
        p = Path(path)
        return p.is_dir() and ((p / "zarr.json").exists() or (p / ".zgroup").exists())

    def source_files(self, paths: Any) -> list[Path]:
        if len(paths) != 1:
            raise ReaderError(
                f"array.zarr: give exactly one Zarr group folder, not {len(paths)} paths"
            )
        if not Path(paths[0]).is_dir():
            what = "is not a folder" if Path(paths[0]).exists() else "does not exist"
            raise ReaderError(
                f"array.zarr: {str(paths[0])[:200]!r} {what}; give the Zarr group's folder"
            )
        return super().source_files(paths)

    def open(self, files: list[Path], params: Any) -> Any:
        import os

        import xarray as xr

        root = Path(
            os.path.commonpath([str(f) for f in files])
        )  # the group folder holds every file
        try:
            return xr.open_zarr(root, chunks={}, consolidated=False)
        except Exception as err:
            raise ReaderError(
                f"array.zarr: cannot open {root.name!r} as a Zarr group: {type(err).__name__}: {err}"
            ) from None

    def chunks(self, ds: Any, params: Any) -> dict[str, int] | None:
        chunks: dict[str, int] = {}
        for var in ds.data_vars.values():
            for dim, ch in zip(var.dims, var.encoding.get("chunks") or var.shape, strict=True):
                chunks[dim] = min(chunks.get(dim, ch), ch)
        return chunks or None


class NetCDFReader(Reader):
    """NetCDF4/HDF5 or NetCDF3 files, concatenated along their record dimension."""

    name = "array.netcdf"
    version = "1"
    description = "NetCDF files (h5netcdf, then netCDF4, then scipy)."
    extensions = (".nc", ".nc4", ".netcdf", ".cdf")

    def open(self, files: list[Path], params: Any) -> Any:
        import xarray as xr

        parts = []
        for f in files:
            last: Exception | None = None
            for engine in ("h5netcdf", "netcdf4", "scipy"):
                try:
                    parts.append(xr.open_dataset(f, engine=engine, chunks={}))
                    break
                except Exception as err:
                    last = err
            else:
                raise ReaderError(
                    f"array.netcdf: {f.name!r} is not a readable NetCDF file "
                    f"({type(last).__name__}); check that the file is complete"
                )
        if len(parts) == 1:
            return parts[0]
        return xr.concat(
            parts, dim="time", data_vars="minimal", coords="minimal", compat="override"
        )

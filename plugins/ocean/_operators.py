"""The ocean operators: contracts, chunk patterns and output templates.

Kernels are named by dotted path (``minjiang.plugins.ocean._kernels:...``) so tasks
import them on the workers; nothing heavy is imported here. Inputs are (time, y, x)
arrays whatever the two grid dims are called (``lat``/``lon`` for regular grids,
``y``/``x`` for curvilinear ones, as ``ocean.netcdf`` writes them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from minjiang.core import (
    Aggregate,
    ArrayOutput,
    Composite,
    FullAxis,
    Input,
    Map,
    Operator,
    Reduce,
    State,
    StateArray,
    SubStep,
    TableOutput,
    TaskSize,
)
from minjiang.core.errors import ContractError
from minjiang.plugins.ocean._params import (
    AnomalyParams,
    ClimatologyParams,
    EOFParams,
    MHWParams,
    RegionalMeanParams,
    RunningMeanParams,
)

__all__ = ["operators"]

_K = "minjiang.plugins.ocean._kernels"
_FLOAT = ("f",)


def _grid(inputs: Mapping[str, Any], name: str, op: str) -> tuple[str, str]:
    info = inputs[name]
    dims = tuple(info.dims)
    if len(dims) != 3 or dims[0] != "time":
        raise ContractError(
            f"{op}: input {name!r} has dims {dims!r}; expected (time, <y>, <x>) such as ('time', 'lat', 'lon'). "
            "Ingest it with ocean.netcdf (params.isel picks one depth level)"
        )
    return dims[1], dims[2]


def _units(inputs: Mapping[str, Any], name: str) -> dict[str, Any]:
    units = inputs[name].attrs.get("units")
    return {"units": units} if units else {}


# ------------------------------------------------------------------ climatology
def _clim_outputs(params: ClimatologyParams, inputs: Mapping[str, Any]) -> tuple[ArrayOutput, ...]:
    import numpy as np

    ydim, xdim = _grid(inputs, "sst", "ocean.climatology")
    axis, n = ("doy", 366) if params.frequency == "daily" else ("month", 12)
    coords = {axis: np.arange(1, n + 1, dtype=np.int32)}
    base = _units(inputs, "sst")
    what = "day of the 366-day year" if axis == "doy" else "calendar month"
    return (
        ArrayOutput(
            "seas",
            dtype="float64",
            dims=(axis, ydim, xdim),
            sizes={axis: n},
            coords=coords,
            attrs={**base, "long_name": f"climatological mean by {what}"},
        ),
        ArrayOutput(
            "thresh",
            dtype="float64",
            dims=(axis, ydim, xdim),
            sizes={axis: n},
            coords=coords,
            attrs={**base, "long_name": f"{params.percentile:g}th percentile by {what}"},
        ),
    )


def _cells(size: TaskSize) -> int:
    """Cells of the task's block over the primary input's dims (time, y, x)."""
    n = 1
    for b in size.block_shape:
        n *= int(b)
    return n


def _clim_memory(size: TaskSize, params: Any) -> int:
    # the series, two float64 working copies of it (dense pools, sorted in place) and
    # the two float64 outputs
    return size.input_bytes + 2 * 8 * _cells(size) + size.output_bytes


def _anomaly_memory(size: TaskSize, params: Any) -> int:
    # sst and the climatology (inputs); the climatology gathered onto every time step
    # in float64 and the float64 difference, before the cast to the output
    return size.input_bytes + 2 * 8 * _cells(size)


CLIMATOLOGY = Operator(
    name="ocean.climatology",
    version="1",
    inputs=(Input("sst", dtypes=_FLOAT),),
    outputs=_clim_outputs,
    pattern=FullAxis(dims=("time",), kernel=f"{_K}:climatology"),
    params=ClimatologyParams,
    memory=_clim_memory,
    description="Daily (Hobday et al. 2016) or monthly climatology and percentile threshold per cell.",
    backends=("cpu", "gpu"),
)


# ------------------------------------------------------------------ anomaly
def _anomaly_outputs(params: AnomalyParams, inputs: Mapping[str, Any]) -> tuple[ArrayOutput, ...]:
    _grid(inputs, "sst", "ocean.anomaly")
    ref = inputs.get(params.reference)
    if ref is None:
        raise ContractError(
            f"ocean.anomaly: params.reference is {params.reference!r} but no input {params.reference!r} was given; "
            f"bind it to the climatology, e.g. inputs={{'sst': ..., {params.reference!r}: <climatology>}}"
        )
    if ref.dims[0] not in ("doy", "month"):
        raise ContractError(
            f"ocean.anomaly: input {params.reference!r} has dims {tuple(ref.dims)!r}; expected ('doy'|'month', ...) "
            "from ocean.climatology"
        )
    return (
        ArrayOutput(
            "anomaly",
            attrs={**_units(inputs, "sst"), "long_name": f"anomaly from {params.reference}"},
        ),
    )


ANOMALY = Operator(
    name="ocean.anomaly",
    version="1",
    inputs=(
        Input("sst", dtypes=_FLOAT),
        Input("seas", dtypes=_FLOAT, whole=("doy", "month"), optional=True),
        Input("thresh", dtypes=_FLOAT, whole=("doy", "month"), optional=True),
    ),
    outputs=_anomaly_outputs,
    pattern=Map(kernel=f"{_K}:anomaly"),
    params=AnomalyParams,
    memory=_anomaly_memory,
    description="Departure from a daily (day-of-year) or monthly climatology.",
    backends=("cpu", "gpu"),
)


# ------------------------------------------------------------------ marine heatwaves
SUMMARY_ATTRS = {
    "count": {"long_name": "events starting in the year", "units": "1"},
    "days": {"long_name": "days of the year within an event", "units": "days"},
    "intensity_mean": {"long_name": "mean intensity of the events starting in the year"},
    "intensity_max": {"long_name": "largest peak intensity of the events starting in the year"},
    "intensity_cumulative": {
        "long_name": "summed cumulative intensity of the events starting in the year"
    },
}


def _mhw_outputs(params: MHWParams, inputs: Mapping[str, Any]) -> tuple[Any, ...]:
    import numpy as np
    from minjiang.plugins.ocean._kernels import event_columns, year_range

    ydim, xdim = _grid(inputs, "sst", "ocean.marine_heatwaves")
    for name in ("seas", "thresh"):
        if next(iter(inputs[name].dims)) != "doy":
            raise ContractError(
                f"ocean.marine_heatwaves: input {name!r} has dims {tuple(inputs[name].dims)!r}; expected a daily "
                "climatology ('doy', ...) from ocean.climatology with frequency='daily'"
            )
    y0, y1 = year_range(params, inputs["sst"].attrs, "ocean.marine_heatwaves")
    years = np.arange(y0, y1 + 1, dtype=np.int32)
    units = _units(inputs, "sst")
    arrays = tuple(
        ArrayOutput(
            name,
            dtype="float32",
            dims=("year", ydim, xdim),
            sizes={"year": years.size},
            coords={"year": years},
            attrs={**(units if name.startswith("intensity") else {}), **attrs},
        )
        for name, attrs in SUMMARY_ATTRS.items()
    )
    return (*arrays, TableOutput("events", columns=event_columns()))


def _mhw_memory(size: TaskSize, params: Any) -> int:
    # the inputs; the series in float64, the climatology and the threshold spread over
    # every time step (float64 each); the yearly grids and the events, twice
    return size.input_bytes + 3 * 8 * _cells(size) + 2 * size.output_bytes


def _regional_memory(size: TaskSize, params: Any) -> int:
    # the block and the weights, float64 band sums (a quarter of the block at most)
    return size.input_bytes + size.input_bytes // 4 + 2 * size.output_bytes


def _running_memory(size: TaskSize, params: Any) -> int:
    # the block; its float64 copy, the float64 output and the windowed means
    return size.input_bytes + 3 * 8 * _cells(size)


MARINE_HEATWAVES = Operator(
    name="ocean.marine_heatwaves",
    version="1",
    inputs=(
        Input("sst", dtypes=_FLOAT),
        # "month" is accepted here only so that a monthly climatology gets a clear error
        Input("seas", dtypes=_FLOAT, whole=("doy", "month")),
        Input("thresh", dtypes=_FLOAT, whole=("doy", "month")),
        Input("lat", dtypes=_FLOAT, optional=True),
        Input("lon", dtypes=_FLOAT, optional=True),
    ),
    outputs=_mhw_outputs,
    pattern=FullAxis(dims=("time",), kernel=f"{_K}:marine_heatwaves"),
    params=MHWParams,
    memory=_mhw_memory,
    description="Marine heatwave (or cold spell) events per cell with Hobday et al. (2016, 2018) metrics.",
    backends=("cpu", "gpu"),
)


# ------------------------------------------------------------------ regional means
def _spatial_dims(params: Any, inputs: Mapping[str, Any]) -> tuple[str, str]:
    return _grid(inputs, "sst", "ocean.regional_mean")


def _regional_outputs(
    params: RegionalMeanParams, inputs: Mapping[str, Any]
) -> tuple[ArrayOutput, ...]:
    import numpy as np

    _grid(inputs, "sst", "ocean.regional_mean")
    names = [b.name for b in params.boxes()]
    coords = {"region": np.arange(len(names), dtype=np.int32)}
    common = {"regions": names, "weights": params.weights}
    return (
        ArrayOutput(
            "mean",
            dtype="float64",
            dims=("region", "time"),
            sizes={"region": len(names)},
            coords=coords,
            attrs={**_units(inputs, "sst"), **common, "long_name": "area-weighted regional mean"},
        ),
        ArrayOutput(
            "weight",
            dtype="float64",
            dims=("region", "time"),
            sizes={"region": len(names)},
            coords=coords,
            attrs={**common, "long_name": "sum of the weights of the cells with data"},
        ),
    )


def _regional_state(params: RegionalMeanParams, inputs: Mapping[str, Any]) -> State:
    """Σw·x and Σw per time step and region: (time block, regions) each."""
    n = len(params.boxes())
    return State((StateArray("sum", "float64", (n,)), StateArray("weight", "float64", (n,))))


REGIONAL_MEAN = Operator(
    name="ocean.regional_mean",
    version="1",
    inputs=(
        Input("sst", dtypes=_FLOAT),
        Input("cell_area", dtypes=_FLOAT, optional=True),
        Input("lat", dtypes=_FLOAT, optional=True),
        Input("lon", dtypes=_FLOAT, optional=True),
        Input("mask", optional=True),
    ),
    outputs=_regional_outputs,
    pattern=Reduce(
        dims=_spatial_dims,
        partial=f"{_K}:regional_partial",
        combine=f"{_K}:regional_combine",
        finalize=f"{_K}:regional_finalize",
        state=_regional_state,
    ),
    params=RegionalMeanParams,
    memory=_regional_memory,
    description="Area-weighted means over boxes (Niño regions, dateline-crossing boxes) as time series.",
    backends=("cpu", "gpu"),
)


def _running_outputs(
    params: RunningMeanParams, inputs: Mapping[str, Any]
) -> tuple[ArrayOutput, ...]:
    if "time" not in tuple(inputs["x"].dims):
        raise ContractError(
            f"ocean.running_mean: input 'x' has dims {tuple(inputs['x'].dims)!r}; it needs 'time'"
        )
    return (
        ArrayOutput(
            "running_mean",
            dtype="float64",
            attrs={
                **_units(inputs, "x"),
                "window": params.window,
                "long_name": f"centred {params.window}-step running mean",
            },
        ),
    )


RUNNING_MEAN = Operator(
    name="ocean.running_mean",
    version="1",
    inputs=(Input("x", dtypes=_FLOAT),),
    outputs=_running_outputs,
    pattern=FullAxis(dims=("time",), kernel=f"{_K}:running_mean"),
    params=RunningMeanParams,
    memory=_running_memory,
    description="Centred running mean along time (the ONI is the 3-month mean of the Niño3.4 anomaly).",
    backends=("cpu", "gpu"),
)


# ------------------------------------------------------------------ EOF
_MODE_COLUMNS = {
    "mode": "int32",
    "time_index": "int32",
    "u": "double",
    "sigma": "double",
    "eigenvalue": "double",
    "variance_fraction": "double",
}


def _eof_gram_outputs(params: EOFParams, inputs: Mapping[str, Any]) -> tuple[TableOutput, ...]:
    _grid(inputs, "x", "ocean.eof")
    return (TableOutput("modes", columns=_MODE_COLUMNS),)


def _eof_outputs(params: EOFParams, inputs: Mapping[str, Any]) -> tuple[ArrayOutput, ...]:
    import numpy as np

    ydim, xdim = _grid(inputs, "x", "ocean.eof")
    k = params.n_modes
    coords = {"mode": np.arange(1, k + 1, dtype=np.int32)}
    return (
        ArrayOutput(
            "eofs",
            dtype="float64",
            dims=("mode", ydim, xdim),
            sizes={"mode": k},
            coords=coords,
            attrs={"long_name": "EOFs (unit norm, weighted space)", "weights": params.weights},
        ),
        ArrayOutput(
            "pcs",
            dtype="float64",
            dims=("mode", "time"),
            sizes={"mode": k},
            coords=coords,
            attrs={**_units(inputs, "x"), "long_name": "principal components (unscaled)"},
        ),
        ArrayOutput(
            "variance_fraction",
            dtype="float64",
            dims=("mode",),
            sizes={"mode": k},
            coords=coords,
            attrs={"long_name": "fraction of the total (weighted) variance", "units": "1"},
        ),
        ArrayOutput(
            "eigenvalues",
            dtype="float64",
            dims=("mode",),
            sizes={"mode": k},
            coords=coords,
            attrs={"long_name": "eigenvalues of the covariance matrix (sigma**2 / (n_time - 1))"},
        ),
    )


def _eof_gram_memory(size: TaskSize, params: Any) -> int:
    # the block, its weighted float64 anomaly, and the time x time Gram matrix twice
    steps = int(size.block_shape[0]) if size.block_shape else 1
    return size.input_bytes + 8 * _cells(size) + 2 * 8 * steps * steps


def _eof_project_memory(size: TaskSize, params: Any) -> int:
    # the block; its float64 copy, anomaly and weighted anomaly; the EOFs twice
    return size.input_bytes + 3 * 8 * _cells(size) + 2 * size.output_bytes


_EOF_INPUTS = (
    Input("x", dtypes=_FLOAT, whole=("time",)),
    Input("weights", dtypes=_FLOAT, optional=True),
    Input("cell_area", dtypes=_FLOAT, optional=True),
    Input("lat", dtypes=_FLOAT, optional=True),
    Input("lon", dtypes=_FLOAT, optional=True),
)

EOF_GRAM = Operator(
    name="ocean.eof_gram",
    version="1",
    inputs=_EOF_INPUTS,
    outputs=_eof_gram_outputs,
    pattern=Aggregate(
        partial=f"{_K}:eof_partial", combine=f"{_K}:eof_combine", finalize=f"{_K}:eof_finalize"
    ),
    params=EOFParams,
    memory=_eof_gram_memory,
    description="First stage of ocean.eof: the time × time Gram matrix summed over blocks, and its modes.",
    backends=("cpu", "gpu"),
)

EOF_PROJECT = Operator(
    name="ocean.eof_project",
    version="1",
    inputs=(
        Input("x", dtypes=_FLOAT),
        Input("modes", kind="table"),
        *_EOF_INPUTS[1:],
    ),
    outputs=_eof_outputs,
    pattern=FullAxis(dims=("time",), kernel=f"{_K}:eof_project"),
    params=EOFParams,
    memory=_eof_project_memory,
    description="Second stage of ocean.eof: EOF patterns by projecting each block on the modes.",
    backends=("cpu", "gpu"),
)


def _eof_expand(params: EOFParams, inputs: Mapping[str, Any]) -> list[SubStep]:
    extra = {k: k for k in ("weights", "cell_area", "lat", "lon") if k in inputs}
    p = params.model_dump(mode="json")
    return [
        SubStep("gram", EOF_GRAM, inputs={"x": "x", **extra}, params=p),
        SubStep("project", EOF_PROJECT, inputs={"x": "x", "modes": "gram", **extra}, params=p),
    ]


EOF = Operator(
    name="ocean.eof",
    version="1",
    inputs=_EOF_INPUTS,
    outputs=_eof_outputs,
    pattern=Composite(expand=_eof_expand),
    params=EOFParams,
    description="EOF/PCA of anomalies with area weights and a land mask: Gram matrix by blocks, then projection.",
    backends=("cpu", "gpu"),
)


def operators() -> list[Operator]:
    """Every operator of the ocean plugin."""
    return [
        CLIMATOLOGY,
        ANOMALY,
        MARINE_HEATWAVES,
        REGIONAL_MEAN,
        RUNNING_MEAN,
        EOF,
        EOF_GRAM,
        EOF_PROJECT,
    ]

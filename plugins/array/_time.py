"""``array.resample_time``: a series onto a coarser calendar frequency (daily to
monthly, seasonal or annual) with a declared aggregation, on its own calendar.

The periods come from the ``time`` coordinate at plan time (``PlanInput.coord``), so
the output's length and its ``time`` coordinate (each period's first day) are known
before anything runs; each task then holds the whole time axis for a block of the
other dims (a full-axis step) and reduces it period by period with
:func:`minjiang.kernels.groupby.group_reduce`. Calendars: numpy ``datetime64`` times
(the standard calendar) and cftime dates of any calendar (``noleap``, ``360_day``…),
whose periods are counted on that calendar and whose output keeps it.
"""

from __future__ import annotations

import itertools
from typing import Any, Literal

from minjiang.core import ArrayOutput, BlockContext, FullAxis, Input, Operator
from minjiang.core.errors import ContractError
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RESAMPLE_TIME", "time_periods"]

Freq = Literal["month", "season", "year"]
#: CF cell_methods names of the reductions
_CF = {"mean": "mean", "sum": "sum", "min": "minimum", "max": "maximum", "count": "count"}
#: first month of each meteorological season (DJF counts December with the next year's
#: January and February, and is labelled by its December, as CF and xarray's QS-DEC)
_SEASON_START = {12: 12, 1: 12, 2: 12, 3: 3, 4: 3, 5: 3, 6: 6, 7: 6, 8: 6, 9: 9, 10: 9, 11: 9}


class ResampleTimeParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    freq: Freq = Field(
        description="month, season (DJF, MAM, JJA, SON; DJF labelled by its December) or "
        "year: the periods, on the series' own calendar."
    )
    how: Literal["mean", "sum", "min", "max", "count"] = Field(
        description="The aggregation over each period (NaN skipped): mean, sum, min, max "
        "of the valid values, or their count."
    )
    min_valid: int = Field(
        default=1,
        ge=1,
        le=1_000_000,
        description="A period with fewer valid values at a cell is NaN there (count excepted).",
    )


def _year_month(times: Any) -> tuple[list[int], list[int]]:
    import numpy as np

    values = np.asarray(times)
    if values.dtype.kind == "M":
        months = values.astype("datetime64[M]").astype(np.int64)
        if np.isnat(values).any():
            raise ContractError("array.resample_time: the time coordinate has missing (NaT) times")
        return (months // 12 + 1970).tolist(), (months % 12 + 1).tolist()
    try:
        return [int(t.year) for t in values], [int(t.month) for t in values]
    except AttributeError:
        raise ContractError(
            "array.resample_time: the time coordinate holds neither datetime64 nor cftime "
            f"dates (dtype {values.dtype}); ingest it with CF units so it decodes to dates"
        ) from None


def time_periods(times: Any, freq: str) -> tuple[Any, Any]:
    """``(period index of each time, first day of each period)`` on ``times``'
    calendar: ``datetime64[ns]`` for numpy times, cftime dates of the same calendar
    for cftime ones.

    Raises
    ------
    ContractError
        If the times are not increasing, or are not dates.
    """
    import numpy as np

    values = np.asarray(times)
    years, months = _year_month(values)
    keys = []
    for y, m in zip(years, months, strict=True):
        if freq == "month":
            keys.append((y, m))
        elif freq == "season":
            start = _SEASON_START[m]
            keys.append((y - 1 if start == 12 and m != 12 else y, start))
        else:
            keys.append((y, 1))
    if any(b < a for a, b in itertools.pairwise(values.tolist())):
        raise ContractError(
            "array.resample_time: the time coordinate is not in increasing order; sort the "
            "series by time first"
        )
    order = sorted(set(keys))
    index = {k: i for i, k in enumerate(order)}
    groups = np.array([index[k] for k in keys], dtype=np.int64)
    if values.dtype.kind == "M":
        starts = np.array([f"{y:04d}-{m:02d}-01" for y, m in order], dtype="datetime64[ns]")
    else:
        import cftime

        calendar = values[0].calendar
        starts = np.array([cftime.datetime(y, m, 1, calendar=calendar) for y, m in order])
    return groups, starts


def _outputs(params: ResampleTimeParams, inputs: dict[str, Any]) -> tuple[ArrayOutput, ...]:
    import numpy as np

    x = inputs["x"]  # the pattern has checked that it has a time dim
    _, starts = time_periods(x.coord("time"), params.freq)
    if params.how == "count":
        dtype, units = "int32", "1"
    else:
        dtype = "float32" if np.dtype(x.dtype) == np.float32 else "float64"
        units = str(x.attrs.get("units", ""))
    attrs = {
        **{k: v for k, v in x.attrs.items() if k not in ("units", "cell_methods")},
        "units": units,
        "cell_methods": f"time: {_CF[params.how]} (interval: 1 {params.freq})",
        "resampled": f"{params.how} per {params.freq}, at least {params.min_valid} valid",
    }
    return (
        ArrayOutput(
            x.name,
            dtype=dtype,
            sizes={"time": len(starts)},
            coords={"time": (("time",), starts, {"long_name": f"first day of the {params.freq}"})},
            attrs=attrs,
        ),
    )


def resample_time_kernel(
    arrays: dict[str, Any], params: ResampleTimeParams, ctx: BlockContext
) -> dict[str, Any]:
    """Full-axis kernel: the block's whole time axis reduced period by period."""
    import numpy as np
    from minjiang.kernels import to_host
    from minjiang.kernels.groupby import group_reduce

    (name,) = ctx.outputs
    groups, starts = time_periods(ctx.coords["time"], params.freq)
    axis = ctx.dims.index("time")
    x = np.moveaxis(np.asarray(to_host(arrays["x"])), axis, 0)
    out = group_reduce(x, groups, len(starts), params.how, min_valid=params.min_valid)
    return {name: np.moveaxis(out, 0, axis)}


def _memory(size: Any, params: Any) -> int:
    # the block (reduced in place of its dtype), the float64 result, its cast and the
    # band accumulators (measured: tests/reliability/test_memory.py)
    return size.input_bytes + 4 * size.output_bytes


RESAMPLE_TIME = Operator(
    name="array.resample_time",
    version="1",
    inputs=(Input("x", dtypes=("f", "i", "u")),),
    outputs=_outputs,
    pattern=FullAxis(dims=("time",), kernel=resample_time_kernel),
    params=ResampleTimeParams,
    memory=_memory,
    description="A series onto months, seasons or years of its own calendar, by a "
    "declared aggregation (mean, sum, min, max, count; NaN skipped).",
)

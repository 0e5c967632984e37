"""``forestry.resample``: a raster onto another grid of its CRS (nearest, bilinear,
average), as a full-axis step over ``(y, x)``.

The target grid is another raster's (``like``: a 10 m band for a 20 m one) or a cell
size (``resolution``: a grid anchored at the source's corner, covering it). The
composite reads the target grid at plan time, so the step that runs reads only the
source: each task holds whole ``(y, x)`` planes (one band, or one date of a stack) and
writes the resampled plane whole, with the new ``y``/``x`` coordinates, transform and
``spatial_ref``. Kernels: :mod:`minjiang.plugins.forestry.resample`.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from minjiang.core import ArrayOutput, BlockContext, Composite, FullAxis, Input, Operator, SubStep
from minjiang.core.errors import ContractError
from minjiang.plugins.forestry._grid import Grid, grid_of
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["RESAMPLE"]

NUMERIC = ("f", "i", "u")


class ResampleParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    method: Literal["nearest", "bilinear", "average"] = Field(
        default="nearest",
        description="nearest (the source cell holding the target centre), bilinear (the "
        "four source centres around it, NaN neighbours left out), average (area-weighted "
        "mean of the overlapped source cells, NaN left out; for coarsening).",
    )
    resolution: float | tuple[float, float] | None = Field(
        default=None,
        description="Target cell size in the CRS's units: one number, or (x, y). Give "
        "this or a 'like' input, not both.",
    )

    @model_validator(mode="after")
    def _positive(self) -> ResampleParams:
        res = self.resolution
        values = (res,) if isinstance(res, float | int) else (res or ())
        if any(not 0 < float(v) <= 1e9 for v in values):
            raise ValueError(f"resolution {res!r} must be positive cell sizes (at most 1e9)")
        return self


class _Target(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    method: Literal["nearest", "bilinear", "average"]
    transform: tuple[float, float, float, float, float, float]
    shape: tuple[int, int]


def _north_up(g: Grid, what: str) -> None:
    if g.transform[1] != 0 or g.transform[3] != 0:
        raise ContractError(
            f"forestry.resample: {what} has a rotated transform {list(g.transform)!r}; "
            "warp it north-up first (gdalwarp)"
        )


def _target(params: ResampleParams, inputs: dict[str, Any]) -> Grid:
    src = grid_of(inputs["raster"])
    if src is None:
        raise ContractError(
            "forestry.resample: input 'raster' carries no 'transform'/'crs' attributes; "
            "ingest it with forestry.raster"
        )
    _north_up(src, "input 'raster'")
    like = inputs.get("like")
    if (like is None) == (params.resolution is None):
        raise ContractError(
            "forestry.resample: give the target grid either as a 'like' input (a raster on "
            "that grid) or as the 'resolution' parameter, exactly one of them"
        )
    if like is not None:
        g = grid_of(like)
        if g is None:
            raise ContractError(
                "forestry.resample: input 'like' carries no 'transform'/'crs' attributes; "
                "ingest it with forestry.raster"
            )
        _north_up(g, "input 'like'")
        if not src.same_crs(g):
            raise ContractError(
                f"forestry.resample: 'raster' ({src.describe()}) and 'like' ({g.describe()}) "
                "are in different CRS; this operator resamples within one CRS: reproject "
                "one of them first (gdalwarp -t_srs)"
            )
        return g
    res = params.resolution
    rx, ry = (float(res), float(res)) if isinstance(res, float | int) else map(float, res)  # type: ignore[arg-type]
    a, _, c, _, e, f = src.transform
    rows, cols = src.shape
    # cover the source: the last cell may extend past its far edge
    ncols = max(1, math.ceil(cols * abs(a) / rx - 1e-9))
    nrows = max(1, math.ceil(rows * abs(e) / ry - 1e-9))
    return Grid(
        src.crs, (math.copysign(rx, a), 0.0, c, 0.0, math.copysign(ry, e), f), (nrows, ncols)
    )


def _expand(params: ResampleParams, inputs: dict[str, Any]) -> list[SubStep]:
    g = _target(params, inputs)
    if g.shape[0] * g.shape[1] > 4_000_000_000:
        raise ContractError(
            f"forestry.resample: the target grid {g.describe()} has more than 4e9 cells a "
            "plane; choose a coarser resolution"
        )
    target = {"method": params.method, "transform": list(g.transform), "shape": list(g.shape)}
    return [SubStep("resample", _INNER, {"raster": "raster"}, target)]


def _outputs(params: _Target, inputs: dict[str, Any]) -> tuple[ArrayOutput, ...]:
    import numpy as np

    info = inputs["raster"]
    if tuple(info.dims[-2:]) != ("y", "x"):
        raise ContractError(
            f"forestry.resample: input 'raster' has dims {tuple(info.dims)!r}; its last two "
            "must be ('y', 'x')"
        )
    src = grid_of(info)
    assert src is not None  # checked by the composite
    g = Grid(src.crs, params.transform, params.shape)
    yc, xc = g.centres()
    linear = "metre"
    if g.crs:
        from pyproj import CRS

        crs = CRS.from_user_input(g.crs)
        linear = "degree" if crs.is_geographic else (crs.axis_info[0].unit_name or "metre")
    dtype = "float32" if np.dtype(info.dtype) == np.float32 else "float64"
    attrs = {
        **{k: v for k, v in info.attrs.items() if k not in ("transform", "crs")},
        **g.attrs(),
        "grid_mapping": "spatial_ref",
        "resampling": params.method,
        "resampled_from": src.describe(),
    }
    return (
        ArrayOutput(
            info.name,
            dtype=dtype,
            sizes={"y": g.shape[0], "x": g.shape[1]},
            coords={
                "y": (("y",), yc, {"units": linear, "axis": "Y", "long_name": "cell centre y"}),
                "x": (("x",), xc, {"units": linear, "axis": "X", "long_name": "cell centre x"}),
                "spatial_ref": ((), np.int32(0), g.spatial_ref_attrs()),
            },
            attrs=attrs,
        ),
    )


def resample_kernel(arrays: dict[str, Any], params: _Target, ctx: BlockContext) -> dict[str, Any]:
    """Full-axis kernel: whole ``(y, x)`` planes of the source onto the target grid."""
    import numpy as np
    from minjiang.kernels import to_host
    from minjiang.plugins.forestry.resample import resample

    (name,) = ctx.outputs
    src_t = ctx.attrs["raster"]["transform"]
    out = resample(
        np.asarray(to_host(arrays["raster"])),
        src_t,
        params.transform,
        (int(params.shape[0]), int(params.shape[1])),
        params.method,
        backend="cpu",
    )
    return {name: out}


def _memory(size: Any, params: Any) -> int:
    # the float64 copy of the source planes, the float64 result and its cast
    return 3 * size.input_bytes * 8 // max(size.itemsize, 1) + 3 * size.output_bytes


_INNER = Operator(
    name="forestry.resample",
    version="1",
    inputs=(Input("raster", dtypes=NUMERIC),),
    outputs=_outputs,
    pattern=FullAxis(dims=("y", "x"), kernel=resample_kernel),
    params=_Target,
    memory=_memory,
    description="A raster's (y, x) planes resampled onto a target grid of its CRS.",
)

RESAMPLE = Operator(
    name="forestry.resample",
    version="1",
    inputs=(Input("raster", dtypes=NUMERIC), Input("like", optional=True)),
    outputs=(),
    pattern=Composite(_expand),
    params=ResampleParams,
    description="A raster onto another grid of its CRS (nearest, bilinear, average): "
    "the grid of a 'like' raster, or a cell size.",
)

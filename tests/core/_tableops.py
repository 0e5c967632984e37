"""A test plugin: a reader that streams a point table partitioned by grid tile beside
a per-cell count grid, and an operator that reads the points by tile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from minjiang.core import ArrayOutput, Input, Map, Operator, Reader, hookimpl
from minjiang.storage import tile_part_name
from pydantic import BaseModel, ConfigDict

COLUMNS = {"row": "int64", "col": "int64", "value": "float64"}


class PointParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    shape: tuple[int, int] = (12, 10)
    tile: int = 4
    batch: int = 7  # rows per streamed batch: a tile's rows come in several parts
    how: str = "ok"  # ok | undeclared | missing | badcols | untiled


class PointReader(Reader):
    """``.pts.npy``: an (N, 3) array of (row, col, value) points on a grid."""

    name = "testlab.points"
    extensions = (".pts.npy",)
    params = PointParams

    def open(self, files: list[Path], params: Any) -> Any:
        import xarray as xr

        pts = np.load(files[0])
        count = np.zeros(params.shape, np.int32)
        np.add.at(count, (pts[:, 0].astype(int), pts[:, 1].astype(int)), 1)
        return xr.Dataset({"count": (("y", "x"), count)})

    def chunks(self, ds: Any, params: Any) -> dict[str, int]:
        return {"y": params.tile, "x": params.tile}

    def table_columns(self, ds: Any, params: Any) -> dict[str, dict[str, str]]:
        return {} if params.how == "missing" else {"points": COLUMNS}

    def tables(self, files: list[Path], params: Any, ds: Any) -> Any:
        pts = np.load(files[0])
        t = params.tile
        seqs: dict[tuple[int, int], int] = {}
        for start in range(0, len(pts), params.batch):  # stream: batch by batch
            batch = pts[start : start + params.batch]
            rows, cols = batch[:, 0].astype(np.int64), batch[:, 1].astype(np.int64)
            for ty, tx in sorted(set(zip((rows // t).tolist(), (cols // t).tolist(), strict=True))):
                sel = (rows // t == ty) & (cols // t == tx)
                seq = seqs.get((ty, tx), 0)
                seqs[(ty, tx)] = seq + 1
                part = (
                    f"{start:05d}-{ty}-{tx}"
                    if params.how == "untiled"
                    else tile_part_name({"y": (ty * t, ty * t + t), "x": (tx * t, tx * t + t)}, seq)
                )
                cols_ = {"row": rows[sel], "col": cols[sel], "value": batch[sel, 2]}
                if params.how == "badcols":
                    cols_.pop("value")
                yield "points", part, cols_
        if params.how == "undeclared":
            yield "other", "00000", {"a": np.arange(2)}


class SumParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    halo: int = 1


def cell_sum(arrays: dict[str, Any], params: Any, ctx: Any) -> dict[str, Any]:
    """Per cell of the block: the sum of the values of the points within ``halo``
    cells (a 3x3 window for halo 1), and how many rows the task was given."""
    pts = arrays["points"].to_pandas()
    ys, xs = ctx.region["y"], ctx.region["x"]
    y0, y1, x0, x1 = ys.start, ys.stop, xs.start, xs.stop
    h = params.halo
    total = np.zeros((y1 - y0, x1 - x0))
    for r, c, v in zip(pts["row"], pts["col"], pts["value"], strict=True):
        for i in range(max(r - h, y0), min(r + h + 1, y1)):
            for j in range(max(c - h, x0), min(c + h + 1, x1)):
                total[i - y0, j - x0] += v
    return {"total": total, "rows": np.full(total.shape, len(pts), np.int64)}


WINDOW_SUM = Operator(
    name="testlab.window_sum",
    version="1",
    inputs=(Input("grid"), Input("points", kind="table", tiled=True)),
    outputs=(ArrayOutput("total", dtype="float64"), ArrayOutput("rows", dtype="int64")),
    pattern=Map(kernel=cell_sum, halo=lambda params, inputs: {"y": params.halo, "x": params.halo}),
    params=SumParams,
)


@hookimpl
def minjiang_register_readers() -> list[Reader]:
    return [PointReader()]


@hookimpl
def minjiang_register_operators() -> list[Operator]:
    return [WINDOW_SUM]

"""Planning a reused step reads no more than it needs.

A step found in the catalog never runs: planning it decodes no coordinates (its
grid contract was checked when it was computed, when its id covers every input)
and reads no Parquet footers of its tables.
"""

from __future__ import annotations

import numpy as np
import pytest
from minjiang.core import ArrayOutput, Input, Map, Operator, hookimpl
from minjiang.core._runtime import Runtime
from minjiang.core.errors import ContractError
from minjiang.storage import _reader

from tests._data import ingest_array


def _field(rt, tmp_path, name, values, lat, *, var="data"):
    return ingest_array(
        rt,
        tmp_path,
        name,
        values,
        ("lat", "lon"),
        values.shape,
        coords={"lat": np.asarray(lat), "lon": np.arange(values.shape[1], dtype=np.float64)},
        var=var,
    )


def _pipe(operator, **inputs):
    ids = {k: v.id for k, v in inputs.items()}
    return {"steps": [{"id": "s", "operator": operator, "inputs": ids}]}


def _fresh_plan(runtime, pipe):
    fresh = Runtime(store=runtime.store.url, executor="local", memory_budget="2GiB")
    try:
        return fresh.plan(pipe)
    finally:
        fresh.close()


def test_a_reused_step_decodes_no_coordinates_and_reads_no_table_footers(
    runtime, tmp_path, rng, monkeypatch
) -> None:
    values = _field(runtime, tmp_path, "t/v", rng.normal(size=(10, 4)), np.arange(10.0))
    labels = _field(
        runtime,
        tmp_path,
        "t/l",
        rng.integers(1, 3, size=(10, 4)).astype(np.int32),
        np.arange(10.0),
        var="labels",
    )
    pipe = _pipe("array.label_stats", values=values, labels=labels)
    runtime.run_pipeline(pipe)  # a table: its record lists its parts

    decoded: list[str] = []
    footers: list[list[str]] = []
    coord_values, table_schema = Runtime.coord_values, _reader.table_schema

    def counted_coords(self, info):
        decoded.append(info.name)
        return coord_values(self, info)

    def counted_footers(store, parts):
        footers.append(parts)
        return table_schema(store, parts)

    monkeypatch.setattr(Runtime, "coord_values", counted_coords)
    monkeypatch.setattr(_reader, "table_schema", counted_footers)
    plan = _fresh_plan(runtime, pipe)
    assert plan.steps[-1].reused
    assert (decoded, footers) == ([], [])
    # the same step not reused is checked (and its blocks' coordinates decoded)
    fresh = Runtime(store=runtime.store.url, executor="local", memory_budget="2GiB")
    try:
        assert not fresh.plan(pipe, reuse=False).steps[-1].reused
    finally:
        fresh.close()
    assert {"lat", "lon"} <= set(decoded)


def _shift(arrays, params, ctx):
    return {"y": arrays["x"] + 0.0 * arrays["ref"]}


SHIFT = Operator(
    name="testlab.shift_by_ref",
    version="1",
    inputs=(Input("x", dtypes=("f",)), Input("ref", dtypes=("f",), identity=False)),
    outputs=(ArrayOutput("y"),),
    pattern=Map(_shift),
)


class _ShiftPlugin:
    @hookimpl
    def minjiang_register_operators(self):
        return [SHIFT]


def test_an_input_left_out_of_the_id_is_checked_even_when_the_step_is_reused(
    runtime, tmp_path, rng
) -> None:
    runtime.register(_ShiftPlugin(), name="shiftlab")
    x = _field(runtime, tmp_path, "t/x", rng.normal(size=(6, 3)), np.arange(6.0))
    near = _field(runtime, tmp_path, "t/near", rng.normal(size=(6, 3)), np.arange(6.0))
    far = _field(runtime, tmp_path, "t/far", rng.normal(size=(6, 3)), np.arange(40.0, 46.0))
    runtime.run_pipeline(_pipe("testlab.shift_by_ref", x=x, ref=near))
    assert runtime.plan(_pipe("testlab.shift_by_ref", x=x, ref=near)).steps[-1].reused
    # the same id (ref is not part of it), but ref is on other latitudes
    with pytest.raises(ContractError, match="lat"):
        runtime.plan(_pipe("testlab.shift_by_ref", x=x, ref=far))

"""A full-axis operator may give its output another size along the full dims."""

from __future__ import annotations

import numpy as np
import pytest
from minjiang.core.errors import ContractError

from tests._data import ingest_array
from tests.core import _resizeops


def test_a_full_axis_output_resized_along_its_axis_is_written_whole(minjiang_store, tmp_path, rng):
    from minjiang.core import Runtime

    x = rng.normal(size=(48, 11))
    with Runtime(store=minjiang_store, executor="local", memory_budget="3KiB") as rt:
        rt.register(_resizeops, name="resizeops")
        src = ingest_array(
            rt, tmp_path, "t/x", x, ("y", "x"), (3, 4), coords={"x": np.arange(11.0)}
        )
        plan = rt.plan(
            {"steps": [{"id": "h", "operator": "testlab.halve", "inputs": {"x": src.id}}]}
        )
        tasks = [t for s in plan.steps[-1].stages for t in s.tasks if s.name == "full_axis"]
        res = rt.run("testlab.halve", inputs={"x": src})
        ds = res.to_xarray()
    assert len(tasks) > 1  # split over y; each task writes all 5 output columns
    assert all(w.region[1] == slice(0, 5) for t in tasks for w in t.writes)
    np.testing.assert_allclose(ds["half"].values, (x[:, 0:10:2] + x[:, 1:10:2]) / 2, rtol=0, atol=0)
    assert ds["half"].shape == (48, 5)
    np.testing.assert_array_equal(ds["x"].values, [0.5, 2.5, 4.5, 6.5, 8.5])


def test_a_map_cannot_change_the_size_of_a_dim(runtime, tmp_path, rng):
    runtime.register(_resizeops, name="resizeops")
    src = ingest_array(runtime, tmp_path, "t/x", rng.normal(size=(4, 6)), ("y", "x"), (2, 3))
    with pytest.raises(ContractError, match="only a FullAxis operator over 'x'"):
        runtime.run("testlab.halve_map", inputs={"x": src})

"""materials.rdf checks r_max against the box at plan time (from the ingest's attributes)."""

from __future__ import annotations

import numpy as np
import pytest
from minjiang.core.errors import ContractError
from minjiang.plugins.materials.rdf import face_distances

from .conftest import datafiles


def _step(traj_id: str, params: dict) -> dict:
    return {
        "steps": [
            {
                "id": "rdf",
                "operator": "materials.rdf",
                "inputs": {"positions": traj_id, "cell": traj_id},
                "params": params,
            }
        ]
    }


def test_r_max_beyond_half_the_triclinic_width_fails_at_plan_time(runtime) -> None:
    d = datafiles()
    traj = runtime.ingest("materials.trajectory", [d.PSF_TRICLINIC, d.DCD_TRICLINIC])
    cells = traj.to_xarray()["cell"].values
    widths = np.array([face_distances(c).min() for c in cells])
    attrs = traj.to_xarray()["cell"].attrs
    # the perpendicular width of the sheared cell, not a vector length, in the frame it occurs
    assert attrs["min_face_distance"] == pytest.approx(widths.min(), rel=1e-12)
    assert attrs["min_face_distance_frame"] == int(np.argmin(widths))
    assert widths.min() < np.linalg.norm(cells, axis=2).min()
    half = widths.min() / 2
    with pytest.raises(ContractError) as err:
        runtime.plan(_step(traj.id, {"r_max": half + 0.01, "bins": 10}))
    message = str(err.value)
    assert f"{half:g} Å" in message and f"frame {int(np.argmin(widths))}" in message
    assert f"r_max <= {half:g}" in message
    # at the limit it plans, and runs
    plan = runtime.plan(_step(traj.id, {"r_max": half, "bins": 10}))
    assert [s.operator.name for s in plan.steps] == ["materials.rdf"]
    with pytest.raises(ContractError, match="not below the default r_max"):
        runtime.plan(_step(traj.id, {"r_min": half, "bins": 10}))


def test_a_frame_without_a_cell_fails_at_plan_time(runtime, tmp_path) -> None:
    pytest.importorskip("ase")
    import ase
    import ase.io

    frames = [ase.Atoms("H2O", positions=np.eye(3) * (1 + i * 0.1)) for i in range(2)]
    ase.io.write(tmp_path / "mol.xyz", frames, format="extxyz")
    traj = runtime.ingest("materials.structure", [str(tmp_path / "mol.xyz")])
    assert traj.to_xarray()["cell"].attrs["min_face_distance"] is None
    with pytest.raises(ContractError, match="no periodic cell"):
        runtime.plan(_step(traj.id, {"r_max": 1.0}))

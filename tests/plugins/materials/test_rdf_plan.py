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


def test_g_of_r_frames_are_spread_over_the_workers(monkeypatch) -> None:
    # 200 frames of 1e5 atoms in chunks of 6 frames: cheap to decode (240 MB) but minutes
    # of pair counting; the declared kernel time makes the planner give four workers
    # enough tasks to keep each busy (decoding alone would leave one idle). The penalty
    # on tasks' memory, which splits large tasks on its own, is lifted to isolate it.
    from minjiang.core import TaskSize, _blocks
    from minjiang.core._blocks import choose_block
    from minjiang.plugins.materials._operators import RDF, RdfParams

    monkeypatch.setattr(_blocks, "TASK_MEMORY_TARGET_BYTES", 1 << 40)

    shape, chunks = (200, 100_000, 3), (6, 100_000, 3)

    def size(block: tuple[int, ...]) -> TaskSize:
        return TaskSize(int(np.prod(block)) * 4, 0, block, 4)

    def memory(block: tuple[int, ...]) -> int:
        return RDF.memory(size(block), RdfParams())

    def compute(block: tuple[int, ...]) -> float:
        return RDF.compute(size(block), RdfParams())

    kw = {"itemsize": 4, "halo": (0, 0, 0), "memory": memory, "budget": 2 << 30, "workers": 4}
    alone = choose_block(shape, chunks, **kw)
    spread = choose_block(shape, chunks, compute=compute, **kw)
    assert alone.n_tasks < 4
    assert spread.n_tasks >= 8 and spread.block[1:] == (100_000, 3)
    assert compute((200, 100_000, 3)) == pytest.approx(320.0)

"""Named pipelines of the materials plugin."""

from __future__ import annotations

from minjiang.core import Pipeline

__all__ = ["structure_report"]


def structure_report() -> Pipeline:
    """``materials.structure_report``: trajectory -> g(r) with n(r), MSD per species with D.

    Input ``trajectory``: the topology then the trajectory files of a periodic system.
    Steps: ``ingest`` (``materials.trajectory``), ``rdf`` (all atoms, r_max half the
    smallest face distance over the frames, 100 bins) and ``msd`` (per atom type,
    unwrapped with the cell when the file's positions are wrapped, D fitted from 10 % to
    50 % of the longest lag); the report is a PNG of g(r) with the coordination number
    and of the MSD with its fit.
    """
    traj = {"positions": "ingest", "cell": "ingest", "atom_type": "ingest"}
    return Pipeline.model_validate(
        {
            "name": "materials.structure_report",
            "version": "1",
            "description": "Structure and dynamics of an MD trajectory: g(r) with the "
            "coordination number, MSD per species with the self-diffusion coefficient.",
            "inputs": ["trajectory"],
            "steps": [
                {"id": "ingest", "reader": "materials.trajectory", "paths": "$trajectory"},
                {
                    "id": "rdf",
                    "operator": "materials.rdf",
                    "inputs": {"positions": "ingest", "cell": "ingest"},
                    "params": {"bins": 100},
                },
                {
                    "id": "msd",
                    "operator": "materials.msd",
                    "inputs": traj,
                    "params": {"unwrap": "auto", "fit": "auto"},
                },
            ],
            "report": "materials.structure_quicklook",
        }
    )

"""minjiang.plugins.materials: molecular-dynamics trajectories, structures and microstructures.

Readers: ``materials.trajectory`` (every format MDAnalysis reads: LAMMPS dump,
XTC/TRR, DCD, GRO/PDB, AMBER NetCDF, GSD, H5MD) and ``materials.structure`` (ase:
CIF, POSCAR, extended XYZ), streamed in frame blocks into ``positions`` (frame, atom,
xyz) with the cell and time of every frame and the atoms' types, names, masses and
molecules. Operators: ``materials.rdf`` (g(r) and coordination number under periodic
boundaries of any cell) and ``materials.msd`` (all-origins MSD per species and the
self-diffusion coefficient). Microstructure images: ``materials.image`` (TIFF stacks,
``.npy``, Zarr, with voxel size), ``materials.two_point`` (S₂(r) of a phase),
``materials.porosity`` (porosity, percolating porosity and the pore-size distribution
in one step) and its parts ``materials.local_thickness``, ``materials.pore_sizes`` and
``materials.percolation``. Pipeline: ``materials.structure_report`` with its report
``materials.structure_quicklook``. See ``docs/plugins/materials.md``.

This module only declares hook implementations; readers, operators and kernels are
imported when a runtime asks for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from minjiang.core.hookspecs import hookimpl

if TYPE_CHECKING:
    from minjiang.core import Operator, Pipeline, Reader, Report

if __name__ != "minjiang.plugins.materials":  # importable only as minjiang.plugins.materials
    raise ImportError(
        f"'{__name__}' is minjiang.plugins.materials: install minjiang and import it by that name"
    )

DOMAIN = "materials"
#: the minjiang plugin API versions this plugin supports (checked before it loads)
MINJIANG_API = ">=1.0,<2"
__all__ = [
    "DOMAIN",
    "atom_table",
    "minjiang_catalog_metadata",
    "minjiang_register_operators",
    "minjiang_register_pipelines",
    "minjiang_register_readers",
    "minjiang_register_reports",
]


def __getattr__(name: str) -> Any:  # lazy: the helper needs pandas
    if name == "atom_table":
        from minjiang.plugins.materials._frames import atom_table

        return atom_table
    raise AttributeError(f"module 'minjiang.plugins.materials' has no attribute {name!r}")


@hookimpl
def minjiang_register_operators() -> list[Operator]:
    """The materials operators (g(r), MSD, S₂, local thickness, pore sizes, percolation, porosity)."""
    from minjiang.plugins.materials._operators import OPERATORS

    return list(OPERATORS)


@hookimpl
def minjiang_register_readers() -> list[Reader]:
    """The materials readers (MDAnalysis trajectories, ase structures, microstructure images)."""
    from minjiang.plugins.materials._images import ImageReader
    from minjiang.plugins.materials._readers import StructureReader, TrajectoryReader

    return [TrajectoryReader(), StructureReader(), ImageReader()]


@hookimpl
def minjiang_register_pipelines() -> list[Pipeline]:
    """The ``materials.structure_report`` pipeline."""
    from minjiang.plugins.materials._pipelines import structure_report

    return [structure_report()]


@hookimpl
def minjiang_register_reports() -> list[Report]:
    """The ``materials.structure_quicklook`` report (g(r) with n(r), MSD with its fit)."""
    from minjiang.plugins.materials._report import reports

    return reports()


@hookimpl
def minjiang_catalog_metadata(record: Any) -> dict[str, Any] | None:
    """Tag records of this domain with the plugin that understands them."""
    if getattr(record, "domain", None) != DOMAIN:
        return None
    return {"plugin": f"minjiang.plugins.{DOMAIN}", "domain": DOMAIN}

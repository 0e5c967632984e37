"""Ingest readers of the materials plugin: trajectories (MDAnalysis) and structures (ase).

Both write the same arrays (see :func:`minjiang.plugins.materials._frames.to_dataset`):
``positions`` (frame, atom, xyz) float32 in Å, streamed in frame blocks; ``cell``
(frame, cell_vector, xyz) lattice vectors as rows and ``box`` (frame, box_parameter)
a, b, c, α, β, γ; ``time`` per frame; per atom ``atom_type`` and ``atom_name``
(int32 codes, the strings in the ``labels`` attribute), ``mass`` and ``molecule``.
``positions.attrs["unwrapped"]`` says whether coordinates are unwrapped, and
``unwrapped_source`` why. The atoms are also written as the Parquet table ``atoms``
(``index``, ``name``, ``type``, ``mass``, ``molecule``: ``Result.table("atoms")``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from minjiang.core import Reader
from minjiang.core.errors import ReaderError
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["StructureParams", "StructureReader", "TrajectoryParams", "TrajectoryReader"]

_BLOCK_BYTES = 32 * 1024 * 1024
#: atoms per part of the ``atoms`` table
_ATOMS_PER_PART = 1 << 20
#: the ``atoms`` table (one row per atom, in the order of the ``atom`` dim)
ATOM_COLUMNS = {
    "index": "int64",
    "name": "string",
    "type": "string",
    "mass": "float64",
    "molecule": "int64",
}


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    unwrap: bool = Field(
        default=False,
        description="Unwrap wrapped coordinates with the cell of each frame while ingesting "
        "(an atom must move less than half a cell between frames).",
    )
    coordinates: Literal["auto", "wrapped", "unwrapped"] = Field(
        default="auto",
        description="Whether the file's coordinates are unwrapped: 'auto' trusts the file "
        "(LAMMPS dump columns), else takes them as wrapped when there is a cell.",
    )
    frames_per_chunk: int | None = Field(
        default=None, gt=0, description="Frames per stored chunk (default: about 8 MiB)."
    )


class TrajectoryParams(_Params):
    """Parameters of ``materials.trajectory``."""

    format: str | None = Field(default=None, description="MDAnalysis trajectory format.")
    topology_format: str | None = Field(default=None, description="MDAnalysis topology format.")
    options: dict[str, str | bool | int | float] = Field(
        default_factory=dict,
        description="Further keyword arguments of MDAnalysis.Universe, e.g. "
        "{'lammps_coordinate_convention': 'unwrapped'} or {'unwrap_images': true} for a "
        "LAMMPS dump (both give unwrapped coordinates, recorded as such).",
    )


class StructureParams(_Params):
    """Parameters of ``materials.structure``."""

    format: str | None = Field(default=None, description="ase format name (default: guessed).")
    dt: float | None = Field(
        default=None, gt=0, description="Time between frames in ps (default: time in frames)."
    )


def _chunks(ds: xr.Dataset, params: Any) -> dict[str, int]:
    n_atoms = max(int(ds.sizes["atom"]), 1)
    per = params.frames_per_chunk or max(1, (8 * 1024 * 1024) // (n_atoms * 12))
    if per * n_atoms * 12 > _BLOCK_BYTES * 4:
        per = max(1, (_BLOCK_BYTES * 4) // (n_atoms * 12))
    # explicit sizes (not -1): a step planned on this ingest in the same pipeline sees them
    return {
        "frame": max(1, min(per, int(ds.sizes["frame"]) or 1)),
        "atom": max(int(ds.sizes["atom"]), 1),
        "xyz": 3,
    }


def _atom_parts(ds: xr.Dataset) -> Any:
    """The ``atoms`` table in parts of ``_ATOMS_PER_PART`` rows (the atoms are in memory:
    the readers keep them from their first pass)."""
    from minjiang.plugins.materials._frames import atom_table

    table = atom_table(ds)
    for i, start in enumerate(range(0, max(len(table), 1), _ATOMS_PER_PART)):
        yield "atoms", f"{i:06d}", table.iloc[start : start + _ATOMS_PER_PART]


def _check_unwrap(name: str, ds: xr.Dataset, params: Any) -> None:
    import numpy as np

    if params.unwrap and params.coordinates == "unwrapped":
        raise ReaderError(
            f"{name}: unwrap=true with coordinates='unwrapped' would unwrap twice; drop one"
        )
    if params.unwrap and not np.isfinite(ds["cell"].values).all():
        raise ReaderError(
            f"{name}: unwrap=true needs a periodic cell in every frame; the file lacks one"
        )


class TrajectoryReader(Reader):
    """Molecular-dynamics trajectories through MDAnalysis.

    Pass the topology first and the trajectory files after it (``[top.gro,
    run.xtc]``), or one file that holds both (PDB, GRO, LAMMPS dump with
    ``format="LAMMPSDUMP"``, ...). Every format MDAnalysis reads is accepted: LAMMPS
    dump, XTC/TRR, DCD, GRO/PDB, AMBER NetCDF, GSD, H5MD.
    """

    name: ClassVar[str] = "materials.trajectory"
    version: ClassVar[str] = "2"
    description: ClassVar[str] = "MD trajectories (MDAnalysis): positions, cell, time, atoms"
    extensions: ClassVar[tuple[str, ...]] = (
        ".xtc",
        ".trr",
        ".dcd",
        ".lammpstrj",
        ".dump",
        ".nc",
        ".ncdf",
        ".gsd",
        ".h5md",
        ".gro",
        ".pdb",
        ".psf",
        ".tpr",
        ".prmtop",
        ".parm7",
        ".data",
    )
    params: ClassVar[type[BaseModel] | None] = TrajectoryParams
    supports_directories: ClassVar[bool] = False
    supports_multiple: ClassVar[bool] = True

    def source_files(self, paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
        return super().source_files(paths)  # order kept: topology first

    def open(self, files: list[Path], params: Any) -> xr.Dataset:
        from minjiang.plugins.materials._frames import mdanalysis_source, to_dataset

        params = params or TrajectoryParams()
        try:
            source = mdanalysis_source(
                files, params.format, params.topology_format, dict(params.options)
            )
        except (OSError, ValueError, TypeError, EOFError, KeyError, IndexError) as err:
            raise ReaderError(
                f"{self.name}: MDAnalysis cannot read the sources ({type(err).__name__}); "
                "pass the topology first, or name the format"
            ) from err
        ds = to_dataset(
            source, unwrap=params.unwrap, declared=params.coordinates, origin="MDAnalysis"
        )
        _check_unwrap(self.name, ds, params)
        return ds

    def chunks(self, ds: xr.Dataset, params: Any) -> Mapping[str, int] | None:
        return _chunks(ds, params or TrajectoryParams())

    def table_columns(self, ds: xr.Dataset, params: Any) -> Mapping[str, Mapping[str, str]]:
        return {"atoms": ATOM_COLUMNS}

    def tables(
        self, files: list[Path], params: Any, ds: xr.Dataset
    ) -> Iterable[tuple[str, str, Any]]:
        return _atom_parts(ds)


class StructureReader(Reader):
    """Crystal structures and multi-frame files through ase (CIF, POSCAR, extended XYZ...)."""

    name: ClassVar[str] = "materials.structure"
    version: ClassVar[str] = "2"
    description: ClassVar[str] = "Structures (ase): CIF, POSCAR/CONTCAR, extended XYZ"
    extensions: ClassVar[tuple[str, ...]] = (".cif", ".vasp", ".poscar", ".xyz", ".extxyz")
    params: ClassVar[type[BaseModel] | None] = StructureParams
    supports_directories: ClassVar[bool] = False
    supports_multiple: ClassVar[bool] = False

    def guess_can_open(self, path: str | os.PathLike[str]) -> bool:
        name = Path(path).name.upper()
        return super().guess_can_open(path) or name.startswith(("POSCAR", "CONTCAR"))

    def open(self, files: list[Path], params: Any) -> xr.Dataset:
        from minjiang.plugins.materials._frames import ase_source, to_dataset

        params = params or StructureParams()
        try:
            source = ase_source(files[0], params.format, params.dt)
        except (OSError, ValueError, TypeError, KeyError, IndexError, StopIteration) as err:
            raise ReaderError(
                f"{self.name}: ase cannot read the source ({type(err).__name__}: {err}); "
                "name the format (e.g. 'extxyz', 'cif', 'vasp')"
            ) from err
        ds = to_dataset(source, unwrap=params.unwrap, declared=params.coordinates, origin="ase")
        _check_unwrap(self.name, ds, params)
        return ds

    def chunks(self, ds: xr.Dataset, params: Any) -> Mapping[str, int] | None:
        return _chunks(ds, params or StructureParams())

    def table_columns(self, ds: xr.Dataset, params: Any) -> Mapping[str, Mapping[str, str]]:
        return {"atoms": ATOM_COLUMNS}

    def tables(
        self, files: list[Path], params: Any, ds: xr.Dataset
    ) -> Iterable[tuple[str, str, Any]]:
        return _atom_parts(ds)

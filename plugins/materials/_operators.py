"""Operator contracts of the materials plugin (kernels referenced by dotted path)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from minjiang.core import (
    Aggregate,
    ArrayOutput,
    Composite,
    FullAxis,
    Input,
    Map,
    Operator,
    SubStep,
    TableOutput,
    TaskSize,
)
from minjiang.core.errors import ContractError
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["OPERATORS", "WrappedPositionsError"]

_K = "minjiang.plugins.materials._kernels:"
_POS = ("frame", "atom", "xyz")
_CELL = ("frame", "cell_vector", "xyz")


class WrappedPositionsError(ContractError):
    """Positions are wrapped into the cell where the analysis needs them unwrapped."""


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Selection(_Params):
    """Atoms matching every criterion given (no criterion: all atoms)."""

    types: list[str] | None = Field(default=None, description="Atom types (any of).")
    names: list[str] | None = Field(default=None, description="Atom names (any of).")
    indices: list[int] | None = Field(default=None, description="Atom indices (any of).")


def _whole_atoms(op: str, inputs: dict[str, Any]) -> None:
    pos = inputs["positions"]
    sizes = dict(zip(pos.dims, pos.shape, strict=True))
    chunks = dict(zip(pos.dims, pos.chunks, strict=True))
    for d in ("atom", "xyz"):
        if chunks[d] != sizes[d]:
            raise ContractError(
                f"{op}: input 'positions' is chunked along {d!r} ({chunks[d]} of {sizes[d]}); "
                "every frame must be one chunk along atom and xyz (the trajectory readers "
                "write it so): re-ingest with the default chunks"
            )


# -- materials.rdf --------------------------------------------------------------------------
class RdfParams(_Params):
    """Radial distribution function g(r) between selections A and B."""

    a: Selection = Field(default_factory=Selection, description="Selection A (the centres).")
    b: Selection | None = Field(default=None, description="Selection B (default: A).")
    r_min: float = Field(default=0.0, ge=0.0, description="Inner edge of the first bin (Å).")
    r_max: float | None = Field(
        default=None,
        gt=0.0,
        description="Outer edge of the last bin (Å), at most half the smallest face distance "
        "of every frame's cell; default: exactly that.",
    )
    bins: int = Field(default=100, ge=1, le=1_000_000, description="Number of equal-width bins.")
    exclude_same_molecule: bool = Field(
        default=False, description="Do not count pairs within one molecule (the 'molecule' input)."
    )

    @model_validator(mode="after")
    def _range(self) -> RdfParams:
        if self.r_max is not None and self.r_min >= self.r_max:
            raise ValueError(f"r_min ({self.r_min}) must be less than r_max ({self.r_max})")
        return self


_RDF_COLUMNS = {
    "r": "float64",
    "r_lo": "float64",
    "r_hi": "float64",
    "count": "int64",
    "g": "float64",
    "coordination": "float64",
    "frames": "int64",
    "pairs": "int64",
    "n_a": "int64",
    "n_b": "int64",
    "mean_volume": "float64",
}


def _rdf_outputs(params: RdfParams, inputs: dict[str, Any]) -> tuple[TableOutput, ...]:
    _whole_atoms("materials.rdf", inputs)
    need = {"types": "atom_type", "names": "atom_name"}
    for sel in (params.a, params.b or params.a):
        for key, arr in need.items():
            if getattr(sel, key) is not None and arr not in inputs:
                raise ContractError(
                    f"materials.rdf: a selection by {key} needs the {arr!r} input; pass the "
                    f"trajectory as inputs['{arr}']"
                )
    if params.exclude_same_molecule and "molecule" not in inputs:
        raise ContractError(
            "materials.rdf: exclude_same_molecule needs the 'molecule' input; pass the "
            "trajectory as inputs['molecule']"
        )
    _check_r_max(params, dict(inputs["cell"].attrs))
    return (TableOutput("rdf", _RDF_COLUMNS),)


def _check_r_max(params: RdfParams, attrs: dict[str, Any]) -> None:
    """Plan-time check of r_max against the smallest face distance the reader recorded.

    The trajectory readers write ``min_face_distance`` (and its frame) on ``cell`` at
    ingest, where every frame's cell is in memory anyway; a cell without the attribute
    (another producer) is checked by the tasks instead, frame by frame.
    """
    if "min_face_distance" not in attrs:
        return
    width, frame = attrs["min_face_distance"], attrs.get("min_face_distance_frame")
    if width is None:
        raise ContractError(
            "materials.rdf: a frame of the trajectory has no periodic cell (its 'cell' is NaN); "
            "a periodic g(r) needs the box of every frame: ingest a trajectory with a cell"
        )
    if params.r_max is None and params.r_min >= float(width) / 2:
        raise ContractError(
            f"materials.rdf: r_min {params.r_min:g} Å is not below the default r_max, half "
            f"the smallest box width ({float(width) / 2:g} Å, frame {frame}); lower r_min"
        )
    if params.r_max is not None and params.r_max > float(width) / 2 * (1 + 1e-12):
        raise ContractError(
            f"materials.rdf: r_max {params.r_max:g} Å exceeds half the smallest box width "
            f"({float(width) / 2:g} Å: the distance between opposite faces of the cell is "
            f"{float(width):g} Å in frame {frame}, the perpendicular width for a triclinic "
            f"cell), beyond which a pair can have two images closer than r_max; pass "
            f"r_max <= {float(width) / 2:g}, or leave it out to take exactly that"
        )


def _rdf_memory(size: TaskSize, params: Any) -> int:
    # positions in float64 plus fractional copy, cell-list heads/links (int64 per atom)
    cells = size.input_bytes // max(size.itemsize, 1)
    return size.input_bytes + 3 * 8 * cells + 64 * params.bins + (64 << 20)


def _rdf_compute(size: TaskSize, params: Any) -> float:
    # seconds on one core: 1.6 s per frame of 1e5 atoms at water's density with r_max
    # 10 A (16 us per atom and frame, measured); the cost grows with density x r_max^3,
    # which the plan does not know, but the planner needs only its size against decoding
    # to spread the frames of a long trajectory over the workers
    frames, atoms = (*size.block_shape, 1, 1)[:2]
    return 1.6e-5 * frames * atoms


RDF = Operator(
    name="materials.rdf",
    version="1",
    inputs=(
        Input("positions", dims=_POS, dtypes=("f",)),
        # every task reads the cells of all frames (9 numbers each): the default r_max is
        # the same in every task
        Input("cell", dims=_CELL, dtypes=("f",), whole=("frame", "cell_vector")),
        Input("atom_type", dims=("atom",), dtypes=("i",), optional=True),
        Input("atom_name", dims=("atom",), dtypes=("i",), optional=True),
        Input("molecule", dims=("atom",), dtypes=("i",), optional=True),
    ),
    outputs=_rdf_outputs,
    pattern=Aggregate(
        partial=_K + "rdf_partial", combine=_K + "rdf_combine", finalize=_K + "rdf_finalize"
    ),
    params=RdfParams,
    memory=_rdf_memory,
    compute=_rdf_compute,
    backends=("cpu", "gpu"),
    description="Radial distribution function g(r) and coordination number n(r), periodic (any cell).",
)


# -- materials.msd ---------------------------------------------------------------------------
class MsdParams(_Params):
    """Mean squared displacement over all time origins, per species; diffusion fit."""

    unwrap: bool | Literal["auto"] = Field(
        default=False,
        description="Unwrap wrapped positions with the cell of each frame first (needs 'cell'); "
        "'auto': unwrap only positions that are not unwrapped already.",
    )
    fit: tuple[float, float] | Literal["auto"] | None = Field(
        default=None,
        description="Lag-time window [t0, t1] (time units of the input) of the fit "
        "MSD = 6 D t + c; 'auto': from 10 % to 50 % of the longest lag; none: no fit.",
    )
    dt: float | None = Field(
        default=None, gt=0, description="Time between frames (default: the input's 'timestep')."
    )

    @model_validator(mode="after")
    def _window(self) -> MsdParams:
        if isinstance(self.fit, tuple) and not (0 <= self.fit[0] < self.fit[1]):
            raise ValueError(f"fit window {self.fit!r} must be [t0, t1] with 0 <= t0 < t1")
        return self


def _timestep(params: MsdParams, inputs: dict[str, Any], op: str) -> float:
    if params.dt is not None:
        return float(params.dt)
    dt = inputs["positions"].attrs.get("timestep")
    if dt is None or not np.isfinite(dt) or dt <= 0:
        raise ContractError(
            f"{op}: the frames of 'positions' are not evenly spaced in time (no 'timestep' "
            "attribute); pass dt, the time between frames, if they are"
        )
    return float(dt)


def _check_unwrapped(params: MsdParams, inputs: dict[str, Any], op: str) -> None:
    attrs = inputs["positions"].attrs
    if attrs.get("unwrapped") is True:
        if params.unwrap is True:
            raise ContractError(
                f"{op}: positions are already unwrapped ({attrs.get('unwrapped_source')}); "
                "drop unwrap=true"
            )
        return
    if not params.unwrap:
        raise WrappedPositionsError(
            f"{op}: positions are not unwrapped ({attrs.get('unwrapped_source', 'no unwrapped attribute')}); "
            "an MSD of wrapped coordinates is wrong: pass unwrap=true (with the 'cell' input), "
            "or ingest with unwrap=true"
        )
    if "cell" not in inputs:
        raise ContractError(f"{op}: unwrap=true needs the 'cell' input (the trajectory's cell)")


def _msd_atoms_outputs(params: MsdParams, inputs: dict[str, Any]) -> tuple[ArrayOutput, ...]:
    op = "materials.msd"
    _check_unwrapped(params, inputs, op)
    dt = _timestep(params, inputs, op)
    n = dict(zip(inputs["positions"].dims, inputs["positions"].shape, strict=True))["frame"]
    units = inputs["positions"].attrs.get("time_units", "")
    return (
        ArrayOutput(
            "msd",
            dtype="float64",
            dims=("lag", "atom", "xyz"),
            sizes={"lag": n},
            coords={"lag": np.arange(n, dtype=np.float64) * dt},
            attrs={
                "units": "angstrom**2",
                "lag_units": units,
                "long_name": "MSD per atom and component over all time origins",
            },
        ),
    )


def _msd_atoms_memory(size: TaskSize, params: Any) -> int:
    # float64 copy, zero-padded complex FFT (2x length), S1 and S2: ~8 float64 copies
    cells = size.input_bytes // max(size.itemsize, 1)
    return size.input_bytes + 8 * 8 * cells + size.output_bytes


_MSD_ATOMS = Operator(
    name="materials.msd_atoms",
    version="1",
    inputs=(
        Input("positions", dims=_POS, dtypes=("f",)),
        Input("cell", dims=_CELL, dtypes=("f",), whole=("cell_vector",), optional=True),
    ),
    outputs=_msd_atoms_outputs,
    pattern=FullAxis(dims=("frame",), kernel=_K + "msd_atoms"),
    params=MsdParams,
    memory=_msd_atoms_memory,
    backends=("cpu", "gpu"),
    description="Per-atom MSD over all origins (FFT), over atom blocks with the whole time axis.",
)

_MSD_COLUMNS = {
    "species": "string",
    "lag": "int64",
    "lag_time": "float64",
    "msd": "float64",
    "atoms": "int64",
}
_DIFF_COLUMNS = {
    "species": "string",
    "D": "float64",
    "slope": "float64",
    "intercept": "float64",
    "fit_t0": "float64",
    "fit_t1": "float64",
    "points": "int64",
}


def _species_outputs(params: MsdParams, inputs: dict[str, Any]) -> tuple[TableOutput, ...]:
    out = [TableOutput("msd", _MSD_COLUMNS)]
    if params.fit is not None:
        out.append(TableOutput("diffusion", _DIFF_COLUMNS))
    return tuple(out)


_MSD_SPECIES = Operator(
    name="materials.msd_species",
    version="1",
    inputs=(
        Input("msd", dims=("lag", "atom", "xyz"), dtypes=("f",)),
        Input("atom_type", dims=("atom",), dtypes=("i",), optional=True),
    ),
    outputs=_species_outputs,
    pattern=Aggregate(
        partial=_K + "msd_species_partial",
        combine=_K + "msd_species_combine",
        finalize=_K + "msd_species_finalize",
    ),
    params=MsdParams,
    backends=("cpu", "gpu"),
    description="Per-species MSD (mean over atoms, summed over x, y, z) and the diffusion fit.",
)


def _msd_expand(params: MsdParams, inputs: dict[str, Any]) -> list[SubStep]:
    p = params.model_dump(mode="json")
    atoms = {"positions": "positions"}
    if "cell" in inputs:
        atoms["cell"] = "cell"
    species = {"msd": "atoms"}
    if "atom_type" in inputs:
        species["atom_type"] = "atom_type"
    return [SubStep("atoms", _MSD_ATOMS, atoms, p), SubStep("species", _MSD_SPECIES, species, p)]


MSD = Operator(
    name="materials.msd",
    version="1",
    inputs=(
        Input("positions", dims=_POS, dtypes=("f",)),
        Input("cell", dims=_CELL, dtypes=("f",), whole=("cell_vector",), optional=True),
        Input("atom_type", dims=("atom",), dtypes=("i",), optional=True),
    ),
    outputs=_species_outputs,
    pattern=Composite(_msd_expand),
    params=MsdParams,
    backends=("cpu", "gpu"),
    description="MSD over all time origins per species (FFT), self-diffusion coefficient from a fit window.",
)


# -- materials.two_point ----------------------------------------------------------------------
class TwoPointParams(_Params):
    """Two-point correlation S2(r) of one phase of a 2-D or 3-D image."""

    phase: int | None = Field(
        default=None,
        description="Value of the phase in the image; default: every non-zero value (True).",
    )
    periodic: bool = Field(
        default=False,
        description="Wrap around the image edges (needs the image in one chunk); default: "
        "zero-padded, each lag divided by its own number of pairs (unbiased).",
    )
    r_max: float = Field(gt=0, description="Largest distance (units of the voxel size).")
    bins: int = Field(default=50, ge=1, le=100_000, description="Equal-width distance bins.")
    spacing: list[float] | None = Field(
        default=None, description="Voxel size per dim; default: the image's 'spacing' attribute."
    )


_S2_COLUMNS = {
    "r": "float64",
    "r_lo": "float64",
    "r_hi": "float64",
    "s2": "float64",
    "vectors": "int64",
    "phase_fraction": "float64",
}


def two_point_spacing(params: Any, attrs: dict[str, Any], ndim: int) -> list[float]:
    """The voxel size used by ``materials.two_point`` (parameter, else attribute)."""
    spacing = params.spacing if params.spacing is not None else attrs.get("spacing")
    if spacing is None or len(spacing) != ndim or any(not (float(v) > 0) for v in spacing):
        raise ContractError(
            f"materials.two_point: the image needs {ndim} positive voxel sizes (its 'spacing' "
            f"attribute or the spacing parameter), got {spacing!r}"
        )
    return [float(v) for v in spacing]


def _two_point_outputs(params: TwoPointParams, inputs: dict[str, Any]) -> tuple[TableOutput, ...]:
    img = inputs["image"]
    if tuple(img.dims) not in (("y", "x"), ("z", "y", "x")):
        raise ContractError(
            f"materials.two_point: the image has dims {tuple(img.dims)!r}; expected ('y', 'x') "
            "or ('z', 'y', 'x')"
        )
    two_point_spacing(params, dict(img.attrs), len(img.dims))
    if params.periodic and tuple(img.chunks) != tuple(img.shape):
        raise ContractError(
            "materials.two_point: periodic=true wraps around the whole image, which must then be "
            f"one chunk (chunks {tuple(img.chunks)!r}, shape {tuple(img.shape)!r}); ingest with "
            "chunks of the full extent, or use periodic=false (counted within each chunk)"
        )
    return (TableOutput("s2", _S2_COLUMNS),)


def _two_point_memory(size: TaskSize, params: Any) -> int:
    # float64 copy zero-padded to about twice each side, its complex transform, the map
    cells = size.input_bytes // max(size.itemsize, 1)
    return size.input_bytes + 8 * 8 * 4 * cells + (64 << 20)


class _TwoPointCountParams(TwoPointParams):
    tile: list[int] = Field(
        description="Pairs are counted within tiles of this shape (the chunks)."
    )


_TWO_POINT_COUNTS = Operator(
    name="materials.two_point_counts",
    version="1",
    inputs=(Input("image", dtypes=("b", "i", "u", "f")),),
    outputs=_two_point_outputs,
    pattern=Aggregate(
        partial=_K + "two_point_partial",
        combine=_K + "two_point_combine",
        finalize=_K + "two_point_finalize",
    ),
    params=_TwoPointCountParams,
    memory=_two_point_memory,
    backends=("cpu", "gpu"),
    description="Integer pair counts per lag vector within each chunk, and the radial S2.",
)


def _two_point_expand(params: TwoPointParams, inputs: dict[str, Any]) -> list[SubStep]:
    p = params.model_dump(mode="json")
    p["tile"] = [int(c) for c in inputs["image"].chunks]
    return [SubStep("counts", _TWO_POINT_COUNTS, {"image": "image"}, p)]


TWO_POINT = Operator(
    name="materials.two_point",
    version="1",
    inputs=(Input("image", dtypes=("b", "i", "u", "f")),),
    outputs=_two_point_outputs,
    pattern=Composite(_two_point_expand),
    params=TwoPointParams,
    backends=("cpu", "gpu"),
    description="Two-point correlation S2(r) of a phase, periodic or zero-padded unbiased, radially averaged.",
)


# -- materials.local_thickness / materials.pore_sizes -------------------------------------------
class ThicknessParams(_Params):
    """Local thickness of the pore phase (radius of the largest inscribed sphere covering a voxel)."""

    phase: int | None = Field(
        default=None, description="Value of the pore phase; default: every non-zero value."
    )
    max_radius: float = Field(
        gt=0,
        description="Largest pore radius (units of the voxel size); sets the halo, "
        "2 (ceil(max_radius / voxel) + 1) voxels per side. A wider pore fails the step.",
    )
    spacing: list[float] | None = Field(
        default=None, description="Voxel size per dim; default: the image's 'spacing' attribute."
    )


def _image_dims(op: str, inputs: dict[str, Any], name: str = "image") -> tuple[str, ...]:
    dims = tuple(inputs[name].dims)
    if dims not in (("y", "x"), ("z", "y", "x")):
        raise ContractError(
            f"{op}: {name!r} has dims {dims!r}; expected ('y', 'x') or ('z', 'y', 'x')"
        )
    return dims


def isotropic_voxel(op: str, params: Any, attrs: dict[str, Any], ndim: int) -> float:
    """The (single) voxel size of an image whose voxels must be cubes."""
    spacing = params.spacing if params.spacing is not None else attrs.get("spacing")
    if spacing is None or len(spacing) != ndim or any(not (float(v) > 0) for v in spacing):
        raise ContractError(
            f"{op}: the image needs {ndim} positive voxel sizes (its 'spacing' attribute or the "
            f"spacing parameter), got {spacing!r}"
        )
    v = [float(x) for x in spacing]
    if max(v) > min(v) * (1 + 1e-9):
        raise ContractError(
            f"{op}: voxels of size {v!r} are not cubes; local thickness needs isotropic voxels "
            "(resample the image first)"
        )
    return v[0]


def thickness_halo_voxels(params: Any, attrs: dict[str, Any], ndim: int) -> tuple[int, int]:
    """(max radius in voxels, halo per side in voxels)."""
    from minjiang.plugins.materials.thickness import halo_for

    voxel = isotropic_voxel("materials.local_thickness", params, attrs, ndim)
    m = int(np.ceil(params.max_radius / voxel - 1e-9))
    return m, halo_for(m)


def _thickness_halo(params: ThicknessParams, inputs: dict[str, Any]) -> dict[str, int]:
    dims = _image_dims("materials.local_thickness", inputs)
    _, h = thickness_halo_voxels(params, dict(inputs["image"].attrs), len(dims))
    return dict.fromkeys(dims, h)


def _thickness_outputs(params: ThicknessParams, inputs: dict[str, Any]) -> tuple[ArrayOutput, ...]:
    dims = _image_dims("materials.local_thickness", inputs)
    attrs = dict(inputs["image"].attrs)
    isotropic_voxel("materials.local_thickness", params, attrs, len(dims))
    keep = {k: attrs[k] for k in ("spacing", "units") if k in attrs}
    return (
        ArrayOutput(
            "local_thickness",
            dtype="float32",
            attrs={
                **keep,
                "long_name": "radius of the largest inscribed sphere covering the voxel",
            },
        ),
    )


def _thickness_memory(size: TaskSize, params: Any) -> int:
    # bool copies, float64 distance transform and its index arrays (scipy), float64 result
    cells = size.input_bytes // max(size.itemsize, 1)
    return size.input_bytes + (8 + 8 * 4 + 8 + 2) * cells + size.output_bytes


LOCAL_THICKNESS = Operator(
    name="materials.local_thickness",
    version="1",
    inputs=(Input("image", dtypes=("b", "i", "u", "f")),),
    outputs=_thickness_outputs,
    pattern=Map(_K + "local_thickness", halo=_thickness_halo, boundary="constant"),
    params=ThicknessParams,
    memory=_thickness_memory,
    description="Local thickness of the pore phase from the Euclidean distance transform, with a halo for the largest pore.",
)


class PoreSizeParams(_Params):
    """Porosity and pore-size distribution from a local-thickness image."""


_POROSITY_COLUMNS = {"porosity": "float64", "pore_voxels": "int64", "voxels": "int64"}
_PSD_COLUMNS = {
    "radius": "float64",
    "diameter": "float64",
    "voxels": "int64",
    "volume_fraction": "float64",
    "cumulative_fraction": "float64",
}


def _pore_size_outputs(params: PoreSizeParams, inputs: dict[str, Any]) -> tuple[TableOutput, ...]:
    _image_dims("materials.pore_sizes", inputs, "local_thickness")
    return (TableOutput("porosity", _POROSITY_COLUMNS), TableOutput("pore_sizes", _PSD_COLUMNS))


PORE_SIZES = Operator(
    name="materials.pore_sizes",
    version="1",
    inputs=(Input("local_thickness", dtypes=("f",)),),
    outputs=_pore_size_outputs,
    pattern=Aggregate(
        partial=_K + "pore_sizes_partial",
        combine=_K + "pore_sizes_combine",
        finalize=_K + "pore_sizes_finalize",
    ),
    params=PoreSizeParams,
    description="Porosity and the pore-size distribution (volume by local-thickness radius).",
)


# -- materials.percolation ------------------------------------------------------------------------
class PercolationParams(_Params):
    """Porosity and the porosity connected from one face of the image to the opposite one."""

    phase: int | None = Field(
        default=None, description="Value of the pore phase; default: every non-zero value."
    )
    axis: str = Field(default="z", description="The dim along which the pores must percolate.")
    connectivity: Literal[4, 8, 6, 18, 26] | None = Field(
        default=None,
        description="Neighbours that connect: 6, 18, 26 in 3-D; 4 or 8 in 2-D (default: faces "
        "only, 6 or 4).",
    )


def _percolation_check(
    params: PercolationParams, inputs: dict[str, Any], name: str, op: str = "materials.percolation"
) -> None:
    dims = _image_dims(op, inputs, name)
    if params.axis not in dims:
        raise ContractError(
            f"{op}: axis {params.axis!r} is not one of {dims!r}; pass axis= one of them"
        )
    valid = (4, 8) if len(dims) == 2 else (6, 18, 26)
    if params.connectivity is not None and params.connectivity not in valid:
        raise ContractError(
            f"{op}: connectivity {params.connectivity} is not defined in "
            f"{len(dims)}-D; use one of {valid!r}"
        )


def _pore_labels_outputs(
    params: PercolationParams, inputs: dict[str, Any]
) -> tuple[ArrayOutput, ...]:
    _percolation_check(params, inputs, "image")
    return (ArrayOutput("labels", dtype="int64", attrs={"long_name": "provisional pore labels"}),)


_PORE_LABELS = Operator(
    name="materials.pore_labels",
    version="1",
    inputs=(Input("image", dtypes=("b", "i", "u", "f")),),
    outputs=_pore_labels_outputs,
    pattern=Map(_K + "pore_labels"),
    params=PercolationParams,
    memory=lambda size, params: size.input_bytes + 3 * size.output_bytes,
    description="Pore clusters of each block, labelled 1 + the global index of their first voxel.",
)

_PERCOLATION_COLUMNS = {
    "axis": "string",
    "porosity": "float64",
    "percolating_porosity": "float64",
    "clusters": "int64",
    "percolating_clusters": "int64",
    "pore_voxels": "int64",
    "percolating_voxels": "int64",
    "voxels": "int64",
}


def _percolation_outputs(
    params: PercolationParams, inputs: dict[str, Any]
) -> tuple[TableOutput, ...]:
    name = "image" if "image" in inputs else "labels"
    _percolation_check(params, inputs, name)
    return (TableOutput("percolation", _PERCOLATION_COLUMNS),)


_PERCOLATION_STATS = Operator(
    name="materials.percolation_stats",
    version="1",
    inputs=(Input("labels", dtypes=("i",)),),
    outputs=_percolation_outputs,
    pattern=Aggregate(
        partial=_K + "percolation_partial",
        combine=_K + "percolation_combine",
        finalize=_K + "percolation_finalize",
        halo=lambda params, inputs: dict.fromkeys(inputs["labels"].dims, 1),
        boundary="constant",
    ),
    params=PercolationParams,
    description="Clusters joined across block faces (union-find); those touching both faces.",
)


def _percolation_expand(params: PercolationParams, inputs: dict[str, Any]) -> list[SubStep]:
    p = params.model_dump(mode="json")
    return [
        SubStep("labels", _PORE_LABELS, {"image": "image"}, p),
        SubStep("stats", _PERCOLATION_STATS, {"labels": "labels"}, p),
    ]


PERCOLATION = Operator(
    name="materials.percolation",
    version="1",
    inputs=(Input("image", dtypes=("b", "i", "u", "f")),),
    outputs=_percolation_outputs,
    pattern=Composite(_percolation_expand),
    params=PercolationParams,
    description="Porosity and percolating porosity along an axis, by connected components across chunks.",
)


# -- materials.porosity ------------------------------------------------------------------------
class PorosityParams(_Params):
    """Porosity, percolating porosity and the pore-size distribution of the pore phase."""

    phase: int | None = Field(
        default=None, description="Value of the pore phase; default: every non-zero value."
    )
    max_radius: float = Field(
        gt=0,
        description="Largest pore radius (units of the voxel size); sets the local-thickness "
        "halo, 2 (ceil(max_radius / voxel) + 1) voxels per side. A wider pore fails the step.",
    )
    axis: str = Field(default="z", description="The dim along which the pores must percolate.")
    connectivity: Literal[4, 8, 6, 18, 26] | None = Field(
        default=None,
        description="Neighbours that connect: 6, 18, 26 in 3-D; 4 or 8 in 2-D (default: faces "
        "only, 6 or 4).",
    )
    spacing: list[float] | None = Field(
        default=None, description="Voxel size per dim; default: the image's 'spacing' attribute."
    )


class _PorosityStatsParams(PercolationParams):
    voxel: float = Field(gt=0, description="The (isotropic) voxel size of the image.")


def _porosity_stats_outputs(
    params: _PorosityStatsParams, inputs: dict[str, Any]
) -> tuple[TableOutput, ...]:
    _image_dims("materials.porosity", inputs, "local_thickness")
    _percolation_check(params, inputs, "labels", "materials.porosity")
    lt, lab = inputs["local_thickness"], inputs["labels"]
    if tuple(lt.shape) != tuple(lab.shape):
        raise ContractError(
            f"materials.porosity: local_thickness {tuple(lt.shape)!r} and labels "
            f"{tuple(lab.shape)!r} must cover the same image"
        )
    return (
        TableOutput("porosity", _POROSITY_COLUMNS),
        TableOutput("pore_sizes", _PSD_COLUMNS),
        TableOutput("percolation", _PERCOLATION_COLUMNS),
    )


_POROSITY_STATS = Operator(
    name="materials.porosity_stats",
    version="1",
    inputs=(
        Input("local_thickness", dtypes=("f",)),
        Input("labels", dtypes=("i",)),
    ),
    outputs=_porosity_stats_outputs,
    pattern=Aggregate(
        partial=_K + "porosity_partial",
        combine=_K + "percolation_combine",
        finalize=_K + "porosity_finalize",
        halo=lambda params, inputs: dict.fromkeys(inputs["labels"].dims, 1),
        boundary="constant",
    ),
    params=_PorosityStatsParams,
    description="Voxels per local-thickness radius and clusters joined across block faces, "
    "merged exactly.",
)


def _porosity_outputs(params: PorosityParams, inputs: dict[str, Any]) -> tuple[TableOutput, ...]:
    dims = _image_dims("materials.porosity", inputs)
    isotropic_voxel("materials.porosity", params, dict(inputs["image"].attrs), len(dims))
    _percolation_check(_percolation_params(params), inputs, "image", "materials.porosity")
    return (
        TableOutput("porosity", _POROSITY_COLUMNS),
        TableOutput("pore_sizes", _PSD_COLUMNS),
        TableOutput("percolation", _PERCOLATION_COLUMNS),
    )


def _percolation_params(params: PorosityParams) -> PercolationParams:
    return PercolationParams(phase=params.phase, axis=params.axis, connectivity=params.connectivity)


def _porosity_expand(params: PorosityParams, inputs: dict[str, Any]) -> list[SubStep]:
    _porosity_outputs(params, inputs)
    attrs = dict(inputs["image"].attrs)
    voxel = isotropic_voxel("materials.porosity", params, attrs, len(inputs["image"].dims))
    # the parts' own parameters: a local_thickness or percolation run on the same image
    # is the same content-addressed sub-step, reused either way
    thickness = ThicknessParams(
        phase=params.phase, max_radius=params.max_radius, spacing=params.spacing
    ).model_dump(mode="json")
    perc = _percolation_params(params).model_dump(mode="json")
    return [
        SubStep("thickness", LOCAL_THICKNESS, {"image": "image"}, thickness),
        SubStep("labels", _PORE_LABELS, {"image": "image"}, perc),
        SubStep(
            "stats",
            _POROSITY_STATS,
            {"local_thickness": "thickness", "labels": "labels"},
            {**perc, "voxel": voxel},
        ),
    ]


POROSITY = Operator(
    name="materials.porosity",
    version="1",
    inputs=(Input("image", dtypes=("b", "i", "u", "f")),),
    outputs=_porosity_outputs,
    pattern=Composite(_porosity_expand),
    params=PorosityParams,
    description="Porosity, percolating porosity (labelling across chunks) and the pore-size "
    "distribution by local thickness (EDT with a halo for the largest pore), in one step.",
)

OPERATORS = (RDF, MSD, TWO_POINT, LOCAL_THICKNESS, PORE_SIZES, PERCOLATION, POROSITY)

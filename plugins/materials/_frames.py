"""Frame sources (MDAnalysis, ase) and the lazily read ``positions`` array.

A source is opened once to learn the atoms, the cell and time of every frame (one
streaming pass that keeps only those), and its positions are then read on demand
in frame blocks: the runtime writes the ``positions`` array block by block and
never holds more than one block. Blocks are read in order; when unwrapping, the
last wrapped and unwrapped frame of a block carry into the next (a request out of
order restarts the stream from the first frame).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from xarray.backends import BackendArray


def cell_matrix(box: np.ndarray) -> np.ndarray:
    """(3, 3) lattice vectors as rows from ``[a, b, c, alpha, beta, gamma]`` (Å, degrees).

    ``a`` lies along x and ``b`` in the xy plane (the convention of MDAnalysis and
    LAMMPS); a missing or zero box gives NaN.
    """
    a, b, c, al, be, ga = (float(v) for v in box)
    if not all(np.isfinite([a, b, c, al, be, ga])) or min(a, b, c) <= 0:
        return np.full((3, 3), np.nan)
    # right angles give exact zeros (cos(pi/2) is 6e-17): the cell is then orthorhombic
    cos_al, cos_be, cos_ga = (
        0.0 if x == 90.0 else float(np.cos(np.deg2rad(x))) for x in (al, be, ga)
    )
    sin_ga = 1.0 if ga == 90.0 else float(np.sin(np.deg2rad(ga)))
    cx = c * cos_be
    cy = c * (cos_al - cos_be * cos_ga) / sin_ga
    cz2 = c * c - cx * cx - cy * cy
    if cz2 <= 0:
        return np.full((3, 3), np.nan)
    return np.array([[a, 0.0, 0.0], [b * cos_ga, b * sin_ga, 0.0], [cx, cy, np.sqrt(cz2)]])


def cell_parameters(h: np.ndarray) -> np.ndarray:
    """``[a, b, c, alpha, beta, gamma]`` of a (3, 3) cell (rows are the vectors)."""
    if not np.isfinite(h).all():
        return np.full(6, np.nan)
    la, lb, lc = (float(np.linalg.norm(v)) for v in h)

    def angle(u: np.ndarray, v: np.ndarray) -> float:
        return float(
            np.rad2deg(np.arccos(np.clip(u @ v / np.linalg.norm(u) / np.linalg.norm(v), -1, 1)))
        )

    return np.array([la, lb, lc, angle(h[1], h[2]), angle(h[0], h[2]), angle(h[0], h[1])])


@dataclass
class FrameSource:
    """What a reader learned in its first pass, and how to read positions again."""

    n_atoms: int
    cells: np.ndarray  # (frame, 3, 3)
    times: np.ndarray  # (frame,)
    time_units: str
    names: list[str]
    types: list[str]
    masses: np.ndarray
    molecule: np.ndarray
    molecule_source: str
    file_unwrapped: bool | None
    iterate: Any  # (start, stop) -> iterator of (atom, 3) arrays
    extra_attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return int(self.cells.shape[0])


class PositionStream:
    """Positions of a :class:`FrameSource`, read in frame blocks, optionally unwrapped."""

    def __init__(self, source: FrameSource, unwrap: bool) -> None:
        self.source = source
        self.unwrap = unwrap
        self._lock = threading.Lock()
        self._next = 0
        self._carry: tuple[np.ndarray, np.ndarray] | None = None
        self.shape = (source.n_frames, source.n_atoms, 3)
        self.dtype = np.dtype(np.float32)

    def read(self, start: int, stop: int) -> np.ndarray:
        with self._lock:
            if not self.unwrap:
                return self._raw(start, stop)
            if start < self._next or (start > 0 and self._carry is None):
                self._next, self._carry = 0, None
            if start > self._next:  # bring the carry forward without keeping the frames
                self._unwrapped(self._next, start)
            return self._unwrapped(start, stop).astype(np.float32)

    def _raw(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((max(stop - start, 0), self.source.n_atoms, 3), dtype=np.float32)
        for i, x in enumerate(self.source.iterate(start, stop)):
            out[i] = x
        return out

    def _unwrapped(self, start: int, stop: int) -> np.ndarray:
        from minjiang.plugins.materials.msd import unwrap

        raw = self._raw(start, stop)
        out = unwrap(raw, self.source.cells[start:stop], start=self._carry)
        if stop > start:
            self._carry = (raw[-1].astype(np.float64), out[-1])
        self._next = stop
        return out


class LazyPositions(BackendArray):
    """An xarray backend array over a :class:`PositionStream` (basic indexing)."""

    def __init__(self, stream: PositionStream) -> None:
        self.stream = stream
        self.shape = stream.shape
        self.dtype = stream.dtype

    def __getitem__(self, key: Any) -> np.ndarray:
        from xarray.core import indexing

        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._get
        )

    def _get(self, key: tuple[Any, ...]) -> np.ndarray:
        fr = key[0]
        if isinstance(fr, int | np.integer):
            block = self.stream.read(int(fr), int(fr) + 1)[0]
            return block[key[1:]]
        start, stop, step = fr.indices(self.shape[0])
        if step != 1:
            block = self.stream.read(start, stop)[::step]
        else:
            block = self.stream.read(start, stop)
        return block[(slice(None), *key[1:])]


def min_face_distance(cells: np.ndarray) -> tuple[float | None, int | None]:
    """The smallest distance between opposite faces over every frame's cell, and its
    frame; ``(None, None)`` when a frame has no cell (or there is no frame).

    For a triclinic cell this is the perpendicular width ``V / |b x c|`` (and its
    permutations), not a vector length: the minimum image of a pair is unique within
    half of it.
    """
    h = np.asarray(cells, dtype=np.float64).reshape(-1, 3, 3)
    if h.shape[0] == 0 or not np.isfinite(h).all():
        return None, None
    vol = np.abs(np.linalg.det(h))
    widths = np.stack(
        [
            vol / np.linalg.norm(np.cross(h[:, (i + 1) % 3], h[:, (i + 2) % 3]), axis=-1)
            for i in range(3)
        ],
        axis=1,
    ).min(axis=1)
    frame = int(np.argmin(widths))
    return float(widths[frame]), frame


def _codes(labels: list[str]) -> tuple[np.ndarray, list[str]]:
    uniq = sorted(set(labels))
    index = {v: i for i, v in enumerate(uniq)}
    return np.array([index[v] for v in labels], dtype=np.int32), uniq


def to_dataset(source: FrameSource, *, unwrap: bool, declared: str, origin: str) -> Any:
    """The ingest dataset of a frame source (positions lazy, the rest in memory)."""
    import xarray as xr
    from xarray.core import indexing

    if unwrap:
        unwrapped, how = True, "unwrapped on ingest with the cell of each frame"
    elif declared == "unwrapped":
        unwrapped, how = True, "declared unwrapped by the ingest parameters"
    elif declared == "wrapped":
        unwrapped, how = False, "declared wrapped by the ingest parameters"
    elif source.file_unwrapped is not None:
        unwrapped, how = bool(source.file_unwrapped), f"from the file ({origin})"
    elif not np.isfinite(source.cells).any():
        unwrapped, how = True, "no periodic cell in the file: coordinates are not wrapped"
    else:
        unwrapped, how = False, "not stated by the file: taken as wrapped"
    times = np.asarray(source.times, dtype=np.float64)
    steps = np.diff(times)
    timestep = None
    if steps.size and np.isfinite(steps).all() and steps[0] > 0:
        if np.allclose(steps, steps[0], rtol=1e-5, atol=0):
            timestep = float((times[-1] - times[0]) / (times.size - 1))
    stream = PositionStream(source, unwrap)
    positions = xr.Variable(
        ("frame", "atom", "xyz"),
        indexing.LazilyIndexedArray(LazyPositions(stream)),
        attrs={
            "units": "angstrom",
            "unwrapped": unwrapped,
            "unwrapped_source": how,
            "timestep": timestep,
            "time_units": source.time_units,
        },
    )
    type_code, type_labels = _codes(source.types)
    name_code, name_labels = _codes(source.names)
    boxes = (
        np.stack([cell_parameters(h) for h in source.cells])
        if source.n_frames
        else np.zeros((0, 6))
    )
    width, width_frame = min_face_distance(source.cells)
    data = {
        "positions": positions,
        "cell": (
            ("frame", "cell_vector", "xyz"),
            source.cells.astype(np.float64),
            {
                "units": "angstrom",
                "description": "lattice vectors a, b, c as rows; NaN: no cell",
                # the largest r_max of a periodic g(r) is half of it (checked at plan time)
                "min_face_distance": width,
                "min_face_distance_frame": width_frame,
            },
        ),
        "box": (
            ("frame", "box_parameter"),
            boxes,
            {"description": "a, b, c (angstrom), alpha, beta, gamma (degrees); NaN: no cell"},
        ),
        "atom_type": (("atom",), type_code, {"labels": type_labels}),
        "atom_name": (("atom",), name_code, {"labels": name_labels}),
        "mass": (("atom",), np.asarray(source.masses, dtype=np.float64), {"units": "amu"}),
        "molecule": (
            ("atom",),
            np.asarray(source.molecule, dtype=np.int64),
            {"source": source.molecule_source},
        ),
    }
    coords = {
        "time": (
            ("frame",),
            np.asarray(source.times, dtype=np.float64),
            {"units": source.time_units},
        ),
    }
    return xr.Dataset(data, coords=coords, attrs={"source_format": origin, **source.extra_attrs})


def atom_table(ds: Any) -> Any:
    """A pandas table of the atoms of an ingested trajectory (index, name, type, mass, molecule)."""
    import pandas as pd

    def labels(name: str) -> list[str]:
        codes = np.asarray(ds[name].values)
        lab = list(ds[name].attrs["labels"])
        return [lab[int(c)] for c in codes]

    return pd.DataFrame(
        {
            "index": np.arange(ds.sizes["atom"]),
            "name": labels("atom_name"),
            "type": labels("atom_type"),
            "mass": np.asarray(ds["mass"].values),
            "molecule": np.asarray(ds["molecule"].values),
        }
    )


def mdanalysis_source(
    files: list[Path],
    fmt: str | None,
    topology_format: str | None,
    options: dict[str, Any] | None = None,
) -> FrameSource:
    """First pass over an MDAnalysis universe (topology file first, trajectories after)."""
    import warnings

    import MDAnalysis as mda

    kwargs: dict[str, Any] = dict(options or {})
    if fmt:
        kwargs["format"] = fmt
    if topology_format:
        kwargs["topology_format"] = topology_format
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        u = mda.Universe(str(files[0]), *[str(f) for f in files[1:]], **kwargs)
    atoms = u.atoms
    n = len(atoms)
    cells, times = [], []
    for ts in u.trajectory:
        dims = ts.dimensions
        cells.append(
            cell_matrix(np.asarray(dims, dtype=np.float64))
            if dims is not None
            else np.full((3, 3), np.nan)
        )
        times.append(float(ts.time))

    def attr(name: str, default: Any) -> Any:
        try:
            return getattr(atoms, name)
        except (AttributeError, Exception):  # MDAnalysis raises NoDataError (a ValueError)
            return default

    names = [str(v) for v in attr("names", np.array(["X"] * n))]
    types = [str(v) for v in attr("types", np.array(names))]
    masses = np.asarray(attr("masses", np.full(n, np.nan)), dtype=np.float64)
    frag = None
    if hasattr(u, "bonds"):
        try:
            frag = np.asarray(atoms.fragindices)
        except Exception:  # no bonds in the topology
            frag = None
    if frag is not None:
        molecule, msource = frag, "bonded fragments"
    else:
        molecule, msource = np.asarray(attr("resindices", np.arange(n))), "residues"
    conv = getattr(u.trajectory, "lammps_coordinate_convention", None)
    file_unwrapped = None if conv in (None, "auto") else conv in ("unwrapped", "scaled_unwrapped")
    if conv is not None and bool(kwargs.get("unwrap_images")):
        file_unwrapped = True  # LAMMPS image flags applied by MDAnalysis

    def iterate(start: int, stop: int) -> Iterator[np.ndarray]:
        for ts in u.trajectory[start:stop]:
            yield ts.positions

    return FrameSource(
        n_atoms=n,
        cells=np.asarray(cells, dtype=np.float64).reshape(-1, 3, 3),
        times=np.asarray(times),
        time_units="ps",
        names=names,
        types=types,
        masses=masses,
        molecule=molecule,
        molecule_source=msource,
        file_unwrapped=file_unwrapped,
        iterate=iterate,
        extra_attrs={"mdanalysis_format": type(u.trajectory).__name__},
    )


def ase_source(path: Path, fmt: str | None, dt: float | None) -> FrameSource:
    """First pass over the frames ase reads from one file (CIF, POSCAR, extended XYZ...)."""
    import ase.io

    cells, natoms, first = [], None, None
    for i, a in enumerate(ase.io.iread(str(path), index=":", format=fmt)):
        if natoms is None:
            natoms, first = len(a), a
        elif first is None or list(a.get_chemical_symbols()) != list(first.get_chemical_symbols()):
            raise ValueError(
                f"frame {i} has other atoms than frame 0; a trajectory keeps its atoms"
            )
        pbc = a.get_pbc()
        cells.append(
            np.asarray(a.cell.array, dtype=np.float64)
            if pbc.all() and a.cell.rank == 3
            else np.full((3, 3), np.nan)
        )
    if first is None:
        raise ValueError("the file holds no structure")
    symbols = list(first.get_chemical_symbols())
    nf = len(cells)
    times = np.arange(nf, dtype=np.float64) * (dt if dt is not None else 1.0)

    def iterate(start: int, stop: int) -> Iterator[np.ndarray]:
        if stop <= start:
            return
        for a in ase.io.iread(str(path), index=slice(start, stop), format=fmt):
            yield a.get_positions()

    return FrameSource(
        n_atoms=int(natoms or 0),
        cells=np.asarray(cells).reshape(-1, 3, 3),
        times=times,
        time_units="ps" if dt is not None else "frame",
        names=symbols,
        types=symbols,
        masses=np.asarray(first.get_masses(), dtype=np.float64),
        molecule=np.arange(int(natoms or 0)),
        molecule_source="atoms (ase files carry no molecules)",
        file_unwrapped=None,
        iterate=iterate,
    )

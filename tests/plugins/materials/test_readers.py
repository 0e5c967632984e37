"""Trajectory and structure ingest: frames, cells, times, atoms, unwrapping, refusals."""

from __future__ import annotations

import numpy as np
import pytest
from minjiang.core.errors import ContractError, ReaderError

from .conftest import datafiles, universe


def test_trajectory_frames_cells_times_and_atoms(runtime) -> None:
    d = datafiles()
    from MDAnalysis.lib.mdamath import triclinic_vectors
    from minjiang.plugins.materials import atom_table

    res = runtime.ingest(
        "materials.trajectory", [d.PSF_TRICLINIC, d.DCD_TRICLINIC], params={"frames_per_chunk": 4}
    )
    ds = res.to_xarray()
    u = universe(d.PSF_TRICLINIC, d.DCD_TRICLINIC)
    assert ds["positions"].dims == ("frame", "atom", "xyz")
    assert ds["positions"].dtype == np.float32
    assert ds["positions"].attrs["unwrapped"] is False
    assert ds["positions"].encoding.get("chunks", ds["positions"].data.chunksize)[0] == 4
    for ts in u.trajectory:
        np.testing.assert_array_equal(ds["positions"][ts.frame].values, ts.positions)
        np.testing.assert_allclose(
            ds["cell"][ts.frame].values, triclinic_vectors(ts.dimensions), atol=2e-4
        )
        np.testing.assert_allclose(ds["box"][ts.frame].values, ts.dimensions, rtol=1e-5)
        assert float(ds["time"][ts.frame]) == pytest.approx(ts.time)
    # the atoms as the Parquet table 'atoms', and from the per-atom arrays: the same
    table = res.table("atoms").to_pandas()
    assert sorted(res.record.tables) == ["atoms"]
    assert list(table.columns) == ["index", "name", "type", "mass", "molecule"]
    np.testing.assert_array_equal(table["index"], np.arange(len(u.atoms)))
    assert list(table["name"]) == list(u.atoms.names)
    assert list(table["type"]) == [str(t) for t in u.atoms.types]
    np.testing.assert_allclose(table["mass"], u.atoms.masses)
    np.testing.assert_array_equal(table["molecule"], u.atoms.fragindices)
    assert ds["molecule"].attrs["source"] == "bonded fragments"
    assert atom_table(ds).equals(table)


def test_unwrap_on_ingest_matches_unwrap_in_msd(runtime) -> None:
    d = datafiles()
    files = [d.PSF_TRICLINIC, d.DCD_TRICLINIC]
    wrapped = runtime.ingest("materials.trajectory", files, params={"frames_per_chunk": 3})
    unwrapped = runtime.ingest(
        "materials.trajectory", files, params={"frames_per_chunk": 3, "unwrap": True}
    )
    ds = unwrapped.to_xarray()
    assert ds["positions"].attrs["unwrapped"] is True
    from minjiang.plugins.materials.msd import unwrap

    raw = wrapped.to_xarray()
    expect = unwrap(raw["positions"].values, raw["cell"].values).astype(np.float32)
    np.testing.assert_array_equal(ds["positions"].values, expect)

    from minjiang.plugins.materials._operators import WrappedPositionsError

    with pytest.raises(WrappedPositionsError, match="unwrap=true"):
        runtime.run("materials.msd", inputs={"positions": wrapped})
    with pytest.raises(ContractError, match="already unwrapped"):
        runtime.run(
            "materials.msd",
            inputs={"positions": unwrapped, "cell": unwrapped},
            params={"unwrap": True},
        )
    a = runtime.run(
        "materials.msd",
        inputs={"positions": wrapped, "cell": wrapped, "atom_type": wrapped},
        params={"unwrap": True},
    )
    b = runtime.run("materials.msd", inputs={"positions": unwrapped, "atom_type": unwrapped})
    ta, tb = a.table("msd").to_pandas(), b.table("msd").to_pandas()
    assert sorted(set(ta["species"])) == ["4", "58"]
    # float32 storage of the unwrapped positions is the only difference
    np.testing.assert_allclose(ta["msd"], tb["msd"], rtol=1e-5, atol=1e-4)


def test_structure_reader_extended_xyz_and_cif(runtime, tmp_path) -> None:
    pytest.importorskip("ase")
    import ase.build
    import ase.io

    frames = []
    rng = np.random.default_rng(0)
    for _ in range(5):
        a = ase.build.bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat((2, 2, 2))
        a.rattle(0.05, rng=rng)
        frames.append(a)
    ase.io.write(tmp_path / "nacl.extxyz", frames, format="extxyz")
    res = runtime.ingest("materials.structure", [str(tmp_path / "nacl.extxyz")], params={"dt": 0.5})
    ds = res.to_xarray()
    assert ds.sizes["frame"] == 5 and ds.sizes["atom"] == 64
    for i, a in enumerate(frames):
        np.testing.assert_allclose(ds["positions"][i].values, a.get_positions(), atol=1e-5)
        np.testing.assert_allclose(ds["cell"][i].values, a.cell.array)
    np.testing.assert_allclose(ds["time"].values, np.arange(5) * 0.5)
    assert ds["atom_type"].attrs["labels"] == ["Cl", "Na"]
    atoms = res.table("atoms").to_pandas()
    assert list(atoms["type"]) == frames[0].get_chemical_symbols() == list(atoms["name"])
    np.testing.assert_allclose(atoms["mass"], frames[0].get_masses())
    np.testing.assert_array_equal(atoms["molecule"], np.arange(64))
    # g(r) of the rock salt: first Na-Cl neighbours at a/2
    out = (
        runtime.run(
            "materials.rdf",
            inputs={k: res for k in ("positions", "cell", "atom_type")},
            params={"a": {"types": ["Na"]}, "b": {"types": ["Cl"]}, "r_max": 5.5, "bins": 55},
        )
        .table("rdf")
        .to_pandas()
    )
    first = out.loc[out["count"] > 0].iloc[0]
    assert 2.5 < first["r"] < 3.0
    assert out.loc[out["r"] < 3.3, "coordination"].iloc[-1] == pytest.approx(6.0)

    ase.io.write(tmp_path / "nacl.cif", frames[0], format="cif")
    one = runtime.ingest("materials.structure", [str(tmp_path / "nacl.cif")]).to_xarray()
    np.testing.assert_allclose(one["cell"][0].values, frames[0].cell.array, atol=1e-4)
    assert one.sizes["frame"] == 1


def test_refusals(runtime, tmp_path) -> None:
    d = datafiles()
    with pytest.raises(ReaderError, match="unwrap twice"):
        runtime.ingest(
            "materials.trajectory",
            [d.PSF_TRICLINIC, d.DCD_TRICLINIC],
            params={"unwrap": True, "coordinates": "unwrapped"},
        )
    with pytest.raises(ReaderError, match="needs a periodic cell"):
        runtime.ingest(
            "materials.trajectory", [d.RANDOM_WALK_TOPO, d.RANDOM_WALK], params={"unwrap": True}
        )
    bad = tmp_path / "broken.xyz"
    bad.write_text("not a structure\n")
    with pytest.raises(ReaderError, match=r"materials\.structure"):
        runtime.ingest("materials.structure", [str(bad)])
    traj = runtime.ingest("materials.trajectory", [d.PSF_TRICLINIC, d.DCD_TRICLINIC])
    inputs = {"positions": traj, "cell": traj}
    with pytest.raises(ContractError, match="atom_name"):
        runtime.run("materials.rdf", inputs=inputs, params={"a": {"names": ["OH2"]}, "r_max": 3.0})
    with pytest.raises(ContractError, match="no atom has names"):
        runtime.run(
            "materials.rdf",
            inputs={**inputs, "atom_name": traj},
            params={"a": {"names": ["ZZ"]}, "r_max": 3.0},
        )
    with pytest.raises(ContractError, match="exceeds half the smallest box width"):
        runtime.run("materials.rdf", inputs=inputs, params={"r_max": 9.0})


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("LAMMPSDUMP_allcoords", {"lammps_coordinate_convention": "unwrapped"}),
        ("LAMMPSDUMP_image_vf", {"unwrap_images": True}),
    ],
)
def test_lammps_unwrapped_coordinates_from_the_file(runtime, name, options) -> None:
    d = datafiles()
    path = getattr(d, name)
    res = runtime.ingest(
        "materials.trajectory", [path], params={"format": "LAMMPSDUMP", "options": options}
    )
    ds = res.to_xarray()
    assert ds["positions"].attrs["unwrapped"] is True
    assert ds["positions"].attrs["unwrapped_source"] == "from the file (MDAnalysis)"
    u = universe(path, format="LAMMPSDUMP", **options)
    for ts in u.trajectory:
        np.testing.assert_array_equal(ds["positions"][ts.frame].values, ts.positions)
    wrapped = runtime.ingest("materials.trajectory", [path], params={"format": "LAMMPSDUMP"})
    assert wrapped.to_xarray()["positions"].attrs["unwrapped"] is False


@pytest.mark.parametrize("unwrap", [False, True])
def test_positions_stream_each_frame_once(runtime, monkeypatch, unwrap) -> None:
    """The ingest reads every frame once, in blocks, and never holds the trajectory."""
    d = datafiles()
    from minjiang.plugins.materials import _frames

    real = _frames.mdanalysis_source
    reads: list[tuple[int, int]] = []

    def counted(*args, **kwargs):
        source = real(*args, **kwargs)
        inner = source.iterate

        def iterate(start, stop):
            reads.append((start, stop))
            yield from inner(start, stop)

        source.iterate = iterate
        return source

    monkeypatch.setattr(_frames, "mdanalysis_source", counted)
    res = runtime.ingest(
        "materials.trajectory",
        [d.PSF_TRICLINIC, d.DCD_TRICLINIC],
        params={"frames_per_chunk": 3, "unwrap": unwrap},
    )
    assert res.to_xarray()["positions"].shape == (10, 375, 3)
    # the runtime's write blocks (at most 256 MiB each) cover each frame once, in order
    covered = [f for start, stop in reads for f in range(start, stop)]
    assert covered == list(range(10))
    # a block is read alone: frames 4-6 only (unwrapping first carries frames 0-3 through)
    from pathlib import Path

    from minjiang.plugins.materials._readers import TrajectoryReader

    reader = TrajectoryReader()
    reads.clear()
    ds = reader.open(
        [Path(d.PSF_TRICLINIC), Path(d.DCD_TRICLINIC)], reader.validate_params({"unwrap": unwrap})
    )
    assert reads == []  # opening keeps only the cells and times of its pass over the file
    block = ds["positions"][4:7].values
    assert block.shape == (3, 375, 3)
    assert reads == ([(0, 4), (4, 7)] if unwrap else [(4, 7)])

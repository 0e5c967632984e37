"""materials.rdf and materials.msd against independent references on shipped trajectories.

g(r): MDAnalysis ``InterRDF`` and ``freud.density.RDF`` on ``tip125_tric_C36.dcd``
(125 TIP3P waters in a strongly sheared, changing triclinic cell, 10 frames). The
normalisations differ and are converted, not fitted:

* minjiang: ``g = C <V> / (F P V_shell)``, ``P`` the eligible ordered pairs
  (``N (N - 1)`` for one selection, ``N_A N_B`` for disjoint ones), ``<V>`` the mean
  cell volume;
* InterRDF: the same when ``exclusion_block=(1, 1)`` removes self-pairs of one
  selection (then its ``N`` is ``N (N - 1)``), with the mean volume;
* freud (``normalization_mode='exact'``, frames accumulated with ``reset=False``):
  ``N_A N_B`` pairs (``N^2`` for one selection) and the volume of the last frame
  computed; so ``g_minjiang = g_freud * (<V> / V_last) * (N_A N_B / P)``.

MSD: MDAnalysis ``EinsteinMSD(fft=True)`` and ``tidynamics.msd`` on the random walk
shipped in MDAnalysisTests (100 atoms, 100 frames), and the norm of its MSD that
MDAnalysis's own tests regress against (3932.39927487146).
"""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import datafiles, universe

TOL = 5e-3


def _ingest(runtime, files, **params):
    return runtime.ingest("materials.trajectory", [str(f) for f in files], params=params)


def _rdf(runtime, traj, params):
    inputs = {k: traj for k in ("positions", "cell", "atom_name", "atom_type", "molecule")}
    res = runtime.run("materials.rdf", inputs=inputs, params=params)
    return res.table("rdf").to_pandas()


@pytest.mark.parametrize("pair", ["OH2-OH2", "OH2-H"])
def test_rdf_triclinic_against_interrdf_and_freud(runtime, pair: str) -> None:
    d = datafiles()
    freud = pytest.importorskip("freud")
    from MDAnalysis.analysis.rdf import InterRDF
    from MDAnalysis.lib.mdamath import triclinic_vectors

    # three frames per chunk: the histogram is merged from four tasks
    traj = _ingest(runtime, [d.PSF_TRICLINIC, d.DCD_TRICLINIC], frames_per_chunk=3)
    same = pair == "OH2-OH2"
    b_names = ["OH2"] if same else ["H1", "H2"]
    r_max, bins = 4.0, 40  # InterRDF's grid search allows at most 4.4 A in the last frame
    ours = _rdf(
        runtime,
        traj,
        {"a": {"names": ["OH2"]}, "b": {"names": b_names}, "r_max": r_max, "bins": bins},
    )
    u = universe(d.PSF_TRICLINIC, d.DCD_TRICLINIC)
    a = u.select_atoms("name OH2")
    b = a if same else u.select_atoms("name H1 H2")
    pairs = a.n_atoms * (a.n_atoms - 1) if same else a.n_atoms * b.n_atoms
    assert int(ours["pairs"][0]) == pairs

    mda = InterRDF(
        a, b, nbins=bins, range=(0, r_max), **({"exclusion_block": (1, 1)} if same else {})
    ).run()
    np.testing.assert_array_equal(ours["count"].to_numpy(), mda.results.count.astype(np.int64))
    dev_mda = np.abs(ours["g"].to_numpy() - mda.results.rdf).max()
    assert dev_mda < TOL

    # freud, frame by frame: its minimum image is wrong in the last, most sheared
    # frame (gamma 31.9 deg; checked against a brute-force search in test_kernels),
    # so the comparison runs over frames 0-8 with the same conversion
    ours9 = _rdf(
        runtime,
        _ingest(runtime, [d.PSF_TRICLINIC, d.DCD_TRICLINIC], frames_per_chunk=3),
        {"a": {"names": ["OH2"]}, "b": {"names": b_names}, "r_max": r_max, "bins": bins},
    )
    assert ours9.equals(ours)  # reuse: the same content-addressed result
    rdf = freud.density.RDF(bins=bins, r_max=r_max)
    vols, counts = [], np.zeros(bins, dtype=np.int64)
    from minjiang.plugins.materials.rdf import pair_histogram

    for ts in u.trajectory[:9]:
        h = triclinic_vectors(ts.dimensions).astype(np.float64)
        box = freud.box.Box.from_matrix(h.T)
        if same:
            rdf.compute((box, a.positions), reset=False)
        else:
            rdf.compute((box, b.positions), query_points=a.positions, reset=False)
        vols.append(abs(np.linalg.det(h)))
        counts += pair_histogram(
            ts.positions[None], h[None], a.indices, b.indices, r_max=r_max, nbins=bins
        )
    # float32 (freud) and float64 (minjiang) distances may put a pair on either side
    # of a bin edge: at most one pair per bin
    assert np.abs(counts - rdf.bin_counts.astype(np.int64)).max() <= 1
    from minjiang.plugins.materials.rdf import rdf_from_counts

    edges = np.linspace(0, r_max, bins + 1)
    g9, n9 = rdf_from_counts(
        counts, edges, frames=9, pairs=pairs, volume_sum=sum(vols), n_a=a.n_atoms
    )
    converted = rdf.rdf * (np.mean(vols) / vols[-1]) * (a.n_atoms * b.n_atoms / pairs)
    assert np.abs(g9 - converted).max() < TOL
    np.testing.assert_allclose(n9, rdf.n_r, atol=1.0 / (9 * a.n_atoms) + 1e-6)


def test_rdf_same_molecule_exclusion_against_interrdf(runtime) -> None:
    d = datafiles()
    from MDAnalysis.analysis.rdf import InterRDF

    traj = _ingest(runtime, [d.PSF_TRICLINIC, d.DCD_TRICLINIC])
    ours = _rdf(
        runtime,
        traj,
        {
            "a": {"names": ["OH2"]},
            "b": {"names": ["H1", "H2"]},
            "r_max": 4.0,
            "bins": 40,
            "exclude_same_molecule": True,
        },
    )
    u = universe(d.PSF_TRICLINIC, d.DCD_TRICLINIC)
    # water i's O is atom 3i and its hydrogens 3i+1, 3i+2: exclusion blocks (1, 2)
    mda = InterRDF(
        u.select_atoms("name OH2"),
        u.select_atoms("name H1 H2"),
        nbins=40,
        range=(0, 4.0),
        exclusion_block=(1, 2),
    ).run()
    assert int(ours["pairs"][0]) == 125 * 250 - 250
    np.testing.assert_array_equal(ours["count"].to_numpy(), mda.results.count.astype(np.int64))
    assert np.abs(ours["g"].to_numpy() - mda.results.rdf).max() < TOL
    with_own = _rdf(
        runtime,
        traj,
        {"a": {"names": ["OH2"]}, "b": {"names": ["H1", "H2"]}, "r_max": 4.0, "bins": 40},
    )
    # each water's two O-H bonds (0.96 A) in each of the 10 frames, and nothing else
    assert with_own["count"].sum() - ours["count"].sum() == 2 * 125 * 10


def test_rdf_orthorhombic_lammps_dump(runtime) -> None:
    d = datafiles()
    freud = pytest.importorskip("freud")
    from MDAnalysis.analysis.rdf import InterRDF

    traj = runtime.ingest("materials.trajectory", [d.LAMMPSDUMP], params={"format": "LAMMPSDUMP"})
    cell = traj.to_xarray()["cell"].values
    # right angles give an exactly orthorhombic cell (the kernel then checks one image)
    assert (cell[:, ~np.eye(3, dtype=bool)] == 0).all()
    ours = _rdf(runtime, traj, {"r_max": 2.8, "bins": 28})
    u = universe(d.LAMMPSDUMP, format="LAMMPSDUMP")
    mda = InterRDF(u.atoms, u.atoms, nbins=28, range=(0, 2.8), exclusion_block=(1, 1)).run()
    assert np.abs(ours["g"].to_numpy() - mda.results.rdf).max() < TOL
    rdf = freud.density.RDF(bins=28, r_max=2.8)
    vols = []
    for ts in u.trajectory:
        box = freud.box.Box(*ts.dimensions[:3])
        rdf.compute((box, u.atoms.positions), reset=False)
        vols.append(box.volume)
    n = u.atoms.n_atoms
    converted = rdf.rdf * (np.mean(vols) / vols[-1]) * (n * n / (n * (n - 1)))
    assert np.abs(ours["g"].to_numpy() - converted).max() < TOL


def test_msd_random_walk_against_einstein_msd_and_tidynamics(runtime) -> None:
    d = datafiles()
    tidynamics = pytest.importorskip("tidynamics")
    from MDAnalysis.analysis.msd import EinsteinMSD

    traj = _ingest(runtime, [d.RANDOM_WALK_TOPO, d.RANDOM_WALK], frames_per_chunk=16)
    res = runtime.run("materials.msd", inputs={"positions": traj}, params={"fit": [10, 50]})
    ours = res.table("msd").to_pandas().sort_values("lag")["msd"].to_numpy()
    u = universe(d.RANDOM_WALK_TOPO, d.RANDOM_WALK)
    mda = EinsteinMSD(u, "all", msd_type="xyz", fft=True).run()
    np.testing.assert_allclose(ours, mda.results.timeseries, rtol=1e-6, atol=1e-6)
    pos = np.stack([u.atoms.positions.copy() for _ in u.trajectory]).astype(np.float64)
    tidy = np.mean([tidynamics.msd(pos[:, i]) for i in range(pos.shape[1])], axis=0)
    np.testing.assert_allclose(ours, tidy, rtol=1e-6, atol=1e-6)
    assert np.linalg.norm(ours) == pytest.approx(3932.39927487146, abs=1e-5)
    diff = res.table("diffusion").to_pandas()
    lag = np.arange(100.0)
    slope = np.polyfit(lag[10:51], mda.results.timeseries[10:51], 1)[0]
    assert diff["D"][0] == pytest.approx(slope / 6, rel=1e-9)

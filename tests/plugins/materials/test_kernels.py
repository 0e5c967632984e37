"""Kernels of the materials plugin: numba against the NumPy reference, and invariants."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from minjiang.plugins.materials.msd import diffusion_fit, msd_per_atom, unwrap
from minjiang.plugins.materials.rdf import (
    eligible_pairs,
    face_distances,
    pair_histogram,
    rdf_from_counts,
)

CELLS = {
    "orthorhombic": np.diag([10.0, 12.0, 9.0]),
    "triclinic": np.array([[10.0, 0, 0], [3.0, 9.0, 0], [-2.0, 1.5, 11.0]]),
}


def _frames(rng: np.random.Generator, h: np.ndarray, frames: int, n: int) -> np.ndarray:
    s = rng.random((frames, n, 3))
    # some atoms outside the cell: the kernels wrap them
    return (s @ h + rng.normal(0, 4, (frames, n, 3))).astype(np.float32)


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("exclude", [False, True])
def test_pair_histogram_cpu_matches_reference(cell: str, exclude: bool) -> None:
    rng = np.random.default_rng(3)
    h = CELLS[cell]
    x = _frames(rng, h, 2, 150)
    cells = np.repeat(h[None], 2, axis=0)
    r_max = face_distances(h).min() / 2
    ia, ib = np.arange(0, 100), np.arange(60, 150)  # overlapping selections
    mol = np.arange(150) // 3 if exclude else None
    ref = pair_histogram(x, cells, ia, ib, r_max=r_max, nbins=40, molecule=mol, backend="reference")
    cpu = pair_histogram(x, cells, ia, ib, r_max=r_max, nbins=40, molecule=mol)
    assert cpu.dtype == np.int64
    assert ref.sum() > 1000
    np.testing.assert_array_equal(cpu, ref)


def test_pair_histogram_few_cells_per_axis_and_r_min() -> None:
    # r_max close to half the cell: one or two slabs per axis, offsets de-duplicated
    rng = np.random.default_rng(4)
    h = np.array([[8.0, 0, 0], [1.0, 7.5, 0], [0.5, -1.0, 9.0]])
    x = _frames(rng, h, 3, 60)
    cells = np.repeat(h[None], 3, axis=0)
    r_max = face_distances(h).min() / 2
    for r_min in (0.0, 1.0):
        ref = pair_histogram(
            x,
            cells,
            np.arange(60),
            np.arange(60),
            r_min=r_min,
            r_max=r_max,
            nbins=17,
            backend="reference",
        )
        cpu = pair_histogram(
            x, cells, np.arange(60), np.arange(60), r_min=r_min, r_max=r_max, nbins=17
        )
        np.testing.assert_array_equal(cpu, ref)


def test_reference_is_the_brute_force_minimum_image() -> None:
    rng = np.random.default_rng(5)
    h = CELLS["triclinic"]
    x = _frames(rng, h, 1, 40)[0].astype(np.float64)
    s = x @ np.linalg.inv(h)
    x = (s - np.floor(s)) @ h  # into the cell, so that shifts of two cells suffice
    shifts = np.array(list(itertools.product(range(-2, 3), repeat=3))) @ h
    d = x[None, :, :] - x[:, None, :]
    r = np.sqrt(((d[:, :, None, :] + shifts) ** 2).sum(-1).min(-1))
    np.fill_diagonal(r, np.inf)
    r_max = face_distances(h).min() / 2
    expect = np.histogram(r[r < r_max], bins=20, range=(0, r_max))[0]
    got = pair_histogram(x[None], h[None], np.arange(40), np.arange(40), r_max=r_max, nbins=20)
    np.testing.assert_array_equal(got, expect)


def test_eligible_pairs_counts_what_the_histogram_can_count() -> None:
    mol = np.array([0, 0, 0, 1, 1, 2, 3, 3])
    ia, ib = np.array([0, 1, 3, 5]), np.array([1, 2, 3, 4, 6])
    brute = sum(1 for a in ia for b in ib if a != b and mol[a] != mol[b])
    assert eligible_pairs(ia, ib, mol) == brute
    assert eligible_pairs(ia, ia) == 4 * 3
    assert eligible_pairs(ia, ib) == 4 * 5 - 2


def test_ideal_gas_g_is_one() -> None:
    rng = np.random.default_rng(6)
    h = CELLS["triclinic"]
    n, frames = 400, 20
    x = (rng.random((frames, n, 3)) @ h).astype(np.float64)
    cells = np.repeat(h[None], frames, axis=0)
    r_max = face_distances(h).min() / 2
    edges = np.linspace(0, r_max, 6)
    counts = pair_histogram(x, cells, np.arange(n), np.arange(n), r_max=r_max, nbins=5)
    vol = abs(np.linalg.det(h))
    g, coord = rdf_from_counts(
        counts, edges, frames=frames, pairs=n * (n - 1), volume_sum=vol * frames, n_a=n
    )
    np.testing.assert_allclose(g[1:], 1.0, atol=0.03)
    # n(r) of an ideal gas: (N - 1)/V * 4/3 pi r^3
    np.testing.assert_allclose(coord[-1], (n - 1) / vol * 4 / 3 * np.pi * r_max**3, rtol=0.03)


def test_pair_histogram_refuses_bad_input() -> None:
    h = CELLS["orthorhombic"]
    x = np.zeros((1, 4, 3))
    with pytest.raises(ValueError, match="half the smallest face distance"):
        pair_histogram(x, h[None], np.arange(4), np.arange(4), r_max=5.0, nbins=4)
    with pytest.raises(ValueError, match="no periodic cell"):
        pair_histogram(
            x, np.full((1, 3, 3), np.nan), np.arange(4), np.arange(4), r_max=1.0, nbins=4
        )
    with pytest.raises(ValueError, match="index_a"):
        pair_histogram(x, h[None], np.array([7]), np.arange(4), r_max=1.0, nbins=4)


@pytest.mark.parametrize("frames", [1, 2, 37, 128])
def test_msd_fft_matches_direct_sum(frames: int) -> None:
    rng = np.random.default_rng(frames)
    x = rng.normal(size=(frames, 9, 3)).cumsum(axis=0) * 2.0 + 500.0
    ref = msd_per_atom(x, backend="reference")
    fft = msd_per_atom(x.astype(np.float32))
    np.testing.assert_allclose(
        fft, msd_per_atom(x.astype(np.float32), backend="reference"), rtol=1e-9, atol=1e-9
    )
    np.testing.assert_allclose(msd_per_atom(x), ref, rtol=1e-10, atol=1e-9)


def test_msd_refuses_non_finite() -> None:
    x = np.zeros((4, 2, 3))
    x[1, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        msd_per_atom(x)


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_unwrap_recovers_the_path(cell: str) -> None:
    rng = np.random.default_rng(8)
    h = CELLS[cell]
    path = rng.normal(0, 0.8, (60, 20, 3)).cumsum(axis=0)
    s = path @ np.linalg.inv(h)
    wrapped = (s - np.floor(s)) @ h
    cells = np.repeat(h[None], 60, axis=0)
    got = unwrap(wrapped, cells)
    np.testing.assert_allclose(got - got[0], path - path[0], atol=1e-9)
    # in two blocks with the carry: the same
    first = unwrap(wrapped[:25], cells[:25])
    second = unwrap(wrapped[25:], cells[25:], start=(wrapped[24], first[-1]))
    np.testing.assert_allclose(np.concatenate([first, second]), got, atol=1e-12)


def test_diffusion_fit() -> None:
    t = np.arange(50.0)
    fit = diffusion_fit(t, 6 * 0.25 * t + 1.0, (5, 40))
    assert fit["D"] == pytest.approx(0.25)
    assert fit["points"] == 36
    with pytest.raises(ValueError, match="at least two"):
        diffusion_fit(t, t, (60, 70))

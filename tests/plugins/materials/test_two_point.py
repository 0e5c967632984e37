"""materials.image and materials.two_point: FFT counts against the reference, porespy,
the analytic S2 of overlapping spheres, and a real micrograph shipped with scikit-image."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from minjiang.core.errors import ContractError, ReaderError
from minjiang.plugins.materials.twopoint import lag_box, pair_counts, radial_average


@pytest.mark.parametrize("shape", [(23, 30), (9, 12, 11)])
@pytest.mark.parametrize("periodic", [False, True])
def test_fft_counts_match_the_reference(shape: tuple[int, ...], periodic: bool) -> None:
    rng = np.random.default_rng(len(shape))
    ind = rng.random(shape) < 0.35
    lags = lag_box(shape, [1.0] * len(shape), 7.0, periodic)
    ref = pair_counts(ind, lags, periodic=periodic, backend="reference")
    fft = pair_counts(ind, lags, periodic=periodic)
    for a, b in zip(ref, fft, strict=True):
        assert b.dtype == np.int64
        np.testing.assert_array_equal(a, b)
    # lags beyond a small block: no pair, no overlap
    small = ind[(slice(0, 3),) * len(shape)]
    for a, b in zip(
        pair_counts(small, lags, backend="reference"), pair_counts(small, lags), strict=True
    ):
        np.testing.assert_array_equal(a, b)


def test_radial_average_anisotropic_spacing() -> None:
    rng = np.random.default_rng(2)
    ind = rng.random((20, 25)) < 0.5
    spacing = [2.0, 0.5]
    lags = lag_box(ind.shape, spacing, 6.0, False)
    num, overlap = pair_counts(ind, lags)
    edges = np.linspace(0, 6, 7)
    s2, nv = radial_average(num, overlap, spacing, edges)
    ry, rx = np.meshgrid(
        np.arange(-lags[0], lags[0] + 1), np.arange(-lags[1], lags[1] + 1), indexing="ij"
    )
    d = np.hypot(ry * 2.0, rx * 0.5)
    per = num / overlap
    for k in range(6):
        sel = (d >= edges[k]) & (d < edges[k + 1])
        assert nv[k] == sel.sum()
        assert s2[k] == pytest.approx(per[sel].mean(), rel=1e-12)


def _spheres(n: int, radius: float, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.random((count, 3)) * n
    grid = np.indices((n, n, n)).reshape(3, -1).T.astype(float)
    solid = np.zeros(n**3, dtype=bool)
    for c in centres:  # periodic images: a stationary Boolean model on the torus
        d = grid - c
        d -= n * np.round(d / n)
        solid |= (d**2).sum(axis=1) <= radius**2
    return ~solid.reshape(n, n, n)


def _analytic(
    void: np.ndarray, radius: float, lags: tuple[int, ...], edges: np.ndarray
) -> np.ndarray:
    """Boolean model of spheres: S2_void(r) = phi^(1 + 3r/4R - r^3/16R^3), r < 2R, averaged
    over the same lag vectors as the estimate."""
    phi = void.mean()
    r = np.sqrt(
        sum(
            a.astype(float) ** 2
            for a in np.meshgrid(*[np.arange(-m, m + 1) for m in lags], indexing="ij")
        )
    )
    x = np.minimum(r, 2 * radius)
    s2 = phi ** (1 + 3 * x / (4 * radius) - x**3 / (16 * radius**3))
    return np.array([s2[(r >= lo) & (r < hi)].mean() for lo, hi in itertools.pairwise(edges)])


def test_two_point_overlapping_spheres_analytic_and_porespy(runtime, tmp_path) -> None:
    tifffile = pytest.importorskip("tifffile")
    void = _spheres(64, 5.0, 130, seed=1)
    tifffile.imwrite(tmp_path / "spheres.tif", void.astype(np.uint8))
    img = runtime.ingest(
        "materials.image", [str(tmp_path / "spheres.tif")], params={"voxel_size": [1, 1, 1]}
    )
    edges = np.linspace(0, 12, 13)
    for periodic, tol in ((True, 0.01), (False, 0.01)):
        t = (
            runtime.run(
                "materials.two_point",
                inputs={"image": img},
                params={"phase": 1, "r_max": 12, "bins": 12, "periodic": periodic},
            )
            .table("s2")
            .to_pandas()
        )
        lags = lag_box(void.shape, [1, 1, 1], 12, periodic)
        expect = _analytic(void, 5.0, lags, edges)
        assert np.abs(t["s2"].to_numpy() - expect).max() < tol
        assert t["phase_fraction"][0] == pytest.approx(void.mean())
        assert t["s2"][0] == pytest.approx(void.mean())  # only the zero lag is below 1 voxel
    ps = pytest.importorskip("porespy")
    ref = ps.metrics.two_point_correlation(void, bins=edges)
    np.testing.assert_allclose(t["s2"].to_numpy(), ref.probability_scaled, atol=1e-12)


def test_two_point_real_micrograph_against_porespy(runtime, tmp_path) -> None:
    pytest.importorskip("skimage")
    ps = pytest.importorskip("porespy")
    from skimage import data, filters

    cell = data.cell()  # quantitative phase micrograph of a cell (scikit-image's data)
    phase = cell > filters.threshold_otsu(cell)
    np.save(tmp_path / "cell.npy", phase.astype(np.uint8))
    img = runtime.ingest(
        "materials.image", [str(tmp_path / "cell.npy")], params={"voxel_size": [1, 1]}
    )
    t = (
        runtime.run(
            "materials.two_point",
            inputs={"image": img},
            params={"phase": 1, "r_max": 60, "bins": 30},
        )
        .table("s2")
        .to_pandas()
    )
    ref = ps.metrics.two_point_correlation(phase, bins=np.linspace(0, 60, 31))
    np.testing.assert_allclose(t["s2"].to_numpy(), ref.probability_scaled, atol=1e-12)


def test_chunked_image_is_counted_within_chunks(runtime, tmp_path) -> None:
    rng = np.random.default_rng(4)
    im = (rng.random((24, 30)) < 0.3).astype(np.uint8)
    np.save(tmp_path / "im.npy", im)
    img = runtime.ingest(
        "materials.image",
        [str(tmp_path / "im.npy")],
        params={"voxel_size": [1, 1], "chunks": {"y": 12, "x": 15}},
    )
    t = (
        runtime.run("materials.two_point", inputs={"image": img}, params={"r_max": 5, "bins": 5})
        .table("s2")
        .to_pandas()
    )
    lags = lag_box(im.shape, [1, 1], 5, False)
    num = sum(
        pair_counts(im[a : a + 12, b : b + 15] != 0, lags)[0] for a in (0, 12) for b in (0, 15)
    )
    ovl = sum(
        pair_counts(im[a : a + 12, b : b + 15] != 0, lags)[1] for a in (0, 12) for b in (0, 15)
    )
    s2, _ = radial_average(num, ovl, [1, 1], np.linspace(0, 5, 6))
    np.testing.assert_allclose(t["s2"].to_numpy(), s2, rtol=1e-12)
    with pytest.raises(ContractError, match="one chunk"):
        runtime.run(
            "materials.two_point", inputs={"image": img}, params={"r_max": 5, "periodic": True}
        )


def test_image_reader_tiff_stack_crop_and_refusals(runtime, tmp_path) -> None:
    tifffile = pytest.importorskip("tifffile")
    pytest.importorskip("skimage")
    import os

    from skimage import data

    path = os.path.join(
        os.path.dirname(data.__file__), "multipage.tif"
    )  # shipped with scikit-image
    expect = tifffile.imread(path)
    res = runtime.ingest(
        "materials.image", [path], params={"voxel_size": [2.0, 0.5, 0.5], "crop_bottom": 5}
    )
    ds = res.to_xarray()
    assert ds["image"].dims == ("z", "y", "x")
    np.testing.assert_array_equal(ds["image"].values, expect[:, :-5, :])
    assert ds["image"].attrs["spacing"] == [2.0, 0.5, 0.5]
    with pytest.raises(ReaderError, match="voxel size"):
        runtime.ingest("materials.image", [path])
    with pytest.raises(ReaderError, match="crop_bottom"):
        runtime.ingest(
            "materials.image", [path], params={"voxel_size": [1, 1, 1], "crop_bottom": 10_000}
        )
    # ImageJ spacing and resolution tags give the voxel size
    vol = np.zeros((3, 8, 9), dtype=np.uint8)
    tifffile.imwrite(
        tmp_path / "ij.tif",
        vol,
        imagej=True,
        resolution=(1 / 0.25, 1 / 0.25),
        metadata={"spacing": 1.5},
    )
    ij = runtime.ingest("materials.image", [str(tmp_path / "ij.tif")]).to_xarray()
    np.testing.assert_allclose(ij["image"].attrs["spacing"], [1.5, 0.25, 0.25])

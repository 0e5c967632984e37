"""materials.local_thickness and materials.pore_sizes against porespy and SciPy."""

from __future__ import annotations

import numpy as np
import pytest
from minjiang.core.errors import ContractError
from minjiang.plugins.materials.thickness import local_thickness


def _blobs(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Smooth random blobs (Gaussian-filtered noise thresholded at 60 % porosity)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.normal(size=shape), sigma=2.5, mode="wrap")
    return field > np.quantile(field, 0.4)


@pytest.mark.parametrize("shape", [(30, 34), (14, 18, 16)])
def test_cpu_matches_reference_and_covers_the_pores(shape: tuple[int, ...]) -> None:
    pores = _blobs(shape, seed=len(shape))
    ref = local_thickness(pores, backend="reference")
    cpu = local_thickness(pores)
    np.testing.assert_array_equal(cpu, ref)
    assert ((cpu > 0) == pores).all()  # every pore voxel is inside its own sphere
    from scipy import ndimage

    dt = ndimage.distance_transform_edt(pores)
    assert (cpu[pores] >= np.floor(dt[pores])).all()  # at least its own inscribed sphere
    assert cpu.max() == np.floor(dt).max()  # the largest sphere is the largest inscribed one


def test_local_thickness_chunked_with_halo_against_porespy(runtime, tmp_path) -> None:
    ps = pytest.importorskip("porespy")
    pores = _blobs((36, 40, 38), seed=7)
    np.save(tmp_path / "pores.npy", pores.astype(np.uint8))
    img = runtime.ingest(
        "materials.image",
        [str(tmp_path / "pores.npy")],
        params={"voxel_size": [0.5, 0.5, 0.5], "chunks": {"z": 12, "y": 14, "x": 19}},
    )
    expect = ps.filters.local_thickness(pores, method="bf", smooth=True)
    rmax = float(expect.max()) * 0.5
    lt = runtime.run(
        "materials.local_thickness", inputs={"image": img}, params={"phase": 1, "max_radius": rmax}
    )
    got = lt.to_xarray()["local_thickness"].values
    np.testing.assert_array_equal(got, (expect * 0.5).astype(np.float32))

    sizes = runtime.run("materials.pore_sizes", inputs={"local_thickness": lt})
    por = sizes.table("porosity").to_pandas()
    assert por["porosity"][0] == pytest.approx(ps.metrics.porosity(pores))
    psd = sizes.table("pore_sizes").to_pandas()
    radii, counts = np.unique(expect[expect > 0], return_counts=True)
    np.testing.assert_allclose(psd["radius"], radii * 0.5)
    np.testing.assert_array_equal(psd["voxels"], counts)
    assert psd["cumulative_fraction"][0] == pytest.approx(1.0)

    # a pore wider than declared: the step fails and says so
    with pytest.raises(ContractError, match="wider than max_radius"):
        runtime.run(
            "materials.local_thickness",
            inputs={"image": img},
            params={"phase": 1, "max_radius": rmax - 1.0},
        )


def test_local_thickness_refuses_anisotropic_voxels(runtime, tmp_path) -> None:
    np.save(tmp_path / "im.npy", np.ones((8, 9), dtype=np.uint8))
    img = runtime.ingest(
        "materials.image", [str(tmp_path / "im.npy")], params={"voxel_size": [1, 2]}
    )
    with pytest.raises(ContractError, match="not cubes"):
        runtime.run("materials.local_thickness", inputs={"image": img}, params={"max_radius": 3})

"""materials.porosity (one operator: porosity, percolating porosity, pore-size distribution)
across chunks, against porespy, scipy.ndimage.distance_transform_edt and scipy.ndimage.label,
and against its parts run on their own."""

from __future__ import annotations

import numpy as np
import pytest
from minjiang.core.errors import ContractError


def _pores(shape: tuple[int, ...], quantile: float, seed: int) -> np.ndarray:
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.normal(size=shape), sigma=2.0)
    return field > np.quantile(field, quantile)


def _ingest(runtime, tmp_path, pores: np.ndarray, voxel: float, chunks: dict[str, int]):
    np.save(tmp_path / "pores.npy", pores.astype(np.uint8))
    dims = ("z", "y", "x")[-pores.ndim :]
    return runtime.ingest(
        "materials.image",
        [str(tmp_path / "pores.npy")],
        params={"voxel_size": [voxel] * pores.ndim, "chunks": {d: chunks[d] for d in dims}},
    )


def _percolating(pores: np.ndarray, axis: int, rank: int) -> tuple[int, int, int]:
    from scipy import ndimage

    lab, n = ndimage.label(pores, structure=ndimage.generate_binary_structure(pores.ndim, rank))
    first = set(np.unique(np.take(lab, 0, axis=axis))) - {0}
    last = set(np.unique(np.take(lab, lab.shape[axis] - 1, axis=axis))) - {0}
    through = first & last
    return int(np.isin(lab, list(through)).sum()), len(through), n


def test_porosity_in_one_step_against_porespy_and_scipy(runtime, tmp_path) -> None:
    ps = pytest.importorskip("porespy")
    from scipy import ndimage

    pores = _pores((30, 34, 32), 0.55, seed=11)  # 45 % pores: some clusters cross, some not
    voxel = 0.5
    img = _ingest(runtime, tmp_path, pores, voxel, {"z": 10, "y": 17, "x": 11})  # 18 chunks
    lt_ref = ps.filters.local_thickness(pores, method="bf", smooth=True)
    dt = ndimage.distance_transform_edt(pores)
    assert lt_ref.max() == np.floor(dt).max()  # the largest pore is the largest inscribed ball
    rmax = float(np.floor(dt).max()) * voxel
    params = {"phase": 1, "max_radius": rmax, "axis": "z"}
    res = runtime.run("materials.porosity", inputs={"image": img}, params=params)
    assert sorted(res.record.tables) == ["percolation", "pore_sizes", "porosity"]

    por = res.table("porosity").to_pandas()
    assert por["porosity"][0] == pytest.approx(ps.metrics.porosity(pores))
    assert por["pore_voxels"][0] == pores.sum() and por["voxels"][0] == pores.size

    psd = res.table("pore_sizes").to_pandas()
    radii, counts = np.unique(lt_ref[lt_ref > 0], return_counts=True)
    np.testing.assert_allclose(psd["radius"], radii * voxel)
    np.testing.assert_array_equal(psd["voxels"], counts)
    np.testing.assert_allclose(psd["volume_fraction"], counts / counts.sum())

    perc = res.table("percolation").to_pandas()
    voxels, through, clusters = _percolating(pores, axis=0, rank=1)
    assert (perc["percolating_voxels"][0], perc["percolating_clusters"][0]) == (voxels, through)
    assert perc["clusters"][0] == clusters and 0 < voxels < pores.sum()
    trimmed = ps.filters.trim_nonpercolating_paths(pores, axis=0, conn="min")
    assert perc["percolating_voxels"][0] == trimmed.sum()
    assert perc["percolating_porosity"][0] == pytest.approx(trimmed.sum() / pores.size)

    # the local-thickness array is the intermediate the last step read: porespy's, voxel for voxel
    lt = runtime.open(res.record.inputs["local_thickness"].split(":")[0])["local_thickness"]
    np.testing.assert_array_equal(lt.values, (lt_ref * voxel).astype(np.float32))

    # the parts on their own give the same tables, and reuse the composite's sub-steps
    part = runtime.run(
        "materials.local_thickness",
        inputs={"image": img},
        params={"phase": 1, "max_radius": rmax},
    )
    assert part.reused
    sizes = runtime.run("materials.pore_sizes", inputs={"local_thickness": part})
    for name in ("porosity", "pore_sizes"):
        assert sizes.table(name).to_pandas().equals(res.table(name).to_pandas()), name
    alone = runtime.run("materials.percolation", inputs={"image": img}, params={"phase": 1})
    assert alone.table("percolation").to_pandas().equals(perc)

    # a pore wider than declared fails the step, naming the parameter
    with pytest.raises(ContractError, match="wider than max_radius"):
        runtime.run(
            "materials.porosity",
            inputs={"image": img},
            params={**params, "max_radius": rmax - 2 * voxel},
        )


def test_porosity_2d_eight_connected(runtime, tmp_path) -> None:
    from scipy import ndimage

    pores = _pores((60, 52), 0.5, seed=3)
    img = _ingest(runtime, tmp_path, pores, 1.0, {"y": 17, "x": 20})
    dt = ndimage.distance_transform_edt(pores)
    res = runtime.run(
        "materials.porosity",
        inputs={"image": img},
        params={"max_radius": float(np.floor(dt).max()), "axis": "x", "connectivity": 8},
    )
    perc = res.table("percolation").to_pandas()
    voxels, through, clusters = _percolating(pores, axis=1, rank=2)
    assert perc["percolating_voxels"][0] == voxels and perc["clusters"][0] == clusters
    assert perc["axis"][0] == "x" and perc["percolating_clusters"][0] == through
    psd = res.table("pore_sizes").to_pandas()
    assert psd["voxels"].sum() == pores.sum()
    assert psd["radius"].max() == np.floor(dt).max()
    assert psd["cumulative_fraction"][0] == pytest.approx(1.0)


def test_porosity_refusals_at_plan_time(runtime, tmp_path) -> None:
    np.save(tmp_path / "im.npy", np.ones((8, 9), dtype=np.uint8))
    img = runtime.ingest(
        "materials.image", [str(tmp_path / "im.npy")], params={"voxel_size": [1, 2]}
    )
    with pytest.raises(ContractError, match="not cubes"):
        runtime.run("materials.porosity", inputs={"image": img}, params={"max_radius": 3})
    with pytest.raises(ContractError, match="axis 'z'"):
        runtime.run(
            "materials.porosity",
            inputs={"image": img},
            params={"max_radius": 3, "spacing": [1, 1]},
        )
    with pytest.raises(ContractError, match="not defined in 2-D"):
        runtime.run(
            "materials.porosity",
            inputs={"image": img},
            params={"max_radius": 3, "spacing": [1, 1], "axis": "y", "connectivity": 26},
        )
    assert not runtime.catalog.list(domain="materials", include_hidden=True)[1:]  # only the ingest

"""materials.percolation across chunks against scipy.ndimage.label and porespy."""

from __future__ import annotations

import numpy as np
import pytest
from minjiang.core.errors import ContractError


def _expected(pores: np.ndarray, axis: int, structure: np.ndarray) -> tuple[int, int, int]:
    from scipy import ndimage

    lab, n = ndimage.label(pores, structure=structure)
    first = set(np.unique(np.take(lab, 0, axis=axis))) - {0}
    last = set(np.unique(np.take(lab, lab.shape[axis] - 1, axis=axis))) - {0}
    through = first & last
    return int(np.isin(lab, list(through)).sum()), len(through), n


@pytest.mark.parametrize(("connectivity", "rank"), [(6, 1), (26, 3)])
def test_percolation_chunked_against_scipy_and_porespy(
    runtime, tmp_path, connectivity, rank
) -> None:
    from scipy import ndimage

    rng = np.random.default_rng(connectivity)
    field = ndimage.gaussian_filter(rng.normal(size=(30, 26, 28)), sigma=1.5)
    pores = field > np.quantile(field, 0.72)  # near the percolation threshold: some clusters cross
    np.save(tmp_path / "p.npy", pores.astype(np.uint8))
    img = runtime.ingest(
        "materials.image",
        [str(tmp_path / "p.npy")],
        params={"voxel_size": [1, 1, 1], "chunks": {"z": 8, "y": 13, "x": 10}},
    )
    structure = ndimage.generate_binary_structure(3, rank)
    for axis, name in ((0, "z"), (2, "x")):
        t = (
            runtime.run(
                "materials.percolation",
                inputs={"image": img},
                params={"phase": 1, "axis": name, "connectivity": connectivity},
            )
            .table("percolation")
            .to_pandas()
        )
        perc, n_through, n = _expected(pores, axis, structure)
        assert t["percolating_voxels"][0] == perc
        assert t["percolating_clusters"][0] == n_through
        assert t["clusters"][0] == n
        assert t["pore_voxels"][0] == pores.sum()
        assert t["percolating_porosity"][0] == pytest.approx(perc / pores.size)
        ps = pytest.importorskip("porespy")
        ref = ps.filters.trim_nonpercolating_paths(
            pores, axis=axis, conn="min" if rank == 1 else "max"
        )
        assert t["percolating_voxels"][0] == ref.sum()
    assert perc > 0  # the test would not see a join across chunks otherwise


def test_percolation_refusals(runtime, tmp_path) -> None:
    np.save(tmp_path / "im.npy", np.ones((6, 7), dtype=np.uint8))
    img = runtime.ingest(
        "materials.image", [str(tmp_path / "im.npy")], params={"voxel_size": [1, 1]}
    )
    with pytest.raises(ContractError, match="not defined in 2-D"):
        runtime.run(
            "materials.percolation", inputs={"image": img}, params={"axis": "y", "connectivity": 6}
        )
    with pytest.raises(ContractError, match="axis 'z'"):
        runtime.run(
            "materials.percolation", inputs={"image": img}, params={"axis": "z", "connectivity": 4}
        )
    t = (
        runtime.run("materials.percolation", inputs={"image": img}, params={"axis": "x"})
        .table("percolation")
        .to_pandas()
    )
    assert t["percolating_porosity"][0] == 1.0

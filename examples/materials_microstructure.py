"""Two-point correlation and pore space of a porous microstructure with the materials plugin.

Generates a Boolean model of overlapping spheres (a classic model of porous media),
writes it as a TIFF stack, ingests it with its voxel size and computes S2(r) of the
pore phase, which it compares with the model's exact S2:
S2(r) = phi^(1 + 3r/4R - r^3/16R^3) for r < 2R, phi^2 beyond (phi the porosity).
Then ``materials.porosity`` gives, in one step, the porosity, the porosity connected
from the top face (z = 0) to the bottom one, and the pore-size distribution by local
thickness (``--max-radius``: the largest pore radius expected, which sets the halo).

    python examples/materials_microstructure.py                  # 48^3 voxels, seconds
    python examples/materials_microstructure.py --size 128 --radius 8
    python examples/materials_microstructure.py --tiff my_stack.tif --voxel 0.5 0.5 0.5
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np


def spheres(size: int, radius: float, count: int, seed: int = 0) -> np.ndarray:
    """Pore phase (True) of ``count`` overlapping spheres placed uniformly, periodic."""
    rng = np.random.default_rng(seed)
    grid = np.indices((size,) * 3).reshape(3, -1).T.astype(float)
    solid = np.zeros(size**3, dtype=bool)
    for c in rng.random((count, 3)) * size:
        d = grid - c
        d -= size * np.round(d / size)
        solid |= (d**2).sum(axis=1) <= radius**2
    return ~solid.reshape((size,) * 3)


def main(
    workdir: Path | None = None,
    *,
    size: int = 48,
    radius: float = 4.0,
    porosity: float = 0.7,
    tiff: str | None = None,
    voxel: tuple[float, float, float] = (1.0, 1.0, 1.0),
    max_radius: float | None = None,
) -> dict[str, float]:
    """Run the analysis; return a few summary numbers."""
    import minjiang as mj
    import tifffile

    workdir = Path(workdir or tempfile.mkdtemp(prefix="minjiang-materials-"))
    rt = mj.Runtime(store=workdir / "store", executor="local")
    if tiff is None:
        count = round(float(-np.log(porosity) * size**3 / (4 / 3 * np.pi * radius**3)))
        pores = spheres(size, radius, count)
        tiff = str(workdir / "spheres.tif")
        tifffile.imwrite(tiff, pores.astype(np.uint8))
    img = rt.ingest("materials.image", [tiff], params={"voxel_size": list(voxel)})
    r_max = 3 * radius * min(voxel)
    s2 = (
        rt.run(
            "materials.two_point",
            inputs={"image": img},
            params={"phase": 1, "r_max": r_max, "bins": 12, "periodic": True},
        )
        .table("s2")
        .to_pandas()
    )
    phi = float(s2["phase_fraction"][0])
    x = np.minimum(s2["r"].to_numpy() / min(voxel), 2 * radius)
    model = phi ** (1 + 3 * x / (4 * radius) - x**3 / (16 * radius**3))
    pore = rt.run(
        "materials.porosity",
        inputs={"image": img},
        params={
            "phase": 1,
            "max_radius": max_radius if max_radius is not None else 3 * radius * min(voxel),
            "axis": "z",
        },
    )
    perc = pore.table("percolation").to_pandas()
    psd = pore.table("pore_sizes").to_pandas()
    # the median pore radius by volume: the smallest radius with at most half of the pore
    # volume in pores at least as large
    cum = psd["cumulative_fraction"].to_numpy()
    median = float(psd["radius"][min(int(np.searchsorted(-cum, -0.5)), cum.size - 1)])
    out = {
        "porosity": phi,
        "s2_at_zero": float(s2["s2"][0]),
        "s2_far": float(s2["s2"].iloc[-1]),
        "phi_squared": phi**2,
        "max_model_difference_beyond_first_bin": float(np.abs(s2["s2"] - model)[1:].max()),
        "porosity_table": float(pore.table("porosity").to_pandas()["porosity"][0]),
        "percolating_porosity": float(perc["percolating_porosity"][0]),
        "largest_pore_radius": float(psd["radius"].max()),
        "median_pore_radius": median,
    }
    for k, v in out.items():
        print(f"{k:40s} {v:.4g}")
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=48)
    ap.add_argument("--radius", type=float, default=4.0)
    ap.add_argument("--porosity", type=float, default=0.7)
    ap.add_argument("--tiff")
    ap.add_argument("--voxel", type=float, nargs=3, default=(1.0, 1.0, 1.0))
    ap.add_argument("--max-radius", type=float, default=None, help="default: 3 sphere radii")
    a = ap.parse_args()
    main(
        size=a.size,
        radius=a.radius,
        porosity=a.porosity,
        tiff=a.tiff,
        voxel=tuple(a.voxel),
        max_radius=a.max_radius,
    )

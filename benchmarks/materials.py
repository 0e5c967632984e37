"""Materials workload: g(r) of a large trajectory with minjiang, freud and MDAnalysis.

Generates a trajectory on the fly (``--atoms`` particles in a cubic periodic box at the
number density of liquid water's oxygens, 0.0334 Å⁻³, each frame a fresh uniform
configuration; written frame by frame as XTC with a GRO topology, so memory stays one
frame), then, on the same frames, times:

* ``ingest``: ``materials.trajectory`` into the store (positions in frame blocks);
* ``rdf``: ``materials.rdf`` of all atoms (r_max a quarter of the box, ``--bins``);
* ``freud``: ``freud.density.RDF`` frame by frame (``reset=False``), reading the
  frames through MDAnalysis;
* ``mdanalysis``: ``InterRDF`` with ``exclusion_block=(1, 1)``;

and the largest per-bin difference of g(r) against each after converting their
normalisations (freud: N² and the last frame's volume; InterRDF with the exclusion:
N(N − 1) and the mean volume, as minjiang).

    python benchmarks/materials.py                                  # 20 000 atoms x 20 frames
    python benchmarks/materials.py --atoms 100000 --frames 1000     # the issue's size (~1.2 GB of XTC input)
    python benchmarks/materials.py --executor ray

Results: a table on stdout and ``benchmarks/results/materials-<date>.json`` (``--name``,
``--results``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DENSITY = 0.0334  # oxygen number density of liquid water, per cubic angstrom


def write_trajectory(
    directory: Path, atoms: int, frames: int, seed: int = 0
) -> tuple[Path, Path, float]:
    """A GRO topology and an XTC of ``frames`` uniform configurations (one frame in memory)."""
    import MDAnalysis as mda

    box = (atoms / DENSITY) ** (1 / 3)
    rng = np.random.default_rng(seed)
    u = mda.Universe.empty(atoms, trajectory=True, atom_resindex=np.zeros(atoms, dtype=int))
    u.add_TopologyAttr("names", ["O"] * atoms)
    u.add_TopologyAttr("resnames", ["SOL"])
    u.dimensions = [box, box, box, 90.0, 90.0, 90.0]
    gro, xtc = directory / "top.gro", directory / "traj.xtc"
    u.atoms.positions = rng.random((atoms, 3)) * box
    u.atoms.write(str(gro))
    with mda.Writer(str(xtc), atoms) as w:
        for _ in range(frames):
            u.atoms.positions = (rng.random((atoms, 3)) * box).astype(np.float32)
            u.dimensions = [box, box, box, 90.0, 90.0, 90.0]
            w.write(u.atoms)
    return gro, xtc, box


def run(atoms: int, frames: int, bins: int, executor: str, workdir: Path) -> dict:
    import minjiang as mj

    out: dict = {"atoms": atoms, "frames": frames, "bins": bins, "executor": executor}
    t = time.perf_counter()
    (workdir / "data").mkdir()
    gro, xtc, box = write_trajectory(workdir / "data", atoms, frames)
    out["generate_s"] = time.perf_counter() - t
    out["xtc_bytes"] = xtc.stat().st_size
    r_max = box / 4
    out["r_max"] = r_max

    rt = mj.Runtime(store=workdir / "store", executor=executor)
    t = time.perf_counter()
    traj = rt.ingest("materials.trajectory", [str(gro), str(xtc)])
    out["ingest_s"] = time.perf_counter() - t
    t = time.perf_counter()
    res = rt.run(
        "materials.rdf",
        inputs={"positions": traj, "cell": traj},
        params={"r_max": r_max, "bins": bins},
    )
    out["rdf_s"] = time.perf_counter() - t
    g = res.table("rdf").to_pandas()["g"].to_numpy()

    import MDAnalysis as mda

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        u = mda.Universe(str(gro), str(xtc))
    try:
        import freud

        rdf = freud.density.RDF(bins=bins, r_max=r_max)
        vols = []
        t = time.perf_counter()
        for ts in u.trajectory:
            fbox = freud.box.Box(*ts.dimensions[:3])
            rdf.compute((fbox, u.atoms.positions), reset=False)
            vols.append(fbox.volume)
        out["freud_s"] = time.perf_counter() - t
        conv = rdf.rdf * (np.mean(vols) / vols[-1]) * (atoms / (atoms - 1))
        out["freud_max_abs_dg"] = float(np.abs(conv - g).max())
    except ImportError:
        out["freud_s"] = None
    from MDAnalysis.analysis.rdf import InterRDF

    t = time.perf_counter()
    m = InterRDF(u.atoms, u.atoms, nbins=bins, range=(0, r_max), exclusion_block=(1, 1)).run()
    out["mdanalysis_s"] = time.perf_counter() - t
    out["mdanalysis_max_abs_dg"] = float(np.abs(m.results.rdf - g).max())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--atoms", type=int, default=20_000)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--bins", type=int, default=100)
    ap.add_argument("--executor", default="local", choices=["local", "ray"])
    ap.add_argument("--name", default=f"materials-{_dt.date.today():%Y%m%d}")
    ap.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--keep", action="store_true", help="keep the generated data and store")
    a = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="minjiang-bench-materials-"))
    try:
        out = run(a.atoms, a.frames, a.bins, a.executor, workdir)
    finally:
        if not a.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    out["host"] = {"platform": platform.platform(), "cpus": os.cpu_count()}
    for k, v in out.items():
        print(f"{k:24s} {v}")
    a.results.mkdir(parents=True, exist_ok=True)
    path = a.results / f"{a.name}.json"
    path.write_text(json.dumps(out, indent=2))
    print(f"saved {path}")


if __name__ == "__main__":
    main()

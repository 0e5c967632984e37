"""Materials workload: g(r) of a large trajectory with minjiang, freud and MDAnalysis.

Generates a trajectory on the fly: ``--atoms`` particles in a cubic periodic box at the
number density of liquid water's oxygens (0.0334 Å⁻³), each frame a fresh uniform
configuration drawn from its own seed, written frame by frame as DCD (float32, exact;
a GRO topology), so the generator holds one frame. Then, on the same frames:

* ``ingest``: ``materials.trajectory`` writes the positions into the store as Zarr,
  one chunk of frames at a time (the reader streams frame blocks; nothing holds the
  whole trajectory);
* ``rdf``: ``materials.rdf`` of all atoms (``--r-max``, ``--bins``) over every frame;
* ``freud``: ``freud.density.RDF`` frame by frame (``reset=False``), frames read
  through MDAnalysis, on the first ``--freud-frames`` frames;
* ``mdanalysis``: ``InterRDF(exclusion_block=(1, 1))`` on the first
  ``--mdanalysis-frames`` frames.

When a peer runs on fewer frames than minjiang, its time is also given scaled to all
frames (time per frame × frames, marked ``_scaled``), and its g(r) is compared with
minjiang's kernel on exactly its frames (positions read back from the store, counted by
the same ``pair_histogram`` the tasks run). Normalisations are converted before the
comparison: freud uses N² pairs and the last frame's volume (× ⟨V⟩/V_last × N/(N−1));
InterRDF with the exclusion block uses N(N−1) and the mean volume, as minjiang.

Sizes (``--size``; ``--atoms``/``--frames`` override):

* ``small``: 20 000 atoms × 10 frames (MDAnalysis on 2 frames; about a minute);
* ``medium``: 100 000 atoms × 50 frames (freud on all, MDAnalysis on 2 frames);
* ``full``: 100 000 atoms × 1000 frames, the issue's size (1.2 GB of float32
  positions; freud on 50 frames, MDAnalysis on 2, both scaled).

    python benchmarks/materials.py --size small
    python benchmarks/materials.py --size full --executor ray
    python benchmarks/materials.py --size medium --backend gpu    # on a GPU machine (CuPy)

Results: a table on stdout and ``benchmarks/results/materials-<size>-<date>.json``
(``--name``, ``--results``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DENSITY = 0.0334  # oxygen number density of liquid water, per cubic angstrom
#: (atoms, frames, freud frames, MDAnalysis frames); 0: every frame
SIZES = {
    "small": (20_000, 10, 0, 2),
    "medium": (100_000, 50, 0, 2),
    "full": (100_000, 1000, 50, 2),
}


def frame_positions(frame: int, atoms: int, box: float, seed: int = 0) -> np.ndarray:
    """Frame ``frame`` of the generated trajectory (its own seed: any frame on its own)."""
    rng = np.random.default_rng([seed, frame])
    return (rng.random((atoms, 3)) * box).astype(np.float32)


def write_trajectory(directory: Path, atoms: int, frames: int) -> tuple[Path, Path, float]:
    """A GRO topology and a DCD of ``frames`` uniform configurations (one frame in memory)."""
    import MDAnalysis as mda

    box = (atoms / DENSITY) ** (1 / 3)
    u = mda.Universe.empty(atoms, trajectory=True, atom_resindex=np.zeros(atoms, dtype=int))
    u.add_TopologyAttr("names", ["O"] * atoms)
    u.add_TopologyAttr("resnames", ["SOL"])
    dims = [box, box, box, 90.0, 90.0, 90.0]
    u.dimensions = dims
    gro, dcd = directory / "top.gro", directory / "traj.dcd"
    u.atoms.positions = frame_positions(0, atoms, box)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        u.atoms.write(str(gro))
        with mda.Writer(str(dcd), atoms) as w:
            for f in range(frames):
                u.atoms.positions = frame_positions(f, atoms, box)
                u.dimensions = dims
                w.write(u.atoms)
    return gro, dcd, box


def _universe(gro: Path, dcd: Path):  # type: ignore[no-untyped-def]
    import MDAnalysis as mda

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mda.Universe(str(gro), str(dcd))


def _kernel_g(rt, traj, frames: int, r_max: float, bins: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    """minjiang's g(r) on the first ``frames`` frames: the task kernel on positions read
    back from the store."""
    from minjiang.plugins.materials.rdf import eligible_pairs, pair_histogram, rdf_from_counts

    ds = traj.to_xarray()
    n = int(ds.sizes["atom"])
    idx = np.arange(n)
    counts = np.zeros(bins, dtype=np.int64)
    vol = 0.0
    for f in range(frames):
        cell = np.asarray(ds["cell"][f].values)
        counts += pair_histogram(
            np.asarray(ds["positions"][f : f + 1].values), cell[None], idx, idx,
            r_max=r_max, nbins=bins,
        )  # fmt: skip
        vol += abs(float(np.linalg.det(cell)))
    edges = np.linspace(0.0, r_max, bins + 1)
    g, _ = rdf_from_counts(
        counts, edges, frames=frames, pairs=eligible_pairs(idx, idx), volume_sum=vol, n_a=n
    )
    return g


def run(
    atoms: int,
    frames: int,
    bins: int,
    r_max: float,
    executor: str,
    freud_frames: int,
    mda_frames: int,
    workdir: Path,
    backend: str = "cpu",
    memory_budget: str = "2GiB",
) -> dict:
    import minjiang as mj

    freud_frames = min(freud_frames or frames, frames)
    mda_frames = min(mda_frames or frames, frames)
    out: dict = {
        "atoms": atoms,
        "frames": frames,
        "bins": bins,
        "r_max": r_max,
        "executor": executor,
        "backend": backend,
        "memory_budget": memory_budget,
        "freud_frames": freud_frames,
        "mdanalysis_frames": mda_frames,
        "positions_bytes": atoms * frames * 12,
    }
    t = time.perf_counter()
    (workdir / "data").mkdir()
    gro, dcd, box = write_trajectory(workdir / "data", atoms, frames)
    out["generate_s"] = time.perf_counter() - t
    out["dcd_bytes"] = dcd.stat().st_size
    out["box"] = box
    if r_max > box / 2:
        raise SystemExit(f"--r-max {r_max} exceeds half the box ({box / 2:.2f} Å)")

    rt = mj.Runtime(store=workdir / "store", executor=executor, memory_budget=memory_budget)
    t = time.perf_counter()
    traj = rt.ingest("materials.trajectory", [str(gro), str(dcd)])
    out["ingest_s"] = time.perf_counter() - t
    out["positions_chunks"] = list(traj.to_xarray()["positions"].data.chunksize)
    step = {
        "id": "rdf",
        "operator": "materials.rdf",
        "inputs": {"positions": traj.id, "cell": traj.id},
        "params": {"r_max": r_max, "bins": bins},
        "backend": backend,
    }
    plan = rt.plan({"steps": [step]})
    stages = plan.steps[0].stages
    out["rdf_tasks"] = {stage.name: len(stage.tasks) for stage in stages}
    out["rdf_task_memory_bytes"] = int(plan.steps[0].task_memory)
    t = time.perf_counter()
    res = rt.run(
        "materials.rdf",
        inputs={"positions": traj, "cell": traj},
        params={"r_max": r_max, "bins": bins},
        backend=backend,
    )
    out["rdf_s"] = time.perf_counter() - t
    out["rdf_s_per_frame"] = out["rdf_s"] / frames
    g_all = res.table("rdf").to_pandas()["g"].to_numpy()
    # the process's peak so far: generation, ingest and the g(r) step (local executor)
    out["peak_rss_minjiang_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    kernel_g: dict[int, np.ndarray] = {frames: g_all}

    def minjiang_g(k: int) -> np.ndarray:
        if k not in kernel_g:
            kernel_g[k] = _kernel_g(rt, traj, k, r_max, bins)
        return kernel_g[k]

    u = _universe(gro, dcd)
    try:
        import freud
    except ImportError:
        out["freud_s"] = None
    else:
        rdf = freud.density.RDF(bins=bins, r_max=r_max)
        vols = []
        t = time.perf_counter()
        for ts in u.trajectory[:freud_frames]:
            fbox = freud.box.Box(*ts.dimensions[:3])
            rdf.compute((fbox, fbox.wrap(u.atoms.positions - box / 2)), reset=False)
            vols.append(fbox.volume)
        out["freud_s"] = time.perf_counter() - t
        out["freud_s_per_frame"] = out["freud_s"] / freud_frames
        out["freud_s_scaled"] = out["freud_s_per_frame"] * frames
        conv = rdf.rdf * (np.mean(vols) / vols[-1]) * (atoms / (atoms - 1))
        out["freud_max_abs_dg"] = float(np.abs(conv - minjiang_g(freud_frames)).max())
    from MDAnalysis.analysis.rdf import InterRDF

    t = time.perf_counter()
    m = InterRDF(u.atoms, u.atoms, nbins=bins, range=(0, r_max), exclusion_block=(1, 1))
    m.run(stop=mda_frames)
    out["mdanalysis_s"] = time.perf_counter() - t
    out["mdanalysis_s_per_frame"] = out["mdanalysis_s"] / mda_frames
    out["mdanalysis_s_scaled"] = out["mdanalysis_s_per_frame"] * frames
    out["mdanalysis_max_abs_dg"] = float(np.abs(m.results.rdf - minjiang_g(mda_frames)).max())
    out["peak_rss_end_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    rt.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="small")
    ap.add_argument("--atoms", type=int, default=None, help="override the size's atoms")
    ap.add_argument("--frames", type=int, default=None, help="override the size's frames")
    ap.add_argument("--bins", type=int, default=100)
    ap.add_argument("--r-max", type=float, default=10.0, help="Å (water's first shells)")
    ap.add_argument("--executor", default="local", choices=["local", "ray"])
    ap.add_argument(
        "--backend", default="cpu", choices=["cpu", "gpu"], help="of the g(r) step (gpu: CuPy)"
    )
    ap.add_argument("--memory-budget", default="2GiB", help="of the runtime (bounds the tasks)")
    ap.add_argument("--freud-frames", type=int, default=None, help="0: every frame")
    ap.add_argument("--mdanalysis-frames", type=int, default=None, help="0: every frame")
    ap.add_argument("--name", default=None)
    ap.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--workdir", type=Path, default=None, help="where data and store go")
    ap.add_argument("--keep", action="store_true", help="keep the generated data and store")
    a = ap.parse_args()
    atoms, frames, ff, mf = SIZES[a.size]
    atoms = a.atoms or atoms
    frames = a.frames or frames
    ff = ff if a.freud_frames is None else a.freud_frames
    mf = mf if a.mdanalysis_frames is None else a.mdanalysis_frames
    workdir = Path(tempfile.mkdtemp(prefix="minjiang-bench-materials-", dir=a.workdir))
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    try:
        out = run(
            atoms, frames, a.bins, a.r_max, a.executor, ff, mf, workdir, a.backend, a.memory_budget
        )
    finally:
        if not a.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    out["size"] = a.size
    out["wall_s"] = time.perf_counter() - t0
    out["host"] = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        # a shared machine: the 1-minute load average before and after the run
        "loadavg_1min_before": load_before[0],
        "loadavg_1min_after": os.getloadavg()[0],
    }
    for k, v in out.items():
        print(f"{k:26s} {v}")
    a.results.mkdir(parents=True, exist_ok=True)
    path = a.results / f"{a.name or f'materials-{a.size}-{_dt.date.today():%Y%m%d}'}.json"
    path.write_text(json.dumps(out, indent=2))
    print(f"saved {path}")


if __name__ == "__main__":
    main()

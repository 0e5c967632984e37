"""The materials.structure_report pipeline, its quick-look PNG, and the default r_max."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import datafiles


def test_structure_report_pipeline(runtime) -> None:
    d = datafiles()
    from minjiang.plugins.materials.rdf import face_distances

    out = runtime.run_pipeline(
        "materials.structure_report", inputs={"trajectory": [d.PSF_TRICLINIC, d.DCD_TRICLINIC]}
    )
    assert [p.name for p in out.reports] == ["structure.png"]
    png = out.reports[0].read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    ds = out.results["ingest"].to_xarray()
    # default r_max: half the smallest face distance over all frames
    expect = min(face_distances(c).min() for c in ds["cell"].values) / 2
    rdf = out.results["rdf"].table("rdf").to_pandas()
    assert rdf["r_hi"].iloc[-1] == pytest.approx(expect)
    assert len(rdf) == 100
    # msd: the DCD's wrapped positions were unwrapped ('auto') with the cell
    msd = out.results["msd"].table("msd").to_pandas()
    assert sorted(set(msd["species"])) == ["4", "58"]
    diff = out.results["msd"].table("diffusion").to_pandas()
    assert diff["fit_t0"][0] == pytest.approx(0.9) and diff["fit_t1"][0] == pytest.approx(4.5)
    unwrapped = runtime.ingest(
        "materials.trajectory", [d.PSF_TRICLINIC, d.DCD_TRICLINIC], params={"unwrap": True}
    )
    direct = (
        runtime.run("materials.msd", inputs={"positions": unwrapped, "atom_type": unwrapped})
        .table("msd")
        .to_pandas()
    )
    np.testing.assert_allclose(
        msd.sort_values(["species", "lag"])["msd"].to_numpy(),
        direct.sort_values(["species", "lag"])["msd"].to_numpy(),
        rtol=1e-5,
        atol=1e-4,
    )


def test_quicklook_draws_s2_of_a_microstructure_pipeline(runtime, tmp_path) -> None:
    import minjiang as mj

    rng = np.random.default_rng(0)
    np.save(tmp_path / "im.npy", (rng.random((40, 50)) < 0.4).astype(np.uint8))
    pipe = mj.Pipeline.model_validate(
        {
            "name": "mylab.micrograph",
            "inputs": ["image"],
            "steps": [
                {
                    "id": "ingest",
                    "reader": "materials.image",
                    "paths": "$image",
                    "params": {"voxel_size": [0.5, 0.5]},
                },
                {
                    "id": "s2",
                    "operator": "materials.two_point",
                    "inputs": {"image": "ingest"},
                    "params": {"r_max": 8.0, "bins": 16},
                },
            ],
            "report": "materials.structure_quicklook",
        }
    )
    out = runtime.run_pipeline(pipe, inputs={"image": [str(tmp_path / "im.npy")]})
    assert [p.name for p in out.reports] == ["structure.png"]
    assert out.reports[0].read_bytes().startswith(b"\x89PNG")

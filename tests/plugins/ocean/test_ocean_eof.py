"""EOFs against the reference solutions shipped with ``eofs`` (tests/data, five weightings)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from minjiang.plugins.ocean.eof import gram_partial, project, solve

from .conftest import package_dir

SCHEMES = ["equal", "latitude", "area", "area_multi", "area_multi_mix"]


def _load(name: str) -> np.ndarray:
    return np.load(package_dir("eofs") / "tests" / "data" / f"{name}.npy")


def _signs(ours: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return np.sign(np.nansum(ours * ref, axis=tuple(range(1, ours.ndim))))


@pytest.mark.parametrize("backend", ["cpu", "reference"])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_blockwise_eofs_match_eofs_reference(scheme: str, backend: str) -> None:
    sst = _load("sst")
    ref_eofs, ref_pcs = _load(f"eofs.{scheme}"), _load(f"pcs.{scheme}")
    w = None if scheme == "equal" else _load(f"weights.{scheme}")
    k = ref_eofs.shape[0]
    blocks = [slice(0, 7), slice(7, 13), slice(13, 18)]  # three column blocks, summed
    gram = sum(
        gram_partial(sst[:, :, b], None if w is None else w[:, b], backend=backend) for b in blocks
    )
    sol = solve(gram, k)
    eofs = np.concatenate(
        [
            project(sst[:, :, b], None if w is None else w[:, b], sol["u"], sol["sigma"])
            for b in blocks
        ],
        axis=2,
    )
    s = _signs(eofs, ref_eofs)
    assert np.array_equal(np.isnan(eofs), np.isnan(ref_eofs))  # the land mask
    np.testing.assert_allclose(eofs * s[:, None, None], ref_eofs, atol=1e-12)
    np.testing.assert_allclose((sol["u"] * sol["sigma"]) * s[None, :], ref_pcs, atol=1e-11)
    np.testing.assert_allclose(
        sol["variance_fraction"] * 100, _load(f"variance.{scheme}"), atol=1e-11
    )
    np.testing.assert_allclose(
        sol["eigenvalues"], _load(f"eigenvalues.{scheme}"), rtol=1e-11, atol=1e-14
    )


def _eofs_file(tmp_path: Path) -> Path:
    import xarray as xr

    sst = _load("sst")
    ds = xr.Dataset(
        {
            "sst": (("time", "lat", "lon"), sst, {"units": "K"}),
            "weights": (("lat", "lon"), _load("weights.area")),
        },
        coords={
            "time": ("time", np.arange(sst.shape[0]) * 30.0, {"units": "days since 2000-01-01"}),
            "lat": ("lat", _load("latitude"), {"units": "degrees_north"}),
            "lon": ("lon", _load("longitude"), {"units": "degrees_east"}),
        },
    )
    path = tmp_path / "eofs_sst.nc"
    ds.to_netcdf(path)
    return path


def _check(out, scheme: str, k: int) -> None:  # type: ignore[no-untyped-def]
    ref = _load(f"eofs.{scheme}")[:k]
    s = _signs(out["eofs"].values, ref)
    np.testing.assert_allclose(out["eofs"].values * s[:, None, None], ref, atol=1e-12)
    np.testing.assert_allclose(
        out["pcs"].values * s[:, None], _load(f"pcs.{scheme}")[:, :k].T, atol=1e-11
    )
    np.testing.assert_allclose(
        out["variance_fraction"].values * 100, _load(f"variance.{scheme}")[:k], atol=1e-11
    )
    np.testing.assert_allclose(
        out["eigenvalues"].values, _load(f"eigenvalues.{scheme}")[:k], rtol=1e-11
    )


def test_eof_stages_end_to_end(runtime, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ds = runtime.ingest(
        "ocean.netcdf",
        [_eofs_file(tmp_path)],
        params={"variables": ["sst", "weights"]},
        name="test/eofs",
    )
    # sqrt(cos(lat)) weights from the grid: the 'latitude' solution
    gram = runtime.run("ocean.eof_gram", inputs={"x": "test/eofs:sst"}, params={"n_modes": 5})
    out = runtime.run(
        "ocean.eof_project", inputs={"x": "test/eofs:sst", "modes": gram}, params={"n_modes": 5}
    )
    _check(out.to_xarray(), "latitude", 5)
    # explicit per-cell weights as an input: the 'area' solution
    p = {"n_modes": 3}
    gram = runtime.run("ocean.eof_gram", inputs={"x": "test/eofs:sst", "weights": ds}, params=p)
    out = runtime.run(
        "ocean.eof_project", inputs={"x": "test/eofs:sst", "weights": ds, "modes": gram}, params=p
    )
    _check(out.to_xarray(), "area", 3)


def test_eof_composite_end_to_end(runtime, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    runtime.ingest(
        "ocean.netcdf",
        [_eofs_file(tmp_path)],
        params={"variables": ["sst", "weights"]},
        name="test/eofs",
    )
    res = runtime.run("ocean.eof", inputs={"x": "test/eofs:sst"}, params={"n_modes": 4})
    _check(res.to_xarray(), "latitude", 4)


def test_eof_split_over_space_writes_each_chunk_once(runtime, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """With a budget that splits the projection over space, the (mode, time) PCs and the
    per-mode spectra are written by one task only, and the answer is unchanged."""
    from minjiang.core import Runtime
    from minjiang.core.testing import assert_one_writer_per_chunk

    # pencils of 15 x 6 x 6 cells: 6 spatial blocks
    params = {"variables": ["sst"], "chunking": "pencils", "chunk_mib": 0.005}
    runtime.ingest("ocean.netcdf", [_eofs_file(tmp_path)], params=params, name="test/eofs")
    pipe = {
        "steps": [
            {
                "id": "eof",
                "operator": "ocean.eof",
                "inputs": {"x": "test/eofs:sst"},
                "params": {"n_modes": 4},
            }
        ]
    }
    with Runtime(store=runtime.store.url, executor="local", memory_budget="96KiB") as rt:
        plan = rt.plan(pipe)
        project = plan.steps[-1]
        assert project.n_tasks > 1, "the budget should split the projection"
        assert_one_writer_per_chunk(plan)
        pcs = {t.key for s in project.stages for t in s.tasks for w in t.writes if w.array == "pcs"}
        assert len(pcs) == 1
        out = rt.run_pipeline(pipe)
    _check(out["eof"].to_xarray(), "latitude", 4)

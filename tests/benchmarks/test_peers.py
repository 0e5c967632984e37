"""The domain peers (benchmarks/_peers.py) run in-process on the tiny inputs.

The labelling peers' outputs must equal ``scipy.ndimage.label`` of the whole mask as
a partition (cc3d numbers components differently); heatwave3 must write its outputs
from the NetCDF copy of the cube. No timing is asserted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    not (REPO / "benchmarks" / "_peers.py").exists(), reason="no benchmarks/ in this checkout"
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from benchmarks._data import SIZES, ensure_data

    root = tmp_path_factory.mktemp("peers")
    data = ensure_data(root / "data", SIZES["tiny"], "pencil", ("a", "mask"), log=lambda *a: None)
    return root, data


def _options(root: Path):  # type: ignore[no-untyped-def]
    from benchmarks._engines import EngineOptions

    return EngineOptions(cores=1, memory_budget="1GiB", work_dir=str(root), store=str(root))


@pytest.mark.parametrize("name", ["scipy-label", "cc3d"])
def test_label_peers_equal_scipy_as_a_partition(tiny, name: str) -> None:  # type: ignore[no-untyped-def]
    from scipy import ndimage

    from benchmarks._data import read_window
    from benchmarks._engines import create_engine
    from benchmarks._workloads import WORKLOADS, compare

    if name == "cc3d":
        pytest.importorskip("cc3d")
    root, data = tiny
    engine = create_engine(name, _options(root))
    wl = WORKLOADS["medicine_label"]
    assert engine.supports(WORKLOADS["ocean_mhw"]) is not None
    assert engine.supports(wl) is None
    out = engine.run(wl, data, root / f"out-{name}")
    window = {"z": slice(0, 40), "y": slice(0, 20), "x": slice(0, 30)}
    got = engine.fetch(wl, out.handle, window)
    mask = read_window(data.arrays["mask"], {})
    ref, n = ndimage.label(mask, structure=ndimage.generate_binary_structure(3, 1))
    assert out.details["components"] == n > 0
    report = compare(wl, got, {"labels": ref[:40, :20, :30]})
    assert report["ok"], report


def test_heatwave3_peer_writes_events(tiny) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("heatwave3")
    from benchmarks._engines import create_engine
    from benchmarks._workloads import WORKLOADS

    root, data = tiny
    engine = create_engine("heatwave3", _options(root))
    engine.setup()
    wl = WORKLOADS["ocean_mhw"]
    assert engine.supports(WORKLOADS["medicine_label"]) is not None
    info = engine.prepare(data, ("a",))
    assert Path(info["netcdf"]).stat().st_size > 0
    out = engine.run(wl, data, root / "out-hw3")
    written = out.details["written"]
    assert "clim" in written  # the tiny cube is too short a record for events
    assert all(Path(p).stat().st_size > 0 for p in written.values())
    assert np.isfinite(out.details["compute_s"])

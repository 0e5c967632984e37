"""``medicine.nibabel`` through a runtime: an Analyze pair ingested and read back."""

from __future__ import annotations

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")


def test_ingest_an_analyze_pair(runtime, tmp_path):
    data = np.arange(60, dtype=np.int16).reshape(3, 4, 5)  # (i, j, k) = (x, y, z)
    nib.save(nib.AnalyzeImage(data, np.diag([1.0, 2.0, 3.0, 1.0])), tmp_path / "scan.hdr")
    res = runtime.ingest("medicine.nibabel", [tmp_path / "scan.hdr"])
    assert res.record.producer["reader"] == "medicine.nibabel"
    image = res.to_xarray()["image"]
    assert image.dims == ("z", "y", "x")
    np.testing.assert_array_equal(image.values, data.transpose(2, 1, 0))
    assert list(image.attrs["spacing"]) == pytest.approx([3.0, 2.0, 1.0])

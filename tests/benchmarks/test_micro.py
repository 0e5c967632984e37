"""The kernel micro-benchmarks (benchmarks/_micro.py) count what each kernel reads and
returns. No timing is asserted: only that the byte counts are the arrays' own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    not (REPO / "benchmarks" / "_micro.py").exists(), reason="no benchmarks/ in this checkout"
)


def test_a_kernel_row_counts_its_input_and_the_arrays_it_returns() -> None:
    from benchmarks import _micro

    shape = (8, 6, 5)
    cases = {c.key: c for c in _micro._cases()}
    rows = _micro.kernel_benchmarks(
        shape,
        repeat=1,
        cases=[cases["bandmath.band_math"], cases["reductions.moments_partial[mean]"]],
    )
    band, mean = rows
    cells = int(np.prod(shape))
    assert band["ok"] and mean["ok"]
    assert band["input_bytes"] == 2 * 4 * cells  # two float32 inputs
    assert band["output_bytes"] == 4 * cells  # one float32 output
    assert mean["input_bytes"] == 4 * cells
    assert mean["output_bytes"] == 2 * 8 * 6 * 5  # count and mean per (y, x) cell
    for row in rows:
        total = row["input_bytes"] + row["output_bytes"]
        assert row["moved_gbs"] == pytest.approx(total / row["best_s"] / 1e9)
        assert row["gbs"] == pytest.approx(row["input_bytes"] / row["best_s"] / 1e9)


def test_returned_bytes_are_summed_through_dicts_and_tuples() -> None:
    from benchmarks._micro import _nbytes

    a = np.zeros((3, 4), np.float32)
    assert _nbytes(a) == 48
    assert _nbytes({"x": a, "y": (a, [a]), "n": 3}) == 3 * 48
    assert _nbytes(None) == 0

"""Every example runs at a small size (smoke tests)."""

from __future__ import annotations

import runpy
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_quickstart(tmp_path) -> None:
    main = runpy.run_path(str(EXAMPLES / "quickstart.py"))["main"]
    out = main("local", tmp_path, years=1)
    assert out["regions"] == 4
    assert 15 < out["mean_sst"] < 35


def test_every_example_has_a_smoke_test() -> None:
    tests = Path(__file__).resolve().parents[1]
    sources = "\n".join(p.read_text() for p in tests.rglob("test_*.py"))
    for example in EXAMPLES.glob("*.py"):
        assert example.name in sources or example.stem in sources, (
            f"examples/{example.name} is not run by any test"
        )

"""Every example runs at a small size (smoke tests)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_quickstart(tmp_path) -> None:
    main = runpy.run_path(str(EXAMPLES / "quickstart.py"))["main"]
    out = main("local", tmp_path, years=1)
    assert out["regions"] == 4
    assert 15 < out["mean_sst"] < 35


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.py") if p.name != "quickstart.py"))
def test_domain_examples_run(name, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    module = runpy.run_path(str(EXAMPLES / name))
    assert "main" in module, f"examples/{name} must define main()"
    module["main"](workdir=tmp_path)

"""Meta-tests that keep the public surface honest: every hook and every registered
operator and reader is documented, and every operator is exercised by a test."""

from __future__ import annotations

from pathlib import Path

import pytest
from minjiang.core import hookspecs

ROOT = Path(__file__).resolve().parents[1]
DOCS = "\n".join(
    p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
)
TESTS = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("*.py"))
HOOKS = sorted(n for n in dir(hookspecs) if n.startswith("minjiang_"))


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook: str) -> None:
    assert hook in (ROOT / "docs" / "plugins.md").read_text(), (
        f"{hook} has no section in docs/plugins.md"
    )
    assert (getattr(hookspecs, hook).__doc__ or "").count("\n") >= 3, (
        f"{hook} needs a full docstring"
    )


def _registered() -> list[str]:
    from minjiang.core._plugins import Registry, make_plugin_manager

    reg = Registry(*make_plugin_manager())
    return sorted([*reg.operators, *reg.readers, *reg.pipelines])


@pytest.mark.parametrize("name", _registered())
def test_every_operator_reader_and_pipeline_is_documented_and_tested(name: str) -> None:
    assert f"`{name}`" in DOCS or name in DOCS, f"{name} is not documented under docs/"
    assert name in TESTS, f"{name} is not used by any test"

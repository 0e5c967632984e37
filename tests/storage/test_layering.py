"""``minjiang.storage`` is the lower layer: it never imports ``minjiang.core`` (errors come
from ``minjiang.errors``, which both layers import), so there is no core ⇄ storage cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

STORAGE = Path(__file__).resolve().parents[2] / "storage"


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return found


def test_storage_modules_never_import_core() -> None:
    offenders = {
        f"{p.name}: {m}"
        for p in sorted(STORAGE.glob("*.py"))
        for m in _imports(p)
        if m == "minjiang.core" or m.startswith("minjiang.core.")
    }
    assert not offenders, f"storage imports core: {sorted(offenders)}"


def test_importing_storage_loads_no_core_module() -> None:
    code = (
        "import sys, minjiang.storage as s; s.open_store; s.Catalog; s.read_region; "
        "print(sorted(m for m in sys.modules if m.startswith('minjiang.core')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_core_errors_are_the_same_classes() -> None:
    import minjiang.core.errors as core_errors
    import minjiang.errors as errors

    assert core_errors.__all__ == errors.__all__
    for name in errors.__all__:
        assert getattr(core_errors, name) is getattr(errors, name), name

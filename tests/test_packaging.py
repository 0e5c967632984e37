"""The folder-to-package mapping holds: every package is listed, guarded and typed."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAPPING = {
    "core/_facade": "minjiang",
    "core": "minjiang.core",
    "kernels": "minjiang.kernels",
    "storage": "minjiang.storage",
    "plugins": "minjiang.plugins",
    "web": "minjiang.web",
}


def _packages() -> set[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return set(data["tool"]["setuptools"]["packages"])


def test_every_package_folder_is_listed_and_typed() -> None:
    listed = _packages()
    for folder, pkg in MAPPING.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base)
            if folder == "core" and rel.parts[:1] == ("_facade",):
                continue
            name = ".".join([pkg, *rel.parts]) if rel.parts else pkg
            assert name in listed, (
                f"{name} ({init.parent}) is missing from [tool.setuptools] packages"
            )
        assert (base / "py.typed").exists(), f"{folder}/py.typed is missing"


def test_bare_import_from_repo_root_fails_loudly() -> None:
    for folder in ("core", "kernels", "storage", "plugins", "web"):
        out = subprocess.run(
            [sys.executable, "-c", f"import {folder}"], cwd=ROOT, capture_output=True, text=True
        )
        assert out.returncode != 0
        assert f"minjiang.{folder}" in out.stderr

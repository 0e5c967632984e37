"""Run mypy on minjiang as it is installed, and report errors at their source paths.

pyproject.toml maps four folders into one package with setuptools ``package-dir``
(``core/_facade`` -> ``minjiang``, ``core`` -> ``minjiang.core``, ...). The default
editable install resolves that mapping with an import hook, which mypy cannot follow:
to mypy, ``minjiang.*`` would not resolve and every public name would be ``Any``. So
this script lays the folders out as the package under ``build/typecheck/`` (symlinks
to the source files, following pyproject's ``package-dir`` table), runs mypy on
``-p minjiang`` with that folder on ``MYPYPATH``, and prints each error at the path of
its source file (``core/_runtime.py:12: error: ...``). The tree is rebuilt on every
run, so new and removed modules are always seen, and the installed package is left
as it is (a strict editable install would miss files added after it was made).

Usage: ``python .ci/mypy.py [MYPY ARGS...]`` (default ``-p minjiang``); the exit status
is mypy's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TREE = ROOT / "build" / "typecheck"


def package_dirs() -> dict[str, Path]:
    """``package-dir`` of pyproject.toml: import name -> source folder."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    table = data["tool"]["setuptools"]["package-dir"]
    return {name: ROOT / folder for name, folder in table.items()}


def build_tree(dest: Path = TREE) -> Path:
    """Write the package as symlinks under ``dest`` (replacing what was there)."""
    mapping = package_dirs()
    mapped = {folder.resolve() for folder in mapping.values()}
    if dest.exists():
        shutil.rmtree(dest)
    for name, folder in sorted(mapping.items()):
        target = dest.joinpath(*name.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for entry in sorted(folder.iterdir()):
            # a folder that is mapped itself (core/_facade) belongs to its own package
            if entry.resolve() in mapped or entry.name == "__pycache__":
                continue
            if entry.is_dir() and not (entry / "__init__.py").exists():
                continue
            if entry.is_file() and entry.suffix not in (".py", ".pyi") and entry.name != "py.typed":
                continue
            (target / entry.name).symlink_to(entry.resolve(), target_is_directory=entry.is_dir())
    return dest


def source_path(path: str, tree: Path) -> str:
    """The source file behind a path inside the tree, relative to the repository."""
    full = Path(path) if Path(path).is_absolute() else Path.cwd() / path
    try:
        full.relative_to(tree)
    except ValueError:
        return path
    real = Path(os.path.realpath(full))
    try:
        return os.fspath(real.relative_to(ROOT))
    except ValueError:
        return os.fspath(real)


def main(argv: list[str]) -> int:
    tree = build_tree()
    env = dict(
        os.environ,
        MYPYPATH=os.pathsep.join(filter(None, [os.fspath(tree), os.environ.get("MYPYPATH")])),
    )
    args = argv or ["-p", "minjiang"]
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    where = re.compile(r"^(?P<path>[^:\s]+\.pyi?)(?=:)", re.MULTILINE)
    for stream, text in ((sys.stdout, proc.stdout), (sys.stderr, proc.stderr)):
        stream.write(where.sub(lambda m: source_path(m["path"], tree), text))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

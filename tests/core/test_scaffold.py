"""``minjiang new-plugin``: the name checks, the files written, and (slow) the generated
package installed in a fresh virtual environment, listed by ``minjiang plugins``,
accepted by ``minjiang validate`` and passing its own tests there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
from importlib.metadata import entry_points
from pathlib import Path

import minjiang as mj
import pytest
from minjiang.core._scaffold import (
    TEMPLATE,
    plugin_fields,
    scaffold_plugin,
    template_files,
    validate_plugin_name,
)
from minjiang.core.cli import app
from minjiang.core.errors import ParameterError, PluginError
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner(env={"COLUMNS": "200"})


@pytest.mark.parametrize("name", ["mylab", "lab2", "tree_rings", "a" * 32])
def test_good_names_pass(name: str) -> None:
    assert validate_plugin_name(name, installed=[]) == name


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("MyLab", "'mylab'"),
        ("my-lab", "'my_lab'"),
        ("2lab", "e.g."),
        ("_lab", "e.g."),
        ("lab.ops", "'lab_ops'"),
        ("a" * 33, "at most 32"),
        ("", "e.g. 'mylab'"),
    ],
)
def test_bad_names_are_refused_with_the_form(name: str, hint: str) -> None:
    with pytest.raises(ParameterError, match="lowercase letters") as info:
        validate_plugin_name(name, installed=[])
    assert hint in str(info.value)


@pytest.mark.parametrize("name", ["class", "import", "minjiang", "tests"])
def test_reserved_names_are_refused(name: str) -> None:
    with pytest.raises(ParameterError, match="reserved"):
        validate_plugin_name(name, installed=[])


def test_names_of_installed_plugins_are_refused() -> None:
    for name in ("ocean", "array"):  # built-in plugins, installed through entry points
        with pytest.raises(PluginError, match=f"already called '{name}'"):
            validate_plugin_name(name)
    with pytest.raises(PluginError, match="already called 'lab'"):
        validate_plugin_name("lab", installed=["lab"])


def test_a_name_whose_package_is_importable_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "minjiang_shadowed").mkdir()
    (tmp_path / "minjiang_shadowed" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match="'minjiang_shadowed' is already importable"):
        validate_plugin_name("shadowed", installed=[])


def test_nothing_is_written_into_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(ParameterError, match="not an empty folder"):
        scaffold_plugin("mylab", tmp_path, installed=[])
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
    with pytest.raises(ParameterError, match="lowercase"):
        scaffold_plugin("Bad Name", tmp_path / "new", installed=[])
    assert not (tmp_path / "new").exists()


def test_templates_are_shipped_as_package_data() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = data["tool"]["setuptools"]["package-data"]["minjiang.core._scaffold"]
    files = {TEMPLATE / rel for rel in template_files()}
    assert files, f"no templates under {TEMPLATE}"
    # setuptools globs package data relative to the package folder, '**' at any depth
    shipped = {p for pattern in patterns for p in TEMPLATE.parent.glob(pattern)}
    assert files <= shipped, f"templates not shipped: {sorted(files - shipped)}"


def test_the_generated_package(tmp_path: Path) -> None:
    target = tmp_path / "pkg"
    written = scaffold_plugin("kitlab", target, installed=[])
    fields = plugin_fields("kitlab")
    rel = sorted(p.relative_to(target).as_posix() for p in written)
    assert rel == [
        "README.md",
        "docs/kitlab.md",
        "pyproject.toml",
        "src/minjiang_kitlab/__init__.py",
        "src/minjiang_kitlab/_operators.py",
        "src/minjiang_kitlab/_pipelines.py",
        "src/minjiang_kitlab/_reader.py",
        "src/minjiang_kitlab/boxmean/__init__.py",
        "src/minjiang_kitlab/boxmean/_cpu.py",
        "src/minjiang_kitlab/boxmean/_reference.py",
        "src/minjiang_kitlab/py.typed",
        "tests/conftest.py",
        "tests/test_boxmean.py",
        "tests/test_conformance.py",
        "tests/test_docs.py",
        "tests/test_plugin.py",
    ]
    for path in written:
        assert "{{" not in path.read_text(), f"{path} has an unfilled template field"
    project = tomllib.loads((target / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["minjiang"] == {"kitlab": "minjiang_kitlab"}
    assert project["project"]["name"] == "minjiang-kitlab"
    init = (target / "src/minjiang_kitlab/__init__.py").read_text()
    assert f'MINJIANG_API = "{fields["api_range"]}"' in init
    major = int(mj.API_VERSION.split(".")[0])
    assert fields["api_range"] == f">={mj.API_VERSION},<{major + 1}"
    # the generated code is lint-clean under the project's own rules
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    if ruff is None:
        pytest.skip("ruff is not installed beside this interpreter")
    out = subprocess.run(
        [
            ruff,
            "check",
            "--isolated",
            "--line-length",
            "100",
            "--select",
            "E,F,W,B,UP,RUF",
            "--ignore",
            "RUF001,RUF002,RUF003",
            str(target),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_generated_plugin_registers_and_validates_in_process(tmp_path: Path) -> None:
    """Imported from its src folder and registered on a runtime, the plugin loads with
    no problem and `validate` finds nothing wrong in it."""
    import importlib

    from minjiang.core._plugins import Registry, make_plugin_manager
    from minjiang.core._validate import validate_plugins

    scaffold_plugin("kitinproc", tmp_path / "pkg", installed=[])
    sys.path.insert(0, str(tmp_path / "pkg" / "src"))
    try:
        module = importlib.import_module("minjiang_kitinproc")
        pm, problems = make_plugin_manager([module], entry_points=False)
        registry = Registry(pm, problems)
        [report] = validate_plugins(registry, ["minjiang_kitinproc"])
        # registered under its module name here, so the namespace check names it
        assert {f.check for f in report.findings} == {"namespace"}
        assert sorted(registry.operators) == ["kitinproc.box_mean"]
        assert sorted(registry.readers) == ["kitinproc.npy"]
        assert sorted(registry.pipelines) == ["kitinproc.smooth"]
        pm2, problems2 = make_plugin_manager([], entry_points=False)
        pm2.register(module, name="kitinproc")
        [report] = validate_plugins(Registry(pm2, problems2), ["kitinproc"])
        assert report.ok and not report.findings, report.findings
        assert report.api_range == plugin_fields("kitinproc")["api_range"]
    finally:
        sys.path.remove(str(tmp_path / "pkg" / "src"))
        for name in [m for m in sys.modules if m.startswith("minjiang_kitinproc")]:
            del sys.modules[name]


def test_the_command_writes_the_package(tmp_path: Path) -> None:
    out = runner.invoke(app, ["new-plugin", "kitcli", "--directory", str(tmp_path / "p")])
    assert out.exit_code == 0, out.output
    assert "wrote 16 files of plugin kitcli" in out.output
    assert (tmp_path / "p" / "src" / "minjiang_kitcli" / "boxmean" / "_cpu.py").is_file()
    again = runner.invoke(app, ["new-plugin", "ocean", "--directory", str(tmp_path / "q")])
    assert isinstance(again.exception, PluginError)
    assert not (tmp_path / "q").exists()


def _fresh_venv(where: Path) -> Path:
    """A fresh virtual environment whose own site-packages come first, on top of the
    packages of the environment running the tests.

    Offline by construction: a ``.pth`` file in the new environment adds this
    environment's site-packages (``site.addsitedir``, so its ``.pth`` files, minjiang's
    editable install among them, are processed too), so minjiang and every dependency
    resolve without an index. What is installed into the new environment goes into its
    own site-packages and stays invisible to this one. (``venv --system-site-packages``
    would expose the base interpreter's packages, not this environment's.)
    """
    venv.EnvBuilder(with_pip=False, clear=True).create(where)
    python = where / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    parent = sysconfig.get_paths()["purelib"]
    Path(purelib, "_minjiang_parent.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    return python


@pytest.mark.slow
def test_a_generated_plugin_installs_lists_validates_and_passes_its_tests(tmp_path: Path) -> None:
    """Generate a plugin, install it (``pip install --no-deps -e``) in a fresh virtual
    environment (see :func:`_fresh_venv`: offline, on top of this environment's
    packages), then in that environment: ``minjiang plugins`` lists it, ``minjiang
    validate`` finds no problem, and its own tests pass."""
    pkg = tmp_path / "minjiang-kitvenv"
    scaffold_plugin("kitvenv", pkg)
    python = _fresh_venv(tmp_path / "venv")
    env = {**os.environ, "COLUMNS": "200", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-deps", "--no-build-isolation", "--no-index", "-e", str(pkg)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    # installed in the new environment only
    assert "kitvenv" not in [ep.name for ep in entry_points(group="minjiang")]

    cli = [str(python), "-m", "minjiang.core.cli"]
    listed = subprocess.run(
        [*cli, "plugins", "--store", str(tmp_path / "store")],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stdout + listed.stderr
    row = next(line for line in listed.stdout.splitlines() if " kitvenv " in line)
    assert "kitvenv.box_mean" in row and "kitvenv.npy" in row and "kitvenv.smooth" in row

    checked = subprocess.run(
        [*cli, "validate", "kitvenv", "--json"],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    [report] = json.loads(checked.stdout)["plugins"]
    assert report["package"] == "minjiang-kitvenv" and report["version"] == "0.1.0"
    assert report["findings"] == [] and len(report["checked"]) == 3

    tests = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        capture_output=True, text=True, env=env, timeout=600, cwd=pkg,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    assert " passed" in tests.stdout and "failed" not in tests.stdout

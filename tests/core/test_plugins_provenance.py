"""Which installed distribution provides a plugin: asked by name first, scanned otherwise."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from pathlib import Path

import pytest
from minjiang.core._plugins import _distribution, _named_distribution


@functools.cache
def _installed() -> Mapping[str, list[str]]:
    return packages_distributions()  # seconds on a large environment: once per session


def _scanned(module: str, table: Mapping[str, list[str]] | None = None) -> dict[str, str]:
    """The answer from scanning every installed distribution (the reference)."""
    top = module.split(".", 1)[0]
    for dist in sorted((_installed() if table is None else table).get(top, [])):
        try:
            return {"package": dist, "version": version(dist)}
        except PackageNotFoundError:
            continue
    return {}


def test_every_registered_plugin_gets_the_scanned_answer(runtime) -> None:
    registry = runtime.registry
    modules = {
        str(getattr(obj, "__name__", None) or type(obj).__module__)
        for _, obj in registry.pm.list_name_plugin()
    }
    assert "minjiang.plugins.array" in modules
    for module in sorted(modules):
        assert _distribution(module) == _scanned(module, packages_distributions()), module
    assert _distribution("minjiang.plugins.array") == {
        "package": "minjiang",
        "version": version("minjiang"),
    }
    for kind, names in (("operator", registry.operators), ("reader", registry.readers)):
        for name in names:
            prov = registry.provenance(kind, name)
            assert {k: prov[k] for k in ("package", "version")} == _scanned(prov["module"])


@pytest.mark.parametrize("module", ["yaml", "zarr.core", "numpy", "no_such_module_here"])
def test_modules_named_otherwise_than_their_distribution(module: str) -> None:
    # yaml comes from PyYAML: the scan answers; a module no distribution provides: {}
    assert _distribution(module) == _scanned(module)


def _fake_dist(site: Path, name: str, files: list[str], top_level: str | None) -> None:
    info = site / f"{name}-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
    for f in files:  # importlib.metadata lists only the installed files that exist
        (site / f).parent.mkdir(parents=True, exist_ok=True)
        (site / f).write_text("")
    record = [*files, f"{info.name}/METADATA,,"]
    if top_level is not None:
        (info / "top_level.txt").write_text(top_level)
        record.append(f"{info.name}/top_level.txt,,")
    (info / "RECORD").write_text("\n".join(f if "," in f else f"{f},," for f in record) + "\n")


def test_a_distribution_named_like_a_module_must_provide_it(tmp_path: Path, monkeypatch) -> None:
    site = tmp_path / "site"
    _fake_dist(site, "mjfake_declared", [], "mjfake_declared\n")
    _fake_dist(site, "mjfake_files", ["mjfake_files/__init__.py", "mjfake_files/ops.py"], None)
    _fake_dist(site, "mjfake_single", ["mjfake_single.py"], None)
    _fake_dist(site, "mjfake_other", [], "somethingelse\n")
    _fake_dist(site, "mjfake_data", ["mjfake_data/readme.txt"], None)
    monkeypatch.syspath_prepend(str(site))
    found = {"version": "1.2.3"}
    assert _named_distribution("mjfake_declared") == {"package": "mjfake_declared", **found}
    assert _named_distribution("mjfake_files") == {"package": "mjfake_files", **found}
    assert _named_distribution("mjfake_single") == {"package": "mjfake_single", **found}
    # named like the module but declaring another, or installing no Python module of it
    assert _named_distribution("mjfake_other") is None
    assert _named_distribution("mjfake_data") is None
    for module in ("mjfake_declared.x", "mjfake_files.ops", "mjfake_other", "mjfake_data"):
        assert _distribution(module) == _scanned(module, packages_distributions()), module

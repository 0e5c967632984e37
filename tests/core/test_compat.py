"""The compatibility gate: a plugin declares the plugin API range it supports
(``MINJIANG_API``); outside it the plugin is refused, naming both versions and the fix,
and the other plugins keep working."""

from __future__ import annotations

import types
from importlib import metadata

import minjiang as mj
import pytest
from minjiang.core._plugins import (
    Registry,
    api_compatibility,
    make_plugin_manager,
    parse_api_range,
)
from minjiang.core.errors import PluginError

from tests.core._apiplugins import plugin_with_api

BUILTIN = ("array", "medicine", "forestry", "ocean", "materials")


def test_api_version_is_major_minor() -> None:
    major, minor = mj.API_VERSION.split(".")
    assert major.isdigit() and minor.isdigit()


@pytest.mark.parametrize(
    ("spec", "api", "ok"),
    [
        (">=1.0,<2", "1.0", True),
        (">=1.0,<2", "1.7", True),
        (">=1.0,<2", "2.0", False),
        (">=1.2", "1.1", False),
        ("==1", "1.0", True),  # missing numbers are zero
        ("==1.0", "1.1", False),
        ("!=1.3", "1.3", False),
        ("> 1.0 , <= 1.5", "1.5", True),
        ("> 1.0 , <= 1.5", "1.0", False),
    ],
)
def test_ranges_are_checked_clause_by_clause(spec: str, api: str, ok: bool) -> None:
    declared, problem = api_compatibility(plugin_with_api("lab", spec), api=api)
    assert declared == spec
    assert (problem is None) is ok
    if not ok:
        assert spec in problem and f"provides API {api}" in problem


@pytest.mark.parametrize("spec", ["", "1.0", ">=one", ">=1.0;<2", "~=1.0", 2, ">=1.0,,<2"])
def test_a_malformed_range_is_a_typed_error_showing_the_form(spec: object) -> None:
    with pytest.raises(PluginError, match=r'MINJIANG_API = ">=1\.0,<2"'):
        parse_api_range(spec)


def test_builtin_plugins_declare_a_range_that_holds_this_api_only() -> None:
    pm, problems = make_plugin_manager()
    assert not problems
    for name in BUILTIN:
        plugin = pm.get_plugin(name)
        spec, problem = api_compatibility(plugin)
        assert spec is not None, f"built-in plugin {name} declares no MINJIANG_API"
        assert problem is None
        # the range is bounded: the next major API would refuse them
        major = int(mj.API_VERSION.split(".")[0])
        assert api_compatibility(plugin, api=f"{major + 1}.0")[1] is not None


def test_an_incompatible_plugin_is_refused_and_the_others_keep_working() -> None:
    mod = plugin_with_api("futurelab", ">=9.0")
    pm, problems = make_plugin_manager([mod], entry_points=True)
    assert not pm.is_registered(mod)
    [problem] = [p for p in problems if p.plugin == "futurelab"]
    assert problem.stage == "compat"
    assert "'>=9.0'" in problem.error and f"provides API {mj.API_VERSION}" in problem.error
    assert "install" in problem.error and "skipped" in problem.error
    assert "array.gaussian" in Registry(pm, problems).operators


def test_an_incompatible_entry_point_plugin_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    real = metadata.entry_points
    old = plugin_with_api("oldlab", "<1.0")

    class _EP:
        name = "oldlab"
        group = "minjiang"

        def load(self) -> types.ModuleType:
            return old

    def fake(**kw: object) -> list[object]:
        eps = list(real(**kw))  # type: ignore[arg-type]
        return [*eps, _EP()] if kw.get("group") == "minjiang" else eps

    monkeypatch.setattr(metadata, "entry_points", fake)
    pm, problems = make_plugin_manager()
    assert [(p.plugin, p.stage) for p in problems] == [("oldlab", "compat")]
    assert "'<1.0'" in problems[0].error and mj.API_VERSION in problems[0].error
    assert pm.get_plugin("oldlab") is None
    assert pm.get_plugin("ocean") is not None


def test_a_malformed_declaration_is_refused_with_the_form() -> None:
    mod = plugin_with_api("typolab", "1.0+")
    pm, problems = make_plugin_manager([mod], entry_points=False)
    assert not pm.is_registered(mod)
    [problem] = problems
    assert problem.stage == "compat" and "MINJIANG_API" in problem.error


def test_no_declaration_still_loads() -> None:
    mod = plugin_with_api("quietlab", None)
    pm, problems = make_plugin_manager([mod], entry_points=False)
    assert pm.is_registered(mod)
    assert problems == []
    assert api_compatibility(mod) == (None, None)


def test_explicit_registration_of_an_incompatible_plugin_raises(runtime: mj.Runtime) -> None:
    mod = plugin_with_api("futurelab2", ">=2.0,<3")
    with pytest.raises(PluginError, match=r"futurelab2.*'>=2\.0,<3'.*provides API ") as info:
        runtime.register(mod, name="futurelab2")
    assert f"provides API {mj.API_VERSION};" in str(info.value)
    assert not runtime.registry.pm.is_registered(mod)


def test_minjiang_plugins_keeps_working_and_names_both_versions(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    from minjiang.core.cli import app
    from typer.testing import CliRunner

    real = metadata.entry_points

    class _EP:
        name = "futurecli"
        group = "minjiang"

        def load(self) -> types.ModuleType:
            return plugin_with_api("futurecli_mod", ">=3.0,<4")

    def fake(**kw: object) -> list[object]:
        eps = list(real(**kw))  # type: ignore[arg-type]
        return [*eps, _EP()] if kw.get("group") == "minjiang" else eps

    monkeypatch.setattr(metadata, "entry_points", fake)
    out = CliRunner(env={"COLUMNS": "250"}).invoke(app, ["plugins", "--store", f"{tmp_path}/s"])
    assert out.exit_code == 0, out.output
    assert "ocean.marine_heatwaves" in out.output  # the others are listed
    assert "plugin 'futurecli' (compat)" in out.output
    assert "'>=3.0,<4'" in out.output and f"provides API {mj.API_VERSION}" in out.output

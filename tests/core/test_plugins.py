"""Plugin loading: entry points, broken plugins skipped, misspelt hooks caught."""

from __future__ import annotations

import sys
import types

import pytest
from minjiang.core import Input, Map, Operator
from minjiang.core._plugins import make_plugin_manager
from minjiang.core.errors import OperatorNotFoundError, PluginError
from minjiang.core.hookspecs import hookimpl
from minjiang.core.testing import tmp_plugin

BUILTIN = {"array", "medicine", "forestry", "ocean", "materials"}


def test_builtin_plugins_register_through_entry_points(runtime) -> None:
    names = set(runtime.registry.plugin_names())
    assert BUILTIN <= names
    assert "array.gaussian" in runtime.operators
    assert "array.zarr" in runtime.readers


def _kernel(arrays, params, ctx):
    return {"y": arrays["x"] * 2}


class _GoodPlugin:
    @hookimpl
    def minjiang_register_operators(self):
        return [
            Operator(
                name="testlab.double",
                version="1",
                inputs=(Input("x"),),
                outputs=(),
                pattern=Map(_kernel),
            )
        ]


def test_tmp_plugin_registers_and_unregisters(runtime) -> None:
    plugin = _GoodPlugin()
    with tmp_plugin(runtime, plugin):
        assert "testlab.double" in runtime.operators
    assert "testlab.double" not in runtime.operators


def test_broken_plugin_is_reported_and_skipped(monkeypatch) -> None:
    from importlib import metadata

    real = metadata.entry_points

    class _EP:
        name = "brokenlab"
        group = "minjiang"

        def load(self):
            raise ImportError("no module named 'brokenlab_deps'")

    def fake(**kw):
        eps = list(real(**kw))
        return [*eps, _EP()] if kw.get("group") == "minjiang" else eps

    monkeypatch.setattr(metadata, "entry_points", fake)
    pm, problems = make_plugin_manager()
    assert [p.plugin for p in problems] == ["brokenlab"]
    assert "brokenlab_deps" in problems[0].error
    assert pm.get_plugin("ocean") is not None  # the others still load


def test_raising_hook_is_isolated(runtime) -> None:
    class Raising:
        @hookimpl
        def minjiang_register_operators(self):
            raise RuntimeError("boom")

    with tmp_plugin(runtime, Raising(), name="raising"):
        ops = runtime.operators
        assert "array.gaussian" in ops
        assert any(p.plugin == "raising" and "boom" in p.error for p in runtime.registry.problems)


def test_misspelt_hook_is_caught() -> None:
    mod = types.ModuleType("misspelt_plugin")

    @hookimpl
    def minjiang_register_operator():  # missing 's'
        return []

    mod.minjiang_register_operator = minjiang_register_operator
    with pytest.raises(PluginError, match="minjiang_register_operator"):
        make_plugin_manager([mod], entry_points=False)


def test_duplicate_operator_names_are_refused(runtime) -> None:
    class Twin:
        @hookimpl
        def minjiang_register_operators(self):
            return [
                Operator(
                    name="array.gaussian",
                    version="9",
                    inputs=(Input("x"),),
                    outputs=(),
                    pattern=Map(_kernel),
                )
            ]

    with (
        tmp_plugin(runtime, Twin(), name="twin"),
        pytest.raises(PluginError, match=r"array\.gaussian"),
    ):
        _ = runtime.operators


def test_unknown_operator_suggests_close_names(runtime) -> None:
    with pytest.raises(OperatorNotFoundError, match=r"array\.gaussian"):
        runtime.registry.operator("array.gausian")


def test_plugin_module_import_is_light() -> None:
    before = set(sys.modules)
    import minjiang.plugins.forestry  # noqa: F401

    assert "numba" not in set(sys.modules) - before

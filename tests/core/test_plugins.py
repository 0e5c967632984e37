"""Plugin loading: entry points, broken plugins skipped, misspelt hooks caught."""

from __future__ import annotations

import sys
import types

import pytest
from minjiang.core import Input, Map, Operator
from minjiang.core._plugins import Registry, make_plugin_manager
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


def test_a_misspelt_hook_skips_that_plugin_only() -> None:
    mod = types.ModuleType("misspelt_plugin")

    @hookimpl
    def minjiang_register_operator():  # missing 's'
        return []

    mod.minjiang_register_operator = minjiang_register_operator
    pm, problems = make_plugin_manager([mod], entry_points=True)
    assert not pm.is_registered(mod)
    [problem] = [p for p in problems if p.plugin == "misspelt_plugin"]
    assert "'minjiang_register_operator' is not a minjiang hook" in problem.error
    assert "did you mean 'minjiang_register_operators'" in problem.error
    # the other plugins still register their operators
    reg = Registry(pm, problems)
    assert "array.gaussian" in reg.operators


def test_a_hook_function_without_hookimpl_is_reported() -> None:
    mod = types.ModuleType("unmarked_plugin")

    def minjiang_register_operators():  # no @hookimpl: never called
        return []

    mod.minjiang_register_operators = minjiang_register_operators
    _, problems = make_plugin_manager([mod], entry_points=False)
    [problem] = problems
    assert problem.plugin == "unmarked_plugin"
    assert "minjiang_register_operators is not marked with @hookimpl" in problem.error


def test_explicit_registration_of_a_broken_plugin_is_refused(runtime) -> None:
    mod = types.ModuleType("misspelt_again")

    @hookimpl
    def minjiang_register_reader():
        return []

    mod.minjiang_register_reader = minjiang_register_reader
    with pytest.raises(PluginError, match="did you mean 'minjiang_register_readers'"):
        runtime.register(mod, name="misspelt_again")
    assert not runtime.registry.pm.is_registered(mod)
    assert "array.zarr" in runtime.readers


def test_a_duplicate_name_is_refused_for_the_later_plugin_only(runtime) -> None:
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
                ),
                Operator(
                    name="twin.own",
                    version="1",
                    inputs=(Input("x"),),
                    outputs=(),
                    pattern=Map(_kernel),
                ),
            ]

    with tmp_plugin(runtime, Twin(), name="twin"):
        ops = runtime.registry.operators
        assert ops["array.gaussian"][1].version == "1"  # the first registration keeps it
        assert ops["array.gaussian"][0] == "array"
        assert "twin.own" in ops  # the rest of the later plugin still registers
        [problem] = [p for p in runtime.registry.problems if p.plugin == "twin"]
        assert "'array.gaussian' is already registered by plugin 'array'" in problem.error


def test_unknown_operator_suggests_close_names(runtime) -> None:
    with pytest.raises(OperatorNotFoundError, match=r"array\.gaussian"):
        runtime.registry.operator("array.gausian")


def test_plugin_module_import_is_light() -> None:
    before = set(sys.modules)
    import minjiang.plugins.forestry  # noqa: F401

    assert "numba" not in set(sys.modules) - before


# ---------------------------------------------------------------- hooks go through pluggy
def _op(name: str) -> Operator:
    return Operator(name=name, version="1", inputs=(Input("x"),), outputs=(), pattern=Map(_kernel))


def _named(plugin_name: str, op_name: str, **marks: bool) -> object:
    class Plugin:
        @hookimpl(**marks)
        def minjiang_register_operators(self):
            return [_op(op_name)]

    Plugin.__name__ = plugin_name
    return Plugin()


def test_hooks_run_in_pluggys_order() -> None:
    from minjiang.core._plugins import Registry

    calls = []

    def plugin(name: str, **marks: bool) -> object:
        class P:
            @hookimpl(**marks)
            def minjiang_register_operators(self):
                calls.append(name)
                return [_op(f"lab.{name}")]

        return P()

    first, second, last, early = (
        plugin("first"),
        plugin("second"),
        plugin("last", trylast=True),
        plugin("early", tryfirst=True),
    )
    pm, problems = make_plugin_manager([], entry_points=False)
    for name, p in (("first", first), ("early", early), ("second", second), ("last", last)):
        pm.register(p, name=name)
    reg = Registry(pm, problems)
    assert sorted(reg.operators) == ["lab.early", "lab.first", "lab.last", "lab.second"]
    # pluggy: tryfirst, then last registered first, then trylast
    assert calls == ["early", "second", "first", "last"]
    assert [reg.operators[f"lab.{n}"][0] for n in ("early", "first", "last", "second")] == [
        "early",
        "first",
        "last",
        "second",
    ]


def test_hook_wrapper_wraps_the_call_and_may_change_the_results() -> None:
    """A new-style wrapper (pluggy >= 1.1) runs around all implementations, once,
    receives their list of results, and what it returns is the hook's result."""
    from minjiang.core._plugins import Registry

    seen = []

    class Filter:
        @hookimpl(wrapper=True)
        def minjiang_register_operators(self):
            seen.append("before")
            results = yield
            seen.append(sorted(op.name for ops in results for op in ops))
            return [[op for op in ops if op.name != "lab.hidden"] for ops in results]

    class Both:
        @hookimpl
        def minjiang_register_operators(self):
            return [_op("lab.shown"), _op("lab.hidden")]

    class Other:
        @hookimpl
        def minjiang_register_operators(self):
            return [_op("lab.other")]

    pm, problems = make_plugin_manager([], entry_points=False)
    pm.register(Both(), name="both")
    pm.register(Other(), name="other")
    pm.register(Filter(), name="filter")
    reg = Registry(pm, problems)
    assert sorted(reg.operators) == ["lab.other", "lab.shown"]
    assert seen == ["before", ["lab.hidden", "lab.other", "lab.shown"]]  # one call, all results
    assert reg.operators["lab.shown"][0] == "both" and reg.operators["lab.other"][0] == "other"
    assert problems == []


def test_old_style_hookwrapper_is_not_taken_for_a_result() -> None:
    from minjiang.core._plugins import Registry

    class Old:
        @hookimpl(hookwrapper=True)
        def minjiang_register_operators(self):
            outcome = yield
            assert len(outcome.get_result()) == 1

    pm, problems = make_plugin_manager([_named("one", "lab.one")], entry_points=False)
    pm.register(Old(), name="old")
    reg = Registry(pm, problems)
    assert list(reg.operators) == ["lab.one"] and problems == []


def test_raising_plugin_is_reported_by_name_and_the_call_goes_on() -> None:
    from minjiang.core._plugins import Registry

    class Raising:
        @hookimpl
        def minjiang_register_operators(self):
            raise ValueError("broken registry")

    class Wrapper:
        calls = 0

        @hookimpl(wrapper=True)
        def minjiang_register_operators(self):
            Wrapper.calls += 1
            return (yield)

    pm, problems = make_plugin_manager([], entry_points=False)
    pm.register(_named("a", "lab.a"), name="a")
    pm.register(Raising(), name="raising")
    pm.register(_named("b", "lab.b"), name="b")
    pm.register(Wrapper(), name="wrapper")
    reg = Registry(pm, problems)
    assert sorted(reg.operators) == ["lab.a", "lab.b"]
    assert [(p.plugin, p.stage) for p in problems] == [("raising", "minjiang_register_operators")]
    assert "ValueError: broken registry" in problems[0].error
    # later calls leave the plugin out instead of failing again
    assert [n for n, _ in reg.call("minjiang_register_operators")] == ["b", "a"]
    assert len(problems) == 1


def test_hook_calls_are_traced_by_pluggy() -> None:
    from minjiang.core._plugins import Registry

    traced = []
    pm, problems = make_plugin_manager([_named("one", "lab.one")], entry_points=False)
    undo = pm.add_hookcall_monitoring(
        lambda name, impls, kwargs: traced.append(("before", name)),
        lambda outcome, name, impls, kwargs: traced.append(("after", name)),
    )
    try:
        Registry(pm, problems).emit("minjiang_configure", config={})
        _ = Registry(pm, problems).operators
    finally:
        undo()
    assert ("before", "minjiang_configure") in traced
    assert ("after", "minjiang_register_operators") in traced


def test_none_results_are_attributed_to_the_right_plugin() -> None:
    from minjiang.core._plugins import Registry

    class Quiet:
        @hookimpl
        def minjiang_catalog_metadata(self, record):
            return None

    class Loud:
        @hookimpl
        def minjiang_catalog_metadata(self, record):
            return {"seen": record}

    pm, problems = make_plugin_manager([], entry_points=False)
    pm.register(Loud(), name="loud")
    pm.register(Quiet(), name="quiet")
    assert Registry(pm, problems).emit("minjiang_catalog_metadata", record="r") == [
        ("loud", {"seen": "r"})
    ]


# ---------------------------------------------------------------- reports
def test_builtin_reports_are_registered_through_the_hook(runtime) -> None:
    reports = runtime.registry.reports
    assert reports["ocean.mhw_quicklook"][0] == "ocean"
    assert reports["medicine.lesion_quicklook"][0] == "medicine"
    ocean = runtime.registry.pipeline("ocean.mhw_report")
    assert runtime.registry.pipeline_report(ocean).name == "ocean.mhw_quicklook"


def test_unknown_report_is_a_typed_error_listing_the_registered_ones(runtime) -> None:
    from minjiang.core._pipeline import load_pipeline
    from minjiang.core.errors import PipelineError

    pipe = load_pipeline(
        "report: ocean.mhw_quicklok\nsteps:\n  - {id: s, operator: array.reduce, params: {dims: [t]}}\n"
    )
    with pytest.raises(PipelineError, match=r"ocean\.mhw_quicklook.*Registered.*medicine\.lesion"):
        runtime.registry.pipeline_report(pipe)


def test_report_checks_the_steps_it_reads(runtime) -> None:
    from minjiang.core._pipeline import load_pipeline
    from minjiang.core.errors import PipelineError

    pipe = load_pipeline(
        "report: ocean.mhw_quicklook\nsteps:\n  - {id: s, operator: array.reduce, params: {dims: [t]}}\n"
    )
    with pytest.raises(PipelineError, match=r"reads steps \['heatwaves', 'index'\]"):
        runtime.registry.pipeline_report(pipe)


def test_a_plugin_report_writes_only_into_its_folder(runtime, tmp_path) -> None:
    from minjiang.core._pipeline import Report

    def good(results, directory):
        out = directory / "summary.txt"
        out.write_text(",".join(sorted(results)))
        return [out]

    def escaping(results, directory):
        return [directory / ".." / "elsewhere.txt"]

    class Reports:
        @hookimpl
        def minjiang_register_reports(self):
            return [Report("lab.summary", good), Report("lab.escape", escaping)]

    with tmp_plugin(runtime, Reports(), name="lab"):
        assert runtime.registry.report("lab.summary").write({"a": 1}, tmp_path) == [
            tmp_path / "summary.txt"
        ]
        with pytest.raises(PluginError, match="outside its folder"):
            runtime.registry.report("lab.escape").write({}, tmp_path)


def test_report_objects_are_checked() -> None:
    from minjiang.core._pipeline import Report

    with pytest.raises(PluginError, match=r"domain\.name"):
        Report("no-namespace", print)
    with pytest.raises(PluginError, match="not callable"):
        Report("lab.x", "module:attr")  # type: ignore[arg-type]


def test_a_report_hook_returning_junk_is_reported(runtime) -> None:
    class Junk:
        @hookimpl
        def minjiang_register_reports(self):
            return ["lab.not_a_report"]

    with tmp_plugin(runtime, Junk(), name="junk"):
        assert "lab.not_a_report" not in runtime.registry.reports
        assert any(
            p.plugin == "junk" and "not a Report" in p.error for p in runtime.registry.problems
        )


# ---------------------------------------------------------------- reader guessing
def test_guess_reader_picks_the_one_reader_that_claims_the_files(runtime, tmp_path) -> None:
    from minjiang.core.errors import ReaderError

    series = tmp_path / "series"
    series.mkdir()
    (series / "slice-001.dcm").write_bytes(b"\0" * 132)
    assert runtime.registry.guess_reader([series]).name == "medicine.dicom"
    nc = tmp_path / "sst.nc"
    nc.write_bytes(b"CDF\x01")
    with pytest.raises(ReaderError, match=r"several readers.*array\.netcdf.*ocean\.netcdf"):
        runtime.registry.guess_reader([nc])
    with pytest.raises(ReaderError, match=r"no reader recognises.*array\.zarr"):
        runtime.registry.guess_reader([tmp_path / "notes.txt"])
    with pytest.raises(ReaderError, match="no reader recognises"):
        runtime.registry.guess_reader(["a\x00b", "x" * 5000])


def test_every_hook_is_documented() -> None:
    from pathlib import Path

    from minjiang.core import hookspecs

    docs = (Path(__file__).parents[2] / "docs" / "plugins.md").read_text()
    hooks = [n for n in hookspecs.__all__ if n.startswith("minjiang_")]
    assert "minjiang_register_reports" in hooks
    for name in hooks:
        assert f"`{name}(" in docs, name
        assert len((getattr(hookspecs, name).__doc__ or "").split()) > 20, name


def test_events_reach_each_plugin_once() -> None:
    from minjiang.core._plugins import Registry

    seen: list[str] = []

    def observer(name: str) -> object:
        class Observer:
            @hookimpl
            def minjiang_run_event(self, event):
                seen.append(f"{name}:{event}")

        return Observer()

    class Raising:
        @hookimpl
        def minjiang_run_event(self, event):
            raise RuntimeError("observer broke")

    pm, problems = make_plugin_manager([], entry_points=False)
    pm.register(observer("a"), name="a")
    pm.register(observer("b"), name="b")
    reg = Registry(pm, problems)
    assert reg.emit("minjiang_run_event", event="e1") == []
    assert seen == ["b:e1", "a:e1"]
    pm.register(Raising(), name="raising")
    seen.clear()
    reg.emit("minjiang_run_event", event="e2")
    reg.emit("minjiang_run_event", event="e3")
    assert [p.plugin for p in problems] == ["raising"]
    # the first call is made again without the plugin that raised in it; later
    # calls leave it out from the start
    assert seen == ["b:e2", "a:e2", "b:e3", "a:e3"]

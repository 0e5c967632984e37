"""``minjiang validate``: plugins checked without running data (contracts, kernels for
the declared backends, memory formulas on sample sizes, namespaces, docs, API range)."""

from __future__ import annotations

import json
import types
from importlib import metadata
from pathlib import Path
from typing import Any

import minjiang as mj
import pytest
from minjiang.core import hookimpl
from minjiang.core._plugins import Registry, make_plugin_manager, suggested_range
from minjiang.core._validate import validate_plugins
from minjiang.core.cli import app
from minjiang.core.errors import PluginError
from pydantic import BaseModel, ConfigDict, Field
from typer.testing import CliRunner

runner = CliRunner(env={"COLUMNS": "200"})


# ------------------------------------------------------------------ a good plugin
class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    factor: float = Field(default=2.0, ge=0, le=10, description="What to multiply by.")


def _scale(arrays: dict[str, Any], params: _Params, ctx: mj.BlockContext) -> dict[str, Any]:
    return {"y": arrays["x"] * params.factor}


def _memory(size: mj.TaskSize, params: _Params) -> int:
    return size.input_bytes + 2 * size.output_bytes


class _NpyReader(mj.Reader):
    """Reads a 2-D ``.npy`` file."""

    name = "vgood.npy"
    extensions = (".npy",)

    def open(self, files: list[Path], params: Any) -> Any:
        pytest.fail("minjiang validate opened data; it must read none")


def _good_operator(name: str = "vgood.scale", **kw: Any) -> mj.Operator:
    args: dict[str, Any] = {
        "name": name,
        "version": "1",
        "inputs": (mj.Input("x", dtypes=("f",)),),
        "outputs": (mj.ArrayOutput("y"),),
        "pattern": mj.Map(_scale),
        "params": _Params,
        "memory": _memory,
        "description": "x times a factor.",
    }
    args.update(kw)
    return mj.Operator(**args)


def _module(name: str, *, api: str | None, operators=(), readers=(), pipelines=()) -> Any:
    mod = types.ModuleType(name)
    if api is not None:
        mod.MINJIANG_API = api

    @hookimpl
    def minjiang_register_operators() -> list[mj.Operator]:
        return list(operators)

    @hookimpl
    def minjiang_register_readers() -> list[mj.Reader]:
        return list(readers)

    @hookimpl
    def minjiang_register_pipelines() -> list[mj.Pipeline]:
        return list(pipelines)

    mod.minjiang_register_operators = minjiang_register_operators
    mod.minjiang_register_readers = minjiang_register_readers
    mod.minjiang_register_pipelines = minjiang_register_pipelines
    return mod


def _registry(*plugins: tuple[str, Any]) -> Registry:
    pm, problems = make_plugin_manager([], entry_points=False)
    for name, plugin in plugins:
        pm.register(plugin, name=name)
    return Registry(pm, problems)


def _good_plugin() -> Any:
    pipe = mj.Pipeline(
        name="vgood.flow",
        description="Scale a file.",
        inputs=["f"],
        steps=[
            mj.Step(id="src", reader="vgood.npy", paths="$f"),
            mj.Step(id="s", operator="vgood.scale", inputs={"x": "src"}),
        ],
    )
    return _module(
        "vgood_mod",
        api=suggested_range(),
        operators=[_good_operator()],
        readers=[_NpyReader()],
        pipelines=[pipe],
    )


def test_a_good_plugin_has_no_findings() -> None:
    [report] = validate_plugins(_registry(("vgood", _good_plugin())), ["vgood"])
    assert report.ok
    assert report.findings == ()
    assert report.api_range == suggested_range()
    assert report.checked == ("operator vgood.scale", "reader vgood.npy", "pipeline vgood.flow")


def _findings(op: mj.Operator) -> list[tuple[str, str, str]]:
    mod = _module("vbad_mod", api=suggested_range(), operators=[op])
    [report] = validate_plugins(_registry(("vbad", mod)), ["vbad"])
    return [(f.check, f.severity, f.message) for f in report.findings]


def _one(op: mj.Operator, check: str, severity: str = "problem") -> str:
    found = [m for c, s, m in _findings(op) if c == check and s == severity]
    assert len(found) == 1, _findings(op)
    return found[0]


def test_a_name_outside_the_namespace() -> None:
    msg = _one(_good_operator("elsewhere.scale"), "namespace")
    assert "'vbad'" in msg and "'vbad.scale'" in msg


@pytest.mark.parametrize(
    ("memory", "expected"),
    [
        (lambda size, params: -1, "positive, finite"),
        (lambda size, params: float("nan"), "positive, finite"),
        (lambda size, params: "1GiB", "positive, finite"),
        (lambda size, params: 1 << 20, "does not grow"),
        (lambda size, params: size.input_bytes * 8 * 1_000_000, "check its units"),
        (lambda size, params: size.block_shape[2], "IndexError"),
    ],
)
def test_memory_formulas_that_are_not_sane(memory: Any, expected: str) -> None:
    assert expected in _one(_good_operator("vbad.scale", memory=memory), "memory")


def test_a_compute_formula_must_give_seconds() -> None:
    op = _good_operator("vbad.scale", compute=lambda size, params: -1.0)
    assert "non-negative seconds" in _one(op, "memory")


def test_required_parameters_without_examples_leave_memory_unchecked() -> None:
    class Required(BaseModel):
        model_config = ConfigDict(extra="forbid")
        factor: float = Field(description="What to multiply by.")

    op = _good_operator("vbad.scale", params=Required, memory=lambda s, p: -1)
    assert "examples" in _one(op, "memory", "warning")

    class WithExample(BaseModel):
        model_config = ConfigDict(extra="forbid")
        factor: float = Field(description="What to multiply by.", examples=[3.0])

    # with an example the formula is evaluated, and its fault found
    op = _good_operator("vbad.scale", params=WithExample, memory=lambda s, p: -1)
    assert "positive, finite" in _one(op, "memory")


def test_a_kernel_workers_cannot_import() -> None:
    op = _good_operator("vbad.scale", pattern=mj.Map(lambda arrays, params, ctx: arrays))
    assert "module-level function" in _one(op, "contract")
    op = _good_operator("vbad.scale", pattern=mj.Map("tests.core.test_validate:_no_such_kernel"))
    assert "cannot be imported" in _one(op, "contract")


def test_gpu_declared_without_a_gpu_path() -> None:
    msg = _one(_good_operator("vbad.scale", backends=("cpu", "gpu")), "kernels")
    assert "gpu backend" in msg


def test_a_kernel_that_follows_the_backend_passes() -> None:
    # _follows reads ctx.backend: a gpu path
    op = _good_operator("vbad.scale", backends=("cpu", "gpu"), pattern=mj.Map(_follows))
    assert not [f for f in _findings(op) if f[0] == "kernels"]


def _follows(arrays: dict[str, Any], params: Any, ctx: mj.BlockContext) -> dict[str, Any]:
    xp = mj.array_namespace(arrays["x"]) if ctx.backend == "gpu" else None
    return {"y": arrays["x"] if xp is None else xp.asarray(arrays["x"])}


def test_unknown_backends_are_problems() -> None:
    assert "'tpu'" in _one(_good_operator("vbad.scale", backends=("tpu",)), "kernels")


def test_docs_missing() -> None:
    class Bare(BaseModel):
        model_config = ConfigDict(extra="forbid")
        factor: float = 2.0

    found = _findings(_good_operator("vbad.scale", description="", params=Bare))
    docs = [m for c, s, m in found if c == "docs" and s == "problem"]
    assert len(docs) == 2
    assert any("no description" in m and "Operator(description" in m for m in docs)
    assert any("parameter 'factor'" in m for m in docs)


def test_a_parameter_model_that_accepts_anything_is_a_warning() -> None:
    class Loose(BaseModel):
        factor: float = Field(default=2.0, description="What to multiply by.")

    assert "extra='forbid'" in _one(
        _good_operator("vbad.scale", params=Loose), "contract", "warning"
    )


def test_outputs_and_inputs_must_be_well_formed() -> None:
    op = _good_operator(
        "vbad.scale",
        inputs=(mj.Input("x"), mj.Input("x")),
        outputs=(mj.ArrayOutput("y", dtype="float17"),),
    )
    found = [m for c, s, m in _findings(op) if c == "contract"]
    assert any("not unique" in m for m in found)
    assert any("'float17'" in m for m in found)


def test_readers_and_pipelines() -> None:
    class Undocumented(mj.Reader):
        name = "vbad.raw"

        def open(self, files: list[Path], params: Any) -> Any:
            pytest.fail("minjiang validate opened data; it must read none")

    pipe = mj.Pipeline(
        name="vbad.flow",
        steps=[mj.Step(id="s", operator="vbad.nothing", inputs={"x": "somewhere"})],
    )
    mod = _module("vbad_mod", api=None, readers=[Undocumented()], pipelines=[pipe])
    [report] = validate_plugins(_registry(("vbad", mod)), ["vbad"])
    found = {(f.subject, f.check, f.severity): f.message for f in report.findings}
    assert "never picks it" in found["reader vbad.raw", "contract", "warning"]
    assert "docstring" in found["reader vbad.raw", "docs", "problem"]
    assert "'vbad.nothing'" in found["pipeline vbad.flow", "contract", "problem"]
    assert "description" in found["pipeline vbad.flow", "docs", "problem"]
    # no declared API range: a warning naming the attribute to add
    assert f"MINJIANG_API = {suggested_range()!r}" in found["plugin vbad", "api", "warning"]
    assert not report.ok


def test_registration_problems_are_reported_for_their_plugin() -> None:
    @hookimpl
    def minjiang_register_operators() -> Any:
        return _good_operator("vdup.scale")  # one operator, not a list

    mod = types.ModuleType("vdup_mod")
    mod.MINJIANG_API = suggested_range()
    mod.minjiang_register_operators = minjiang_register_operators
    [report] = validate_plugins(_registry(("vdup", mod)), ["vdup"])
    [finding] = report.findings
    assert finding.check == "load" and "not a list" in finding.message


def test_builtin_plugins_have_sound_contracts_kernels_and_formulas() -> None:
    reports = validate_plugins()
    assert {r.plugin for r in reports} >= {"array", "forestry", "materials", "medicine", "ocean"}
    for r in reports:
        assert r.api_range == suggested_range(), r.plugin
        assert r.package == "minjiang"
        serious = [
            f
            for f in r.findings
            if f.severity == "problem"
            and f.check in ("contract", "kernels", "memory", "namespace", "api", "load")
        ]
        assert not serious, (r.plugin, serious)


def test_an_unknown_plugin_is_a_typed_error() -> None:
    with pytest.raises(PluginError, match=r"no plugin named \['nope'\].*'ocean'"):
        validate_plugins(plugins=["nope"])


def _with_entry_point(monkeypatch: pytest.MonkeyPatch, name: str, module: Any) -> None:
    real = metadata.entry_points

    class _EP:
        group = "minjiang"

        def __init__(self) -> None:
            self.name = name

        def load(self) -> Any:
            return module

    def fake(**kw: Any) -> list[Any]:
        eps = list(real(**kw))
        return [*eps, _EP()] if kw.get("group") == "minjiang" else eps

    monkeypatch.setattr(metadata, "entry_points", fake)


def test_the_command_exits_1_on_problems_with_json(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_entry_point(
        monkeypatch,
        "vcli",
        _module(
            "vcli_mod",
            api=suggested_range(),
            operators=[_good_operator("vcli.scale", description="")],
        ),
    )
    out = runner.invoke(app, ["validate", "vcli", "--json"])
    assert out.exit_code == 1, out.output
    doc = json.loads(out.stdout)
    assert doc["ok"] is False
    [plugin] = doc["plugins"]
    assert plugin["plugin"] == "vcli" and plugin["ok"] is False
    assert [f["check"] for f in plugin["findings"]] == ["docs"]
    table = runner.invoke(app, ["validate", "vcli"])
    assert table.exit_code == 1 and "Operator(description" in table.output


def test_the_command_exits_0_for_a_sound_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_entry_point(monkeypatch, "vgood", _good_plugin())
    out = runner.invoke(app, ["validate", "vgood"])
    assert out.exit_code == 0, out.output
    assert "vgood" in out.output and "3 checked, ok" in out.output
    missing = runner.invoke(app, ["validate", "nope"])
    assert isinstance(missing.exception, PluginError)

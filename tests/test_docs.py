"""Meta-tests that keep the public surface honest: every hook and every registered
operator, reader and pipeline is documented, and every one is run by a test.

"Run" is checked by the ``minjiang-operator-runs`` plugin of ``tests/conftest.py``:
it records the operators and readers of every pipeline run the tests make (and the
pipelines they plan or run), and a whole-suite session fails when a registered name
was never run. The tests here check that recorder, so the check itself can fail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import minjiang as mj
import numpy as np
import pytest
from minjiang.core import hookspecs
from minjiang.core.testing import tmp_plugin
from pydantic import BaseModel

from tests.conftest import registered_names

ROOT = Path(__file__).resolve().parents[1]
DOCS = "\n".join(
    p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
)
HOOKS = sorted(n for n in dir(hookspecs) if n.startswith("minjiang_"))


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook: str) -> None:
    assert hook in (ROOT / "docs" / "plugins.md").read_text(), (
        f"{hook} has no section in docs/plugins.md"
    )
    assert (getattr(hookspecs, hook).__doc__ or "").count("\n") >= 3, (
        f"{hook} needs a full docstring"
    )


@pytest.mark.parametrize("name", registered_names())
def test_every_operator_reader_and_pipeline_is_documented(name: str) -> None:
    assert f"`{name}`" in DOCS, f"{name} is not documented under docs/ (as `{name}`)"


# ------------------------------------------------------------------ the run check
def _double(arrays: dict[str, Any], params: BaseModel, ctx: mj.BlockContext) -> dict[str, Any]:
    return {"y": arrays["x"] * 2}


class _NpyReader(mj.Reader):
    """Reads a 2-D ``.npy`` file as array ``a`` over dims ``(row, col)``."""

    name = "runcheck.npy"
    extensions = (".npy",)

    def open(self, files: list[Path], params: Any) -> Any:
        import xarray as xr

        return xr.Dataset({"a": (("row", "col"), np.load(files[0]))})


class _Plugin:
    """A plugin with one reader and one operator, registered only on a test's runtime."""

    @mj.hookimpl
    def minjiang_register_readers(self) -> list[mj.Reader]:
        return [_NpyReader()]

    @mj.hookimpl
    def minjiang_register_operators(self) -> list[mj.Operator]:
        return [
            mj.Operator(
                name="runcheck.double",
                version="1",
                inputs=(mj.Input("x", dtypes=("f",)),),
                outputs=(mj.ArrayOutput("y", dtype="float32"),),
                pattern=mj.Map(_double),
                description="Twice the input.",
            )
        ]


def _runs(request: pytest.FixtureRequest) -> Any:
    runs = request.config.pluginmanager.get_plugin("minjiang-operator-runs")
    assert runs is not None, "tests/conftest.py registers the minjiang-operator-runs plugin"
    return runs


def test_an_operator_counts_only_once_a_test_runs_it(
    runtime: mj.Runtime, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    runs = _runs(request)
    runs.ran.discard("runcheck.double")
    path = tmp_path / "x.npy"
    np.save(path, np.ones((4, 6), np.float32))
    with tmp_plugin(runtime, _Plugin()):
        runs.ran.discard("runcheck.npy")
        src = runtime.ingest("runcheck.npy", [path])
        assert "runcheck.npy" in runs.ran
        runtime.plan(
            mj.Pipeline(steps=[mj.Step(id="d", operator="runcheck.double", inputs={"x": src.id})])
        )
        assert "runcheck.double" not in runs.ran, "planning an operator is not running it"
        assert runs.never_run(["runcheck.double", "runcheck.npy"], runs.ran) == ["runcheck.double"]

        out = runtime.run("runcheck.double", inputs={"x": src})
        np.testing.assert_array_equal(out.to_xarray()["y"].values, np.full((4, 6), 2.0))
        assert "runcheck.double" in runs.ran
        assert runs.never_run(["runcheck.double", "runcheck.npy"], runs.ran) == []


def test_a_reused_result_does_not_count_as_a_run(
    runtime: mj.Runtime, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    runs = _runs(request)
    path = tmp_path / "x.npy"
    np.save(path, np.ones((4, 6), np.float32))
    with tmp_plugin(runtime, _Plugin()):
        src = runtime.ingest("runcheck.npy", [path])
        runtime.run("runcheck.double", inputs={"x": src})
        runs.ran.discard("runcheck.double")
        again = runtime.run("runcheck.double", inputs={"x": src})
        assert again.reused
        assert "runcheck.double" not in runs.ran


def test_registered_names_come_from_the_installed_plugins() -> None:
    names = registered_names()
    assert names, "the built-in plugins register operators, readers and pipelines"
    assert names == sorted(set(names))
    assert all(len(n.split(".")) == 2 for n in names), names

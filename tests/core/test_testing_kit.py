"""The plugin author's test kit (``minjiang.core.testing``): ``tmp_plugin`` for installed
and uninstalled plugins, ``make_dataset``, the registered markers and the ``test`` extra."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from importlib.metadata import requires
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from minjiang.core import ArrayOutput, Input, Map, Operator, hookimpl
from minjiang.core.errors import ParameterError, PluginError
from minjiang.core.testing import MARKERS, make_dataset, tmp_plugin


def copy_kernel(arrays, params, ctx):
    return {"y": arrays["x"]}


def _op(name: str, version: str = "1") -> Operator:
    return Operator(
        name=name,
        version=version,
        inputs=(Input("x"),),
        outputs=(ArrayOutput("y"),),
        pattern=Map(copy_kernel),
    )


class OnePlugin:
    def __init__(self, *ops: Operator) -> None:
        self.ops = list(ops)

    @hookimpl
    def minjiang_register_operators(self):
        return self.ops


# ---------------------------------------------------------------- tmp_plugin
def test_tmp_plugin_takes_an_installed_plugin(runtime) -> None:
    import minjiang.plugins.array as installed

    assert runtime.registry.pm.is_registered(installed)  # through its entry point
    problems = list(runtime.registry.problems)
    with tmp_plugin(runtime, installed) as rt:  # was pluggy's raw ValueError
        assert rt is runtime and "array.gaussian" in rt.operators
    assert runtime.registry.pm.is_registered(installed)  # still installed afterwards
    assert "array.gaussian" in runtime.operators and runtime.registry.problems == problems


def test_tmp_plugin_registers_an_uninstalled_plugin_for_the_block(runtime) -> None:
    plugin = OnePlugin(_op("kittest.copy"))
    with tmp_plugin(runtime, plugin) as rt:
        assert "kittest.copy" in rt.operators
        src = make_dataset(rt, {"v": np.arange(6.0)}, dims=("t",))
        out = rt.run("kittest.copy", inputs={"x": f"{src.id}:v"})
        np.testing.assert_array_equal(out.to_xarray()["y"].values, np.arange(6.0))
    assert "kittest.copy" not in runtime.operators
    assert not runtime.registry.pm.is_registered(plugin)


def test_tmp_plugin_named_after_an_installed_plugin_stands_in_for_it(runtime) -> None:
    original = runtime.operators["array.gaussian"].version
    dev = OnePlugin(_op("array.gaussian", version="999"))
    with tmp_plugin(runtime, dev, name="array") as rt:
        assert rt.operators["array.gaussian"].version == "999"
        assert "array.band_math" not in rt.operators  # the installed release is out
    assert runtime.operators["array.gaussian"].version == original
    assert "array.band_math" in runtime.operators


def test_tmp_plugin_reports_a_name_another_plugin_holds(runtime) -> None:
    clash = OnePlugin(_op("array.gaussian", version="2"), _op("kittest.other"))
    with tmp_plugin(runtime, clash, name="clash"):
        assert runtime.operators["array.gaussian"].version == "1"  # the installed one keeps it
        assert "kittest.other" in runtime.operators  # the rest of the plugin registers
        [problem] = [p for p in runtime.registry.problems if p.plugin == "clash"]
        assert "'array.gaussian' is already registered by plugin 'array'" in problem.error
    assert not runtime.registry.pm.is_registered(clash)
    assert "kittest.other" not in runtime.operators
    assert not [p for p in runtime.registry.problems if p.plugin == "clash"]


def test_tmp_plugin_refuses_a_misspelt_hook(runtime) -> None:
    class Misspelt:
        @hookimpl
        def minjiang_register_operator(self):  # no such hook: operators
            return []

    with (
        pytest.raises(PluginError, match="minjiang_register_operators"),
        tmp_plugin(runtime, Misspelt()),
    ):
        pass


# ---------------------------------------------------------------- make_dataset
def test_make_dataset_commits_through_the_ingest_path(runtime) -> None:
    time = np.arange("2001-01-01", "2001-01-11", dtype="datetime64[D]").astype("datetime64[ns]")
    sst = np.linspace(10, 20, 10 * 6 * 7).reshape(10, 6, 7).astype(np.float32)
    sst[3, 2, 1] = np.nan
    ds = xr.Dataset(
        {"sst": (("time", "lat", "lon"), sst, {"units": "degC"})},
        coords={"time": time, "lat": np.linspace(-5, 5, 6)},
        attrs={"title": "test"},
    )
    res = make_dataset(runtime, ds, chunks={"time": 4, "lat": 5}, name="kit/sst")
    assert res.name == "kit/sst" and not res.reused
    rec = res.record
    assert rec.kind == "ingested" and rec.producer["reader"] == "testing.arrays"
    assert rec.producer["params"] == {"chunks": {"time": 4, "lat": 5}}
    assert rec.schema_["arrays"]["sst"]["chunks"] == [4, 5, 7]
    assert set(rec.checksums["sst"]) and len(rec.checksums["sst"]) == 3 * 2 * 1
    back = res.to_xarray()
    np.testing.assert_array_equal(back["sst"].values, sst)
    np.testing.assert_array_equal(back["time"].values, time)
    assert back["sst"].attrs["units"] == "degC" and back.attrs["title"] == "test"
    # the reader is there only for the ingest
    assert "testing.arrays" not in runtime.readers
    # content-addressed: the same data and chunking is the same dataset
    again = make_dataset(runtime, ds, chunks={"time": 4, "lat": 5})
    assert again.id == res.id and again.reused
    other = make_dataset(runtime, ds, chunks=3)
    assert other.id != res.id and other.record.schema_["arrays"]["sst"]["chunks"] == [3, 3, 3]


def test_make_dataset_from_arrays_and_data_arrays(runtime) -> None:
    a = make_dataset(runtime, {"v": np.ones((4, 5))})
    assert a.to_xarray()["v"].dims == ("dim_0", "dim_1")
    b = make_dataset(runtime, {"v": np.ones((4, 5))}, dims=("y", "x"), chunks={"x": -1, "y": 2})
    assert b.record.schema_["arrays"]["v"]["chunks"] == [2, 5]
    named = xr.DataArray(np.arange(3.0), dims=("t",), name="w")
    c = make_dataset(runtime, named)
    np.testing.assert_array_equal(c.to_xarray()["w"].values, np.arange(3.0))


@pytest.mark.parametrize(
    ("data", "kw", "match"),
    [
        (xr.DataArray(np.ones(3), dims=("t",)), {}, "has no name"),
        ({"v": np.ones((2, 2))}, {"dims": ("t",)}, "one dim name per axis"),
        ({"v": np.ones((2, 2))}, {"chunks": {"nope": 1}}, r"dims \['nope'\]"),
        ({"v": np.ones((2, 2))}, {"chunks": {"dim_0": 0}}, "must be >= 1"),
        ({"x": (("y", "x"), np.ones((2, 2)))}, {}, "dim of its own name"),
        ([1, 2, 3], {}, "cannot make a dataset of a list"),
        ({}, {}, "no data variables"),
    ],
)
def test_make_dataset_refuses_bad_input(runtime, data, kw, match) -> None:
    with pytest.raises(ParameterError, match=match):
        make_dataset(runtime, data, **kw)
    assert runtime.catalog.list() == []  # nothing was committed


# ---------------------------------------------------------------- pytest plugin
def test_the_plugin_registers_its_markers(pytestconfig) -> None:
    lines = pytestconfig.getini("markers")
    for name in MARKERS:
        assert any(line.startswith(f"{name}:") for line in lines), name


@pytest.mark.slow
def test_a_plugin_suite_uses_the_markers_without_declaring_them(tmp_path) -> None:
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\naddopts = --strict-markers -p no:cacheprovider\n"
    )
    (tmp_path / "test_mine.py").write_text(
        textwrap.dedent(
            """
            import pytest

            @pytest.mark.ray
            @pytest.mark.slow
            @pytest.mark.gpu
            def test_marked(runtime):
                assert runtime.executor_name == "local"
            """
        )
    )

    def pytest_run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    ok = pytest_run()
    assert ok.returncode == 0 and "1 passed" in ok.stdout, ok.stdout + ok.stderr
    without = pytest_run("-p", "no:minjiang")  # the entry point's plugin left out
    assert without.returncode != 0 and "'ray' not found in `markers`" in without.stdout


def test_the_test_extra_carries_pytest() -> None:
    extra = [r for r in requires("minjiang") or [] if 'extra == "test"' in r]
    assert any(r.startswith("pytest") for r in extra), extra


# ---------------------------------------------------------------- the testing guide
ROOT = Path(__file__).resolve().parents[2]

#: The plugin the guide's examples test (docs/plugins.md's opening example), not installed.
MYLAB = """
from pydantic import BaseModel, ConfigDict, Field

import minjiang as mj


class NdviParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    clip: bool = Field(default=True, description="Clip to [-1, 1].")


def ndvi(arrays, params, ctx):
    from minjiang.kernels.bandmath import band_math

    out = band_math("(nir - red) / (nir + red)", {"nir": arrays["nir"], "red": arrays["red"]})
    return {"ndvi": out.clip(-1, 1) if params.clip else out}


NDVI = mj.Operator(
    name="mylab.ndvi", version="1",
    inputs=(mj.Input("nir", dtypes=("f",)), mj.Input("red", dtypes=("f",))),
    outputs=(mj.ArrayOutput("ndvi", dtype="float32"),),
    pattern=mj.Map(ndvi), params=NdviParams,
)


@mj.hookimpl
def minjiang_register_operators():
    return [NDVI]
"""


def guide_examples() -> dict[str, str]:
    """The Python examples of docs/plugins.md's testing section, by the file they name."""
    text = (ROOT / "docs" / "plugins.md").read_text()
    section = text.split("## Testing your plugin", 1)[1]
    section = re.split(r"\n## ", section, maxsplit=1)[0]
    out = {}
    for code in re.findall(r"```python\n(.*?)```", section, re.S):
        first = code.splitlines()[0]
        match = re.fullmatch(r"# tests/(test_\w+\.py)", first)
        assert match, (
            f"an example of the testing guide does not start with '# tests/NAME.py': {first!r}"
        )
        out[match.group(1)] = code
    return out


@pytest.mark.slow
def test_the_testing_guide_examples_pass_and_catch_a_wrong_kernel(tmp_path) -> None:
    examples = guide_examples()
    assert {"test_ndvi.py", "test_ndvi_conformance.py"} <= set(examples)
    (tmp_path / "src" / "mylab_minjiang").mkdir(parents=True)
    plugin = tmp_path / "src" / "mylab_minjiang" / "__init__.py"
    plugin.write_text(MYLAB)
    (tmp_path / "tests").mkdir()
    for name, code in examples.items():
        (tmp_path / "tests" / name).write_text(code)
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\naddopts = --strict-markers -p no:cacheprovider\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "src")}

    def pytest_run(*args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-rs", "tests", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=400,
            check=False,
        )
        return f"exit {proc.returncode}\n{proc.stdout}{proc.stderr}"

    out = pytest_run()
    # test_ndvi, and the conformance class on three chunkings on the cpu backend
    assert out.startswith("exit 0") and "4 passed" in out, out[-3000:]
    # the same examples against a kernel off by a little
    plugin.write_text(
        MYLAB.replace("(nir - red) / (nir + red)", "(nir - red) / (nir + red + 1e-3)")
    )
    out = pytest_run("-k", "conformance and uneven")
    assert out.startswith("exit 1") and "1 failed" in out, out[-3000:]
    assert "mylab.ndvi on cpu" in out, out[-3000:]

"""Pipeline documents are validated strictly before anything runs."""

from __future__ import annotations

import pytest
from minjiang.core._pipeline import MAX_PIPELINE_BYTES, load_pipeline
from minjiang.core.errors import ParameterError, PipelineError

GOOD = """
name: t
steps:
  - id: smooth
    operator: array.gaussian
    inputs: {x: demo/sst}
    params: {sigma: 1}
  - id: mean
    operator: array.reduce
    inputs: {x: smooth}
    params: {dims: [time]}
"""


def test_good_pipeline_loads() -> None:
    p = load_pipeline(GOOD)
    assert [s.id for s in p.steps] == ["smooth", "mean"]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (GOOD.replace("params: {sigma: 1}", "parms: {sigma: 1}"), "unknown key"),
        ("steps:\n  - &a {id: x, operator: array.gaussian}\n  - *a\n", "anchors|aliases"),
        ("steps: []\n", "at least one step"),
        ("steps:\n  - {id: x, operator: a.b}\n  - {id: x, operator: a.b}\n", "used twice"),
        ("steps:\n  - {id: X-1, operator: a.b}\n", "lowercase"),
        ("steps:\n  - {id: x, operator: a.b, reader: c.d, paths: [p]}\n", "exactly one"),
        ("steps:\n  - {id: x, operator: a.b, inputs: {x: $missing}}\n", "declares inputs"),
        ("name: a\nname: b\nsteps: []\n", "duplicate"),
        ("- just a list\n", "mapping"),
        ("steps: [\n", "not valid YAML"),
    ],
)
def test_bad_pipelines_are_rejected(text: str, match: str) -> None:
    with pytest.raises(PipelineError, match=match):
        load_pipeline(text)


def test_oversized_document_is_rejected() -> None:
    with pytest.raises(PipelineError, match="limit"):
        load_pipeline("steps:\n" + "#" * (MAX_PIPELINE_BYTES + 1) + "\n")


def test_bad_params_fail_before_any_task_runs(runtime, tmp_path) -> None:
    events = []
    runtime.subscribe(events.append)
    p = load_pipeline(
        "steps:\n  - {id: s, operator: array.gaussian, inputs: {x: nowhere}, params: {sigma: -1}}\n"
    )
    with pytest.raises(ParameterError, match="sigma"):
        runtime.run_pipeline(p)
    assert events == []


# ---------------------------------------------------------------- loading is total
STEP = "steps:\n  - {id: s, operator: array.gaussian, inputs: {x: demo/sst}, params: {sigma: 1}}\n"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        # alias bomb: refused at the first alias, nothing is expanded
        ("a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n" + STEP, "anchors|aliases"),
        ("steps: &x\n  - *x\n", "anchors|aliases"),
        ("name: !!python/object:os.system x\n" + STEP, "tag"),
        ("name: !!binary aGk=\n" + STEP, "tag"),
        ("1: x\n" + STEP, "not a string"),
        ("on: x\n" + STEP, "not a string; quote it"),
        ("steps: " + "[" * 40 + "]" * 40 + "\n", "nested more than 32"),
        ("steps: " + "[" * 100_000 + "\n", "nested|nesting"),
        ("steps: [" + ", ".join(["1"] * 60_000) + "]\n", "more than 50000 values"),
        ("steps: 5\n", "field 'steps': Input should be a valid list"),
        ("steps: [5]\n", "step #1: Input should be a valid dictionary"),
        (
            STEP.replace("demo/sst", "5"),
            r"field 'inputs\.x': Input should be a valid string \(got int\)",
        ),
        (
            STEP.replace("{x: demo/sst}", "{x: [demo/sst]}"),
            r"step 's' field 'inputs\.x'.*valid string",
        ),
        (STEP.replace("id: s", "id: 5"), r"step #1 field 'id'"),
        (STEP.replace("array.gaussian", "os:system"), "domain.name"),
        (STEP.replace("array.gaussian", "a" * 5000), "domain.name"),
        (STEP + "report: os:system\n", "import paths are not accepted"),
        (STEP + "report: minjiang.core._demo:synthetic_sst\n", "import paths are not accepted"),
        (STEP + "name: ../../x\n", "field 'name'"),
        (STEP + "version: [1]\n", "field 'version'"),
        (
            "steps:\n  - {id: a, operator: array.reduce, inputs: {x: b}}\n"
            "  - {id: b, operator: array.reduce, inputs: {x: demo/sst}}\n",
            "does not come before it",
        ),
        ('steps:\n  - {id: s, reader: array.zarr, paths: ["a\\0b"]}\n', "control character"),
        ("steps:\n  - {id: s, reader: array.zarr, paths: ['" + "a" * 300 + "']}\n", "255 bytes"),
        ("steps:\n  - {id: s, reader: array.zarr, paths: ['" + "a/" * 2100 + "']}\n", "4096"),
        (
            "steps:\n  - {id: s, reader: array.zarr, paths: [x.zarr], inputs: {a: b}}\n",
            "takes 'paths'",
        ),
        ("", "must be a mapping"),
        ("---\na: 1\n---\nb: 2\n", "not valid YAML"),
    ],
)
def test_hostile_documents_are_typed_errors(text: str, match: str) -> None:
    with pytest.raises(PipelineError, match=match):
        load_pipeline(text)


def test_non_utf8_text_and_files_are_typed_errors(tmp_path) -> None:
    with pytest.raises(PipelineError, match="not UTF-8"):
        load_pipeline("name: café\n".encode("latin-1") + STEP.encode())
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: café\n".encode("latin-1") + STEP.encode())
    with pytest.raises(PipelineError, match="not UTF-8"):
        load_pipeline(path)
    (tmp_path / "folder.yaml").mkdir()
    with pytest.raises(PipelineError, match="is not a file"):
        load_pipeline(tmp_path / "folder.yaml")
    with pytest.raises(PipelineError, match=r"cannot be read|does not exist"):
        load_pipeline(str(tmp_path / ("a" * 300 + ".yaml")))
    with pytest.raises(PipelineError, match="does not exist"):
        load_pipeline(str(tmp_path / "nul\x00.yaml"))
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbf" + STEP.encode())
    assert load_pipeline(bom).steps[0].id == "s"


def test_dates_stay_strings_and_python_objects_are_checked() -> None:
    pipe = load_pipeline(STEP.replace("{sigma: 1}", "{sigma: 1, start: 2020-01-01}"))
    assert pipe.steps[0].params["start"] == "2020-01-01"
    cyclic: dict = {"steps": []}
    cyclic["steps"].append(cyclic)
    with pytest.raises(PipelineError):
        load_pipeline(cyclic)
    with pytest.raises(PipelineError, match="not a string"):
        load_pipeline({"steps": [{"id": "s", "operator": "a.b", "params": {1: 2}}]})
    deep: dict = {}
    node = deep
    for _ in range(100):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(PipelineError, match="nested more than"):
        load_pipeline({"steps": [{"id": "s", "operator": "a.b", "params": deep}]})
    with pytest.raises(PipelineError, match="not int"):
        load_pipeline(5)  # type: ignore[arg-type]


def test_python_api_models_raise_pipeline_errors() -> None:
    from minjiang.core._pipeline import Pipeline, Step

    with pytest.raises(PipelineError, match="invalid step 'ingest': field 'paths'"):
        Step(id="ingest", reader="array.zarr", paths=[""])
    with pytest.raises(PipelineError, match="at least one step"):
        Pipeline(steps=[])
    with pytest.raises(PipelineError, match="step 's' field 'params'"):
        Pipeline(steps=[{"id": "s", "operator": "a.b", "params": 5}])


def test_run_time_inputs_are_checked() -> None:
    pipe = load_pipeline("inputs: [cube]\nsteps:\n  - {id: s, reader: array.zarr, paths: $cube}\n")
    assert pipe.bind_inputs({"cube": "a.zarr"}) == {"cube": "a.zarr"}
    assert pipe.bind_inputs({"cube": ["a.nc", "b.nc"]}) == {"cube": ["a.nc", "b.nc"]}
    for bad, match in (
        ({}, "needs inputs"),
        ({"cube": "a", "other": "b"}, "has no inputs"),
        ({"cube": 5}, "must be a path or dataset name"),
        ({"cube": [1, 2]}, "must be a path or dataset name"),
        ({"cube": []}, "must be a path or dataset name"),
        ({"cube": "a\x00b"}, "control character"),
        ({"cube": "x" * 5000}, "limit"),
    ):
        with pytest.raises(PipelineError, match=match):
            pipe.bind_inputs(bad)


@pytest.mark.parametrize(
    ("operator", "params", "field"),
    [
        ("array.gaussian", {"sigma": float("nan")}, "sigma"),
        ("array.gaussian", {"sigma": float("inf")}, "sigma"),
        ("array.gaussian", {"sigma": 1e300}, "sigma"),
        ("array.gaussian", {"sigma": {"y": float("-inf")}}, "sigma"),
        ("array.quantile", {"q": float("nan")}, "q"),
        ("array.reduce", {"dims": ["time"], "ddof": 10**30}, "ddof"),
        ("array.label_stats", {"ignore": 2**70}, "ignore"),
        ("array.band_math", {"expression": "a", "output": "../x"}, "output"),
        ("medicine.gaussian", {"sigma_mm": float("nan")}, "sigma_mm"),
        ("medicine.hu_window", {"center": float("inf"), "width": 400}, "center"),
        ("medicine.median", {"size_mm": 1e9}, "size_mm"),
        ("ocean.climatology", {"percentile": float("nan")}, "percentile"),
        ("ocean.climatology", {"climatology_period": [2020, 1]}, "climatology_period"),
        ("ocean.marine_heatwaves", {"years": [0, 10**9]}, "years"),
        ("ocean.marine_heatwaves", {"min_duration": 10**12}, "min_duration"),
        (
            "ocean.regional_mean",
            {
                "regions": [
                    {"name": "b", "lat_min": float("nan"), "lat_max": 1, "lon_min": 0, "lon_max": 1}
                ]
            },
            "lat_min",
        ),
    ],
)
def test_non_finite_and_huge_parameters_are_refused(runtime, operator, params, field) -> None:
    with pytest.raises(ParameterError, match=field):
        runtime.registry.operator(operator).validate_params(params)

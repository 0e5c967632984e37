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

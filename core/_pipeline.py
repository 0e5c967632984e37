"""Pipelines: a list of steps, from YAML or from Python.

A step applies an ``operator`` to ``inputs`` with ``params`` (or ingests ``paths`` with
a ``reader``). An input value is, in this order: the id of an earlier step (its
output), ``$name`` (an input of the pipeline, given at run time), or a dataset name
or id from the catalog. YAML documents are validated strictly: unknown keys,
anchors/aliases, duplicate keys and oversized documents are rejected before anything
runs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from minjiang.core.errors import PipelineError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = ["MAX_PIPELINE_BYTES", "Pipeline", "Step", "load_pipeline"]

MAX_PIPELINE_BYTES = 1 << 20
_STEP_ID = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")


class Step(BaseModel):
    """One step of a pipeline (an operator application, or an ingest)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="Unique within the pipeline; later steps refer to it by this id.")
    operator: str | None = Field(default=None, description="Operator name, e.g. 'array.gaussian'.")
    reader: str | None = Field(default=None, description="Reader name for an ingest step.")
    paths: list[str] | str | None = Field(default=None, description="Ingest sources, or '$input'.")
    inputs: dict[str, str] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    name: str | None = Field(default=None, description="Publish the result under this name.")
    backend: Literal["auto", "cpu", "gpu"] | None = None
    resources: dict[str, float] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _check_id(cls, v: str) -> str:
        if not _STEP_ID.match(v):
            raise ValueError(
                f"step id {v!r} must be lowercase letters, digits and '_' (e.g. 'smooth')"
            )
        return v

    @field_validator("resources")
    @classmethod
    def _check_resources(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = set(v) - {"cpus", "gpus", "memory"}
        if unknown:
            raise ValueError(
                f"unknown resources {sorted(unknown)!r}; allowed: cpus, gpus, memory (bytes)"
            )
        return v

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        if (self.operator is None) == (self.reader is None):
            raise ValueError(f"step {self.id!r} needs exactly one of 'operator' or 'reader'")
        if self.reader is not None and not self.paths:
            raise ValueError(f"ingest step {self.id!r} needs 'paths'")
        if self.operator is not None and self.paths is not None:
            raise ValueError(f"step {self.id!r}: 'paths' belongs to ingest steps (with 'reader')")
        return self


class Pipeline(BaseModel):
    """An ordered list of steps; plugins register named, versioned ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    version: str = "1"
    description: str = ""
    inputs: list[str] = Field(default_factory=list, description="Names given at run time as $name.")
    steps: list[Step]
    backend: Literal["auto", "cpu", "gpu"] = "auto"
    report: str | None = Field(default=None, description="'module:function' called after a run.")

    @model_validator(mode="after")
    def _check_graph(self) -> Pipeline:
        if not self.steps:
            raise ValueError("a pipeline needs at least one step")
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                raise ValueError(f"step id {step.id!r} is used twice")
            refs = list(step.inputs.values())
            if isinstance(step.paths, str):
                refs.append(step.paths)
            for ref in refs:
                if ref.startswith("$") and ref[1:] not in self.inputs:
                    raise ValueError(
                        f"step {step.id!r} uses {ref!r} but the pipeline declares inputs {self.inputs!r}"
                    )
            seen.add(step.id)
        return self

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise PipelineError(
            f"pipeline has no step {step_id!r}; steps: {[s.id for s in self.steps]!r}"
        )

    @classmethod
    def from_yaml(cls, text: str, *, label: str = "<string>") -> Pipeline:
        return load_pipeline(text, label=label)


def _strict_loader() -> type:
    import yaml

    class StrictLoader(yaml.SafeLoader):
        """SafeLoader that refuses anchors/aliases and duplicate keys."""

        def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise PipelineError(
                    f"YAML aliases are not allowed (line {event.start_mark.line + 1}); write the value out"
                )
            node = super().compose_node(parent, index)
            if node is not None and getattr(node, "anchor", None) is not None:
                raise PipelineError(
                    f"YAML anchors are not allowed (line {node.start_mark.line + 1})"
                )
            return node

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
            dupes = {k for k in keys if keys.count(k) > 1}
            if dupes:
                raise PipelineError(
                    f"duplicate YAML keys {sorted(map(str, dupes))!r} (line {node.start_mark.line + 1})"
                )
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


def _format_validation(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(document)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see docs/cli.md for the pipeline format)"
        lines.append(f"  {loc}: {msg}")
    return f"invalid pipeline {source}:\n" + "\n".join(lines)


def load_pipeline(
    source: str | os.PathLike[str] | Mapping[str, Any], *, label: str | None = None
) -> Pipeline:
    """Load and validate a pipeline from a YAML file path, YAML text or a mapping."""
    import yaml

    label = label or "<string>"
    if isinstance(source, Mapping):
        data: Any = source
        label = "<mapping>"
    else:
        text: str
        if isinstance(source, os.PathLike) or (
            isinstance(source, str) and "\n" not in source and source.endswith((".yaml", ".yml"))
        ):
            path = Path(source)
            if not path.is_file():
                raise PipelineError(f"pipeline file {str(path)!r} does not exist")
            if path.stat().st_size > MAX_PIPELINE_BYTES:
                raise PipelineError(
                    f"pipeline file {path.name!r} is {path.stat().st_size} bytes; the limit is "
                    f"{MAX_PIPELINE_BYTES} bytes"
                )
            text, label = path.read_text(encoding="utf-8"), str(path)
        else:
            text = str(source)
        if len(text.encode("utf-8")) > MAX_PIPELINE_BYTES:
            raise PipelineError(
                f"pipeline document is larger than the {MAX_PIPELINE_BYTES}-byte limit"
            )
        try:
            data = yaml.load(text, Loader=_strict_loader())
        except yaml.YAMLError as err:
            raise PipelineError(f"pipeline {label} is not valid YAML: {err}") from None
    if not isinstance(data, Mapping):
        raise PipelineError(f"pipeline {label} must be a mapping with a 'steps' list")
    try:
        return Pipeline.model_validate(dict(data))
    except ValidationError as err:
        raise PipelineError(_format_validation(err, label)) from None

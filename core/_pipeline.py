"""Pipelines: a list of steps, from YAML or from Python.

A step applies an ``operator`` to ``inputs`` with ``params`` (or ingests ``paths`` with
a ``reader``). An input value is, in this order: the id of an earlier step (its
output), ``$name`` (an input of the pipeline, given at run time), or a dataset name
or id from the catalog.

Loading is total: whatever bytes or objects it is given, :func:`load_pipeline`
returns a :class:`Pipeline` or raises :class:`~minjiang.core.errors.PipelineError`
naming the step, the field and the fix. A pipeline document is data, never code: it
is UTF-8 YAML restricted to JSON's data model (strings, numbers, booleans, null,
lists and mappings with string keys), without anchors, aliases, tags or duplicate
keys, at most :data:`MAX_PIPELINE_BYTES` bytes, :data:`MAX_DEPTH` levels deep and
:data:`MAX_NODES` values in all. A pipeline's ``report`` is the *name* of a report a
plugin registered (:class:`Report`), never an import path.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from minjiang.core.errors import PipelineError, PluginError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_PIPELINE_BYTES",
    "MAX_STEPS",
    "Pipeline",
    "Report",
    "Step",
    "load_pipeline",
    "load_yaml",
]

#: The largest pipeline document accepted, in bytes.
MAX_PIPELINE_BYTES = 1 << 20
#: The deepest nesting of lists and mappings accepted (the steps themselves sit at 3).
MAX_DEPTH = 32
#: The most values (scalars, lists and mappings) a pipeline document may hold.
MAX_NODES = 50_000
#: The most steps a pipeline may have.
MAX_STEPS = 1000
#: The longest path, dataset reference or input value accepted, in characters.
MAX_REF_CHARS = 4096

_STEP_ID = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
_PLUGIN_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}\.[a-z][a-z0-9_]{0,63}$")
_INPUT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _shown(value: str, limit: int = 80) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


def _check_text(value: str, what: str, limit: int = MAX_REF_CHARS) -> str:
    if not value:
        raise ValueError(f"{what} is empty")
    if len(value) > limit:
        raise ValueError(f"{what} is {len(value)} characters long; the limit is {limit}")
    if _CONTROL.search(value):
        raise ValueError(f"{what} {_shown(value)} contains a control character (or NUL)")
    return value


def _check_path(value: str, what: str) -> str:
    """A path or reference the file system can take: no control characters, within the
    limits of POSIX file systems (255 bytes a component, :data:`MAX_REF_CHARS` in all)."""
    _check_text(value, what)
    if len(value.encode("utf-8", "surrogatepass")) >= MAX_REF_CHARS:
        raise ValueError(f"{what} {_shown(value)} is {MAX_REF_CHARS} bytes or longer in UTF-8")
    for part in re.split(r"[/\\]", value):
        if len(part.encode("utf-8", "surrogatepass")) > 255:
            raise ValueError(
                f"{what} {_shown(value)} has a component longer than 255 bytes, which no "
                "common file system allows"
            )
    return value


class _TypedModel(BaseModel):
    """A model whose validation failures are :class:`PipelineError`, not pydantic's."""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as err:
            raise PipelineError(_format_validation(err, *_describe(type(self), data))) from None

    # pydantic calls a model's own __init__ for nested instances unless it is marked as
    # the base one; nested steps must fail as pydantic errors so that the pipeline's
    # message names the step and field once
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as err:
            raise PipelineError(_format_validation(err, *_describe(cls, obj))) from None


def _describe(cls: type, data: Any) -> tuple[str, Any, str]:
    if cls.__name__ == "Step":
        sid = data.get("id") if isinstance(data, Mapping) else None
        return (repr(sid) if isinstance(sid, str) and len(sid) <= 64 else "", data, "step")
    return ("", data, "pipeline")


class Step(_TypedModel):
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
    resources: dict[str, float] = Field(
        default_factory=dict,
        description="Per-task resources: CPU (also numba's thread cap), GPU, memory (bytes, a "
        "floor under the projected peak) and custom cluster resources (core/_resources.py).",
    )

    @field_validator("resources")
    @classmethod
    def _check_resources(cls, v: dict[str, float]) -> dict[str, float]:
        from minjiang.core._resources import check_resources

        return check_resources(v)

    @field_validator("id")
    @classmethod
    def _check_id(cls, v: str) -> str:
        if not _STEP_ID.fullmatch(v):
            raise ValueError(
                f"step id {_shown(v)} must be lowercase letters, digits and '_' (at most 64, "
                "e.g. 'smooth')"
            )
        return v

    @field_validator("operator", "reader")
    @classmethod
    def _check_plugin_name(cls, v: str | None) -> str | None:
        if v is not None and not _PLUGIN_NAME.fullmatch(v):
            raise ValueError(
                f"{_shown(v)} is not a registered name: names are 'domain.name' in lowercase "
                "letters, digits and '_' (e.g. 'array.gaussian'); `minjiang plugins` lists them"
            )
        return v

    @field_validator("paths")
    @classmethod
    def _check_paths(cls, v: list[str] | str | None) -> list[str] | str | None:
        if v is None:
            return v
        for p in [v] if isinstance(v, str) else v:
            _check_path(p, "path")
        if isinstance(v, list) and len(v) > 100_000:
            raise ValueError(f"{len(v)} paths; give at most 100000 (or a folder)")
        return v

    @field_validator("inputs")
    @classmethod
    def _check_inputs(cls, v: dict[str, str]) -> dict[str, str]:
        for key, ref in v.items():
            if not _INPUT_NAME.fullmatch(key):
                raise ValueError(
                    f"input name {_shown(key)} must be letters, digits and '_' (the operator's "
                    "input names; `minjiang plugins --operator NAME` lists them)"
                )
            _check_text(ref, f"input {key!r}")
            if ref.startswith("$") and not _INPUT_NAME.fullmatch(ref[1:]):
                raise ValueError(
                    f"input {key!r}: {_shown(ref)} is not '$name' with a pipeline input's name"
                )
        return v

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from minjiang.storage._names import validate_name

        _check_text(v, "dataset name", 200)
        return validate_name(v)  # an InvalidNameError is a ValueError: pydantic reports it

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        if (self.operator is None) == (self.reader is None):
            raise ValueError(f"step {self.id!r} needs exactly one of 'operator' or 'reader'")
        if self.reader is not None and not self.paths:
            raise ValueError(f"ingest step {self.id!r} needs 'paths'")
        if self.operator is not None and self.paths is not None:
            raise ValueError(f"step {self.id!r}: 'paths' belongs to ingest steps (with 'reader')")
        if self.reader is not None and self.inputs:
            raise ValueError(f"ingest step {self.id!r} takes 'paths', not 'inputs'")
        return self


class Pipeline(_TypedModel):
    """An ordered list of steps; plugins register named, versioned ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    version: str = "1"
    description: str = Field(default="", max_length=10_000)
    inputs: list[str] = Field(default_factory=list, description="Names given at run time as $name.")
    steps: list[Step] = Field(max_length=MAX_STEPS)
    backend: Literal["auto", "cpu", "gpu"] = "auto"
    report: str | None = Field(
        default=None,
        description="Name of a report a plugin registered (minjiang_register_reports), "
        "written after a run.",
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from minjiang.storage._names import validate_segment

        _check_text(v, "pipeline name", 64)
        return validate_segment(v)

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            return str(v)
        return v

    @field_validator("version")
    @classmethod
    def _check_version(cls, v: str) -> str:
        if not _VERSION.fullmatch(v):
            raise ValueError(
                f"version {_shown(v)} must be letters, digits, '.', '_', '+' or '-' "
                "(at most 64, e.g. '1' or '2.1')"
            )
        return v

    @field_validator("inputs")
    @classmethod
    def _check_input_names(cls, v: list[str]) -> list[str]:
        for name in v:
            if not _INPUT_NAME.fullmatch(name):
                raise ValueError(
                    f"input name {_shown(name)} must be letters, digits and '_' (e.g. 'cube')"
                )
        if len(set(v)) != len(v):
            raise ValueError(f"inputs {v!r} name one input twice")
        return v

    @field_validator("report")
    @classmethod
    def _check_report(cls, v: str | None) -> str | None:
        if v is None or _PLUGIN_NAME.fullmatch(v):
            return v
        hint = (
            " (import paths are not accepted: a pipeline file never runs code of its choosing)"
            if ":" in v or "/" in v
            else ""
        )
        raise ValueError(
            f"report {_shown(v)} must be the name of a report a plugin registers, "
            f"'domain.name' (e.g. 'ocean.mhw_quicklook'){hint}; `minjiang plugins` lists them"
        )

    @model_validator(mode="after")
    def _check_graph(self) -> Pipeline:
        if not self.steps:
            raise ValueError("a pipeline needs at least one step")
        ids = [s.id for s in self.steps]
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
                        f"step {step.id!r} uses {ref!r} but the pipeline declares inputs "
                        f"{self.inputs!r}; add it to 'inputs'"
                    )
                target = ref.rsplit(":", 1)[0]
                if target in ids and target not in seen:
                    raise ValueError(
                        f"step {step.id!r} uses step {target!r}, which does not come before it; "
                        "order the steps so that each one's inputs come first"
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

    def bind_inputs(self, inputs: Mapping[str, Any] | None) -> dict[str, str | list[str]]:
        """Check the run-time ``inputs`` against the declared ones.

        Each value is a path or dataset reference (``str`` or ``os.PathLike``) or a list
        of them (ingest paths). Raises :class:`PipelineError` for a missing or unknown
        input, or a value of another type, naming the input and the fix.
        """
        label = f"pipeline {self.name!r}" if self.name else "the pipeline"
        if inputs is None:
            inputs = {}
        if not isinstance(inputs, Mapping):
            raise PipelineError(
                f"inputs of {label} must be a mapping of name to path or dataset, "
                f"not {type(inputs).__name__}"
            )
        missing = [n for n in self.inputs if n not in inputs]
        if missing:
            raise PipelineError(
                f"{label} needs inputs {missing!r}; give them as "
                + " ".join(f"--input {m}=..." for m in missing)
            )
        unknown = [k for k in inputs if k not in self.inputs]
        if unknown:
            shown = [k if isinstance(k, str) else repr(k) for k in unknown][:10]
            raise PipelineError(f"{label} has no inputs {shown!r}; it takes {self.inputs!r}")
        bound: dict[str, str | list[str]] = {}
        for key, value in inputs.items():
            items = value if isinstance(value, list | tuple) else [value]
            if not items or not all(isinstance(x, str | os.PathLike) for x in items):
                raise PipelineError(
                    f"input {key!r} of {label} must be a path or dataset name (or a list of "
                    f"paths), not {type(value).__name__}"
                )
            texts = []
            for x in items:
                try:
                    texts.append(_check_path(os.fspath(x), f"input {key!r}"))
                except (ValueError, TypeError) as err:
                    raise PipelineError(f"{label}: {err}") from None
            bound[key] = texts if isinstance(value, list | tuple) else texts[0]
        return bound

    @classmethod
    def from_yaml(cls, text: str | bytes, *, label: str = "<string>") -> Pipeline:
        return load_pipeline(text, label=label)


@dataclasses.dataclass(frozen=True)
class Report:
    """A report a plugin writes after a pipeline run (a quick-look figure, a summary).

    Plugins return these from the ``minjiang_register_reports`` hook; a pipeline
    names one in its ``report`` field.

    Parameters
    ----------
    name
        Namespaced ``domain.name`` (``ocean.mhw_quicklook``), unique across plugins.
    function
        ``function(results, directory) -> [paths]``: ``results`` maps step id to the
        run's :class:`minjiang.Result`; it writes files into ``directory`` and returns
        their paths. It runs on the driver after every step has been committed.
    steps
        Step ids the report reads; a pipeline naming the report must have them
        (checked when the pipeline is planned).
    description
        One line for ``minjiang plugins``.
    """

    name: str
    function: Callable[[dict[str, Any], Path], Sequence[str | os.PathLike[str]]]
    steps: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _PLUGIN_NAME.fullmatch(self.name):
            raise PluginError(
                f"report name {self.name!r} must be 'domain.name' in lowercase letters, digits "
                "and '_' (e.g. 'ocean.mhw_quicklook')"
            )
        if not callable(self.function):
            raise PluginError(
                f"report {self.name!r}: function {self.function!r} is not callable; give "
                "function(results, directory) -> list of paths"
            )
        object.__setattr__(self, "steps", tuple(self.steps))

    def check(self, pipeline: Pipeline) -> None:
        """Raise :class:`PipelineError` if ``pipeline`` lacks a step this report reads."""
        ids = {s.id for s in pipeline.steps}
        missing = [s for s in self.steps if s not in ids]
        if missing:
            raise PipelineError(
                f"report {self.name!r} reads steps {missing!r}, which pipeline "
                f"{pipeline.name or '(unnamed)'!r} does not have (its steps: {sorted(ids)!r}); "
                "name a report written for this pipeline"
            )

    def write(self, results: Mapping[str, Any], directory: Path) -> list[Path]:
        """Run the report into ``directory``; the files it wrote, all inside ``directory``."""
        directory = Path(directory)
        try:
            written = self.function(dict(results), directory)
        except Exception as err:
            raise PluginError(f"report {self.name!r} failed: {type(err).__name__}: {err}") from err
        if isinstance(written, str | bytes) or not isinstance(written, Sequence):
            raise PluginError(
                f"report {self.name!r} returned {type(written).__name__}; it must return the "
                "list of files it wrote"
            )
        root = directory.resolve()
        out = []
        for p in written:
            path = Path(p)
            if not path.resolve().is_relative_to(root):
                raise PluginError(
                    f"report {self.name!r} wrote {path.name!r} outside its folder {str(root)!r}; "
                    "a report writes only into the directory it is given"
                )
            out.append(path)
        return out


# ---------------------------------------------------------------------- loading YAML
_JSON_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:map",
}
_LOADER: list[type] = []


def _strict_loader() -> type:
    """The loader that constructs a checked document (see :func:`load_yaml`).

    libyaml's parser when PyYAML has it (50 times faster on large documents), else
    PyYAML's own; SafeConstructor either way, refusing non-string and duplicate keys,
    with dates and times left as strings (JSON has no date type).
    """
    if _LOADER:
        return _LOADER[0]
    import yaml

    base = getattr(yaml, "CSafeLoader", None) if yaml.__with_libyaml__ else None

    class StrictLoader(base or yaml.SafeLoader):  # type: ignore[misc]
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            keys = []
            for key_node, _ in node.value:
                if key_node.tag != "tag:yaml.org,2002:str":
                    raise PipelineError(
                        f"YAML key {_shown(str(key_node.value), 40)} (line "
                        f"{key_node.start_mark.line + 1}) is not a string; quote it"
                    )
                keys.append(key_node.value)
            seen: set[str] = set()
            dupes = sorted({k for k in keys if k in seen or seen.add(k)})  # type: ignore[func-returns-value]
            if dupes:
                raise PipelineError(
                    f"duplicate YAML keys {[k[:40] for k in dupes][:5]!r} "
                    f"(line {node.start_mark.line + 1})"
                )
            return super().construct_mapping(node, deep=deep)

    # copy the resolver table so SafeLoader itself is not changed
    StrictLoader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    _LOADER.append(StrictLoader)
    return StrictLoader


def _check_events(text: str, loader: type) -> None:
    """Refuse aliases, anchors, tags, too deep nesting and too many values, from the
    event stream (no recursion, nothing built), before the document is constructed."""
    import yaml

    depth = nodes = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.AliasEvent):
            raise PipelineError(
                f"YAML aliases are not allowed (line {event.start_mark.line + 1}); "
                "write the value out"
            )
        if not isinstance(event, yaml.NodeEvent):
            if isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            continue
        line = event.start_mark.line + 1
        if event.anchor is not None:
            raise PipelineError(f"YAML anchors are not allowed (line {line}); remove '&'")
        tag = getattr(event, "tag", None)
        if tag not in (None, "!") and tag not in _JSON_TAGS:
            raise PipelineError(
                f"YAML tag {_shown(str(tag), 40)} is not allowed (line {line}); a pipeline "
                "holds plain strings, numbers, booleans, null, lists and mappings"
            )
        nodes += 1
        if nodes > MAX_NODES:
            raise PipelineError(
                f"pipeline document holds more than {MAX_NODES} values (line {line}); "
                "keep large data in datasets, not in parameters"
            )
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise PipelineError(
                    f"pipeline document is nested more than {MAX_DEPTH} levels deep "
                    f"(line {line}); flatten it"
                )


def load_yaml(text: str, label: str = "<string>") -> Any:
    """YAML text as JSON-like data, within the limits of a pipeline document.

    Raises :class:`PipelineError` for invalid YAML, aliases, anchors, tags, non-string
    or duplicate keys, more than :data:`MAX_DEPTH` levels or :data:`MAX_NODES` values.
    """
    import yaml

    loader = _strict_loader()
    try:
        _check_events(text, loader)
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as err:
        msg = " ".join(str(err).split())
        raise PipelineError(f"pipeline {label} is not valid YAML: {msg[:500]}") from None
    except RecursionError:  # defence in depth: the depth limit stops this first
        raise PipelineError(f"pipeline {label} is nested too deeply; flatten it") from None


def _check_mapping(data: Mapping[str, Any], label: str) -> None:
    """Depth, size, key types and cycles of a pipeline given as Python objects."""
    nodes = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    seen: set[int] = set()
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise PipelineError(f"pipeline {label} holds more than {MAX_NODES} values")
        if isinstance(value, Mapping | list | tuple):
            if depth > MAX_DEPTH:
                raise PipelineError(
                    f"pipeline {label} is nested more than {MAX_DEPTH} levels deep; flatten it"
                )
            if id(value) in seen:  # shared, or a cycle: look inside once (pydantic refuses cycles)
                continue
            seen.add(id(value))
            if isinstance(value, Mapping):
                for key in value:
                    if not isinstance(key, str):
                        raise PipelineError(
                            f"pipeline {label}: key {key!r} ({type(key).__name__}) is not a string"
                        )
                stack.extend((v, depth + 1) for v in value.values())
            else:
                stack.extend((v, depth + 1) for v in value)


def _format_validation(err: ValidationError, source: str, data: Any, what: str = "pipeline") -> str:
    """One line per problem, joined: where (step id and field), what, and the fix."""
    steps = data.get("steps") if isinstance(data, Mapping) else None
    parts = []
    for e in err.errors()[:10]:
        loc = list(e["loc"])
        where = ".".join(str(p) for p in loc) or "(document)"
        if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
            sid = None
            if (
                isinstance(steps, list)
                and loc[1] < len(steps)
                and isinstance(steps[loc[1]], Mapping)
            ):
                sid = steps[loc[1]].get("id")
            label = (
                f"step {sid!r}"
                if isinstance(sid, str) and len(sid) <= 64
                else f"step #{loc[1] + 1}"
            )
            rest = ".".join(str(p) for p in loc[2:])
            where = f"{label}" + (f" field {rest!r}" if rest else "")
        elif loc:
            where = f"field {where!r}"
        msg = str(e["msg"]).removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see docs/cli.md for the pipeline format)"
        elif e["type"].endswith("_type") or e["type"] == "literal_error":
            msg = f"{msg} (got {type(e.get('input')).__name__})"
        parts.append(f"{where}: {msg}" if loc else msg)
    more = len(err.errors()) - 10
    if more > 0:
        parts.append(f"and {more} more")
    return f"invalid {what} {source}".rstrip() + ": " + "; ".join(parts)


def _read_file(path: Path) -> bytes:
    shown = _shown(str(path), 120)
    try:
        if not path.is_file():
            what = "is not a file" if path.exists() else "does not exist"
            raise PipelineError(f"pipeline file {shown} {what}; check the path")
        with path.open("rb") as fh:
            data = fh.read(MAX_PIPELINE_BYTES + 1)
    except PipelineError:
        raise
    except (OSError, ValueError) as err:
        raise PipelineError(
            f"pipeline file {shown} cannot be read ({type(err).__name__}: "
            f"{getattr(err, 'strerror', None) or err}); check the path"
        ) from None
    if len(data) > MAX_PIPELINE_BYTES:
        raise PipelineError(
            f"pipeline file {path.name[:80]!r} is larger than the {MAX_PIPELINE_BYTES}-byte limit"
        )
    return data


def _decode(data: bytes, label: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise PipelineError(
            f"pipeline {label} is not UTF-8 text (bad byte at offset {err.start}); save it as UTF-8"
        ) from None


def load_pipeline(
    source: str | bytes | os.PathLike[str] | Mapping[str, Any], *, label: str | None = None
) -> Pipeline:
    """Load and validate a pipeline from a YAML file path, YAML text or bytes, or a mapping.

    A ``str`` that is one line ending in ``.yaml``/``.yml`` is a file path; any other
    ``str`` or ``bytes`` is the YAML document itself.

    Raises
    ------
    PipelineError
        For anything that is not a valid pipeline (unreadable or non-UTF-8 file, invalid
        YAML, a document over the limits, unknown keys, wrong types, bad step graph),
        with the step, the field and the fix in the message.
    """

    label = label or "<string>"
    data: Any
    if isinstance(source, Mapping):
        label = "<mapping>"
        _check_mapping(source, label)
        data = source
    else:
        if isinstance(source, os.PathLike) or (
            isinstance(source, str)
            and "\n" not in source
            and source.rstrip().endswith((".yaml", ".yml"))
        ):
            try:
                path = Path(source)
            except TypeError as err:
                raise PipelineError(f"pipeline path {source!r} is not a path: {err}") from None
            raw = _read_file(path)
            label = _shown(str(path), 120)
            text = _decode(raw, label)
        elif isinstance(source, bytes | bytearray):
            if len(source) > MAX_PIPELINE_BYTES:
                raise PipelineError(
                    f"pipeline document is larger than the {MAX_PIPELINE_BYTES}-byte limit"
                )
            text = _decode(bytes(source), label)
        elif isinstance(source, str):
            text = source
            try:
                size = len(text.encode("utf-8"))
            except UnicodeEncodeError:
                raise PipelineError(
                    f"pipeline {label} contains a lone surrogate character; save it as UTF-8"
                ) from None
            if size > MAX_PIPELINE_BYTES:
                raise PipelineError(
                    f"pipeline document is larger than the {MAX_PIPELINE_BYTES}-byte limit"
                )
        else:
            raise PipelineError(
                f"a pipeline is a YAML file path, YAML text or a mapping, not "
                f"{type(source).__name__}"
            )
        data = load_yaml(text, label)
    if not isinstance(data, Mapping):
        hint = ""
        if isinstance(source, str) and "\n" not in source.strip():
            hint = (
                "; to load a file, give a path ending in .yaml or .yml; to run a registered "
                "pipeline, its name (`minjiang plugins` lists them)"
            )
        raise PipelineError(
            f"pipeline {label} must be a mapping with a 'steps' list, not "
            f"{type(data).__name__}{hint}"
        )
    steps = data.get("steps")
    if isinstance(steps, list | tuple) and len(steps) > MAX_STEPS:
        raise PipelineError(
            f"pipeline {label} has {len(steps)} steps; the limit is {MAX_STEPS}: split it"
        )
    try:
        return Pipeline.__pydantic_validator__.validate_python(dict(data))
    except ValidationError as err:
        raise PipelineError(_format_validation(err, label, data)) from None

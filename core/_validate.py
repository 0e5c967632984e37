"""``minjiang validate [PLUGIN]``: check installed plugins without running any data.

Per plugin, each of its operators, readers, pipelines and reports is checked:

* **api** – the plugin declares the plugin API range it supports (``MINJIANG_API``);
* **load** – the plugin loaded and registered without problems (import, hooks,
  return types, duplicate names: what :mod:`minjiang.core._plugins` reports);
* **namespace** – every name is ``<plugin>.<something>``;
* **contract** – version, inputs, outputs and pattern are well formed; every kernel,
  partial, combine, finalize and expansion is a module-level function that a worker
  can import by its dotted path; the parameter model gives a JSON schema and forbids
  unknown keys;
* **kernels** – the declared backends are known; ``cpu`` needs numba importable; an
  operator declaring ``gpu`` has a kernel that follows the backend (its source reads
  ``ctx.backend`` or dispatches on the array type);
* **memory** – the memory formula, on sample tasks of growing size, gives positive,
  finite byte counts that grow with the task and stay within a sane multiple of the
  bytes the task reads and writes; a declared compute formula gives finite,
  non-negative seconds;
* **docs** – a description (or docstring) for every operator, reader, pipeline and
  report, and a description for every parameter.

Nothing here reads a dataset or starts an executor.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel

__all__ = ["Finding", "PluginReport", "validate_plugins"]

Severity = Literal["problem", "warning"]
#: sample tasks: the output block's side, per dim
SAMPLE_SIDES = (16, 64, 256)
#: a projection above this many times the bytes a task reads and writes, plus
#: ABSURD_FLOOR, is a mistake (a unit slip, a square instead of a product)
ABSURD_FACTOR = 1000
ABSURD_FLOOR = 1 << 30
KNOWN_BACKENDS = ("cpu", "gpu")
#: what a kernel that follows the backend mentions in its source
GPU_TOKENS = ("backend", "cupy", "cuda", "array_namespace", "is_gpu_array", "xp.")


@dataclasses.dataclass(frozen=True)
class Finding:
    """One thing wrong (``problem``) or worth fixing (``warning``) in a plugin."""

    subject: str
    check: str
    severity: Severity
    message: str


@dataclasses.dataclass(frozen=True)
class PluginReport:
    """What :func:`validate_plugins` found for one plugin."""

    plugin: str
    module: str
    package: str
    version: str
    api_range: str | None
    checked: tuple[str, ...]
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not any(f.severity == "problem" for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["ok"] = self.ok
        return data


def _callable_path(ref: Any, what: str, out: list[Finding], subject: str) -> None:
    """A kernel reference must be importable by workers through its dotted path."""
    from minjiang.core._operator import dotted_path, import_dotted

    try:
        path = dotted_path(ref)
    except Exception as err:
        out.append(Finding(subject, "contract", "problem", f"{what}: {err}"))
        return
    try:
        target = import_dotted(path)
    except Exception as err:
        out.append(
            Finding(
                subject,
                "contract",
                "problem",
                f"{what} {path!r} cannot be imported ({type(err).__name__}: {err}); workers "
                "import kernels by this path, so define it at the top level of a module",
            )
        )
        return
    if not callable(target):
        out.append(Finding(subject, "contract", "problem", f"{what} {path!r} is not callable"))


def _params_sample(model: type[BaseModel]) -> BaseModel | None:
    """Parameters to evaluate formulas with: the defaults, else the fields' first
    ``examples``; ``None`` when a required field has neither."""
    try:
        return model.model_validate({})
    except Exception:
        pass
    values: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if info.is_required():
            if not info.examples:
                return None
            values[name] = info.examples[0]
    try:
        return model.model_validate(values)
    except Exception:
        return None


def _check_params(model: Any, subject: str, out: list[Finding]) -> None:
    if model is None:
        return
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        out.append(
            Finding(subject, "contract", "problem", f"params {model!r} is not a pydantic model")
        )
        return
    try:
        model.model_json_schema()
    except Exception as err:
        out.append(
            Finding(
                subject,
                "contract",
                "problem",
                f"parameter model {model.__name__} has no JSON schema ({type(err).__name__}: "
                f"{err}); use JSON-compatible field types",
            )
        )
    if model.model_config.get("extra") != "forbid":
        out.append(
            Finding(
                subject,
                "contract",
                "warning",
                f"parameter model {model.__name__} accepts unknown keys, so a misspelt "
                "parameter is silently ignored; set model_config = ConfigDict(extra='forbid')",
            )
        )
    for name, info in model.model_fields.items():
        if not (info.description or "").strip():
            out.append(
                Finding(
                    subject,
                    "docs",
                    "problem",
                    f"parameter {name!r} of {model.__name__} has no description; give "
                    f"Field(..., description='...') (it is shown by `minjiang plugins`)",
                )
            )


def _sizes(op: Any, side: int) -> Any:
    from minjiang.core._operator import ArrayOutput, TaskSize

    dims = tuple(op.primary.dims) if op.primary.dims else ("y", "x")
    shape = (side,) * len(dims)
    cells = side ** len(dims)
    n_in = sum(1 for i in op.inputs if i.kind == "array") or 1
    outs = op.outputs if not callable(op.outputs) else ()
    n_out = sum(1 for o in outs if isinstance(o, ArrayOutput)) or 1
    return TaskSize(
        input_bytes=cells * 4 * n_in,
        output_bytes=cells * 4 * n_out,
        block_shape=shape,
        itemsize=4,
        dims=dims,
        halo=(0,) * len(dims),
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            import numpy as np

            if isinstance(value, np.integer | np.floating):
                return float(value)
        except ImportError:  # pragma: no cover - numpy is a dependency
            pass
        return None
    return float(value)


def _check_formulas(op: Any, subject: str, out: list[Finding]) -> None:
    from minjiang.core._operator import Composite

    if isinstance(op.pattern, Composite):
        return  # planned through its sub-steps' operators
    params = _params_sample(op.params_model())
    if params is None:
        out.append(
            Finding(
                subject,
                "memory",
                "warning",
                "the memory formula was not checked: a required parameter has no default "
                "and no example; give it Field(..., examples=[...])",
            )
        )
        return
    projected: list[tuple[Any, float]] = []
    for side in SAMPLE_SIDES:
        size = _sizes(op, side)
        try:
            raw = op.memory(size, params)
        except Exception as err:
            out.append(
                Finding(
                    subject,
                    "memory",
                    "problem",
                    f"the memory formula raised {type(err).__name__}: {err} for a task of block "
                    f"{size.block_shape}; it must give bytes for any TaskSize",
                )
            )
            return
        value = _number(raw)
        if value is None or not math.isfinite(value) or value <= 0:
            out.append(
                Finding(
                    subject,
                    "memory",
                    "problem",
                    f"the memory formula gave {raw!r} for a task of block {size.block_shape}; it "
                    "must give a positive, finite number of bytes",
                )
            )
            return
        limit = ABSURD_FACTOR * (size.input_bytes + size.output_bytes) + ABSURD_FLOOR
        if value > limit:
            out.append(
                Finding(
                    subject,
                    "memory",
                    "problem",
                    f"the memory formula gave {value:.3g} bytes for a task that reads "
                    f"{size.input_bytes} and writes {size.output_bytes} bytes (block "
                    f"{size.block_shape}), more than {ABSURD_FACTOR}x that plus 1 GiB; check "
                    "its units (bytes, not bits or cells)",
                )
            )
            return
        projected.append((size, value))
        if op.compute is not None:
            try:
                seconds = _number(op.compute(size, params))
            except Exception as err:
                seconds = None
                detail = f"raised {type(err).__name__}: {err}"
            else:
                detail = f"gave {seconds!r}"
            if seconds is None or not math.isfinite(seconds) or seconds < 0:
                out.append(
                    Finding(
                        subject,
                        "memory",
                        "problem",
                        f"the compute formula {detail} for a task of block {size.block_shape}; "
                        "it must give finite, non-negative seconds",
                    )
                )
                return
    values = [v for _, v in projected]
    if any(b < a for a, b in itertools.pairwise(values)) or values[-1] <= values[0]:
        shown = ", ".join(f"{s.block_shape}: {v:.3g}" for s, v in projected)
        out.append(
            Finding(
                subject,
                "memory",
                "problem",
                f"the memory formula does not grow with the task ({shown} bytes); it must "
                "count the task's blocks, which grow with it",
            )
        )


def _mentions_gpu(source: str) -> bool:
    return any(token in source for token in GPU_TOKENS)


def _follows_backend(ref: Any) -> bool:
    """Whether a kernel has a GPU path: its source reads the backend or dispatches on
    the array type, or it calls into :mod:`minjiang.kernels` (whose kernels follow the
    array type) or into a module of its own package that does."""
    import ast
    import importlib
    import sys

    from minjiang.core._operator import dotted_path, import_dotted

    try:
        fn = import_dotted(dotted_path(ref))
        source = inspect.getsource(fn)
    except Exception:
        return True  # reported by the contract check, or no source (a compiled function)
    if _mentions_gpu(source):
        return True
    home = getattr(fn, "__module__", "") or ""
    modules: set[str] = set()
    try:
        tree = ast.parse(inspect.getsource(sys.modules[home]) if home in sys.modules else source)
    except (OSError, TypeError, SyntaxError):
        tree = ast.parse(source.strip()) if source.strip() else ast.Module(body=[], type_ignores=[])
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(a.name for a in node.names)
    top = (
        home.split(".")[0]
        if not home.startswith("minjiang.plugins.")
        else ".".join(home.split(".")[:3])
    )
    for name in sorted(modules):
        if name == "minjiang.kernels" or name.startswith("minjiang.kernels."):
            return True
        if name.startswith(top + ".") and name != home:
            try:
                if _mentions_gpu(inspect.getsource(importlib.import_module(name))):
                    return True
            except Exception:
                continue
    return False


def _check_operator(op: Any, subject: str, out: list[Finding]) -> None:
    from minjiang.core._operator import (
        Aggregate,
        ArrayOutput,
        Composite,
        FullAxis,
        Map,
        Reduce,
        TableOutput,
    )

    if not isinstance(op.version, str) or not op.version.strip():
        out.append(
            Finding(subject, "contract", "problem", f"version {op.version!r} must be a string")
        )
    names = [i.name for i in op.inputs]
    if len(set(names)) != len(names):
        out.append(Finding(subject, "contract", "problem", f"input names {names!r} are not unique"))
    if not callable(op.outputs) and not isinstance(op.pattern, Composite):
        outs = list(op.outputs)
        if not outs:
            out.append(Finding(subject, "contract", "problem", "declares no outputs"))
        onames = [o.name for o in outs]
        if len(set(onames)) != len(onames):
            out.append(
                Finding(subject, "contract", "problem", f"output names {onames!r} are not unique")
            )
        for o in outs:
            if not isinstance(o, ArrayOutput | TableOutput):
                out.append(
                    Finding(
                        subject,
                        "contract",
                        "problem",
                        f"output {o!r} is not an ArrayOutput or a TableOutput",
                    )
                )
            elif isinstance(o, ArrayOutput) and o.dtype is not None:
                import numpy as np

                try:
                    np.dtype(o.dtype)
                except TypeError:
                    out.append(
                        Finding(
                            subject,
                            "contract",
                            "problem",
                            f"output {o.name!r} has dtype {o.dtype!r}, which NumPy does not know",
                        )
                    )
    pattern = op.pattern
    refs: list[tuple[str, Any]] = []
    if isinstance(pattern, Map | FullAxis):
        refs = [("kernel", pattern.kernel)]
    elif isinstance(pattern, Reduce | Aggregate):
        refs = [
            ("partial", pattern.partial),
            ("combine", pattern.combine),
            ("finalize", pattern.finalize),
        ]
    elif isinstance(pattern, Composite):
        if not callable(pattern.expand):
            out.append(
                Finding(subject, "contract", "problem", "the composite's expand is not callable")
            )
    else:
        out.append(
            Finding(
                subject,
                "contract",
                "problem",
                f"pattern {pattern!r} is not Map, Reduce, FullAxis, Aggregate or Composite",
            )
        )
    for what, ref in refs:
        _callable_path(ref, what, out, subject)
    halo = getattr(pattern, "halo", None)
    if isinstance(halo, Mapping):
        bad = {
            k: v for k, v in halo.items() if isinstance(v, bool) or not isinstance(v, int) or v < 0
        }
        if bad:
            out.append(
                Finding(
                    subject, "contract", "problem", f"halo {bad!r}: cells must be integers >= 0"
                )
            )
    _check_params(op.params, subject, out)
    # kernels for the declared backends
    backends = tuple(op.backends)
    unknown = [b for b in backends if b not in KNOWN_BACKENDS]
    if unknown or not backends:
        out.append(
            Finding(
                subject,
                "kernels",
                "problem",
                f"backends {backends!r}: each must be one of {KNOWN_BACKENDS!r}, and at least one",
            )
        )
    if "cpu" in backends:
        import importlib.util

        if importlib.util.find_spec("numba") is None:
            out.append(
                Finding(
                    subject,
                    "kernels",
                    "problem",
                    "declares the cpu backend but numba is not importable; pip install numba",
                )
            )
    if "gpu" in backends and refs and not any(_follows_backend(ref) for _, ref in refs):
        out.append(
            Finding(
                subject,
                "kernels",
                "problem",
                "declares the gpu backend, but its kernel neither reads ctx.backend nor "
                "dispatches on the array type (minjiang.resolve_backend, array_namespace, "
                "CuPy); give it a GPU path or drop 'gpu' from backends",
            )
        )
    _check_formulas(op, subject, out)
    if not (op.description or "").strip():
        out.append(
            Finding(
                subject,
                "docs",
                "problem",
                "has no description; give Operator(description='...') (shown by "
                "`minjiang plugins --operator`)",
            )
        )


def _check_reader(reader: Any, subject: str, out: list[Finding]) -> None:
    from minjiang.core._reader import Reader

    if inspect.isabstract(type(reader)):
        out.append(
            Finding(subject, "contract", "problem", "does not implement open(files, params)")
        )
    if not isinstance(reader.version, str) or not reader.version.strip():
        out.append(Finding(subject, "contract", "problem", f"version {reader.version!r}"))
    if not reader.extensions and type(reader).guess_can_open is Reader.guess_can_open:
        out.append(
            Finding(
                subject,
                "contract",
                "warning",
                "has no extensions and keeps the default guess_can_open, so `minjiang ingest` "
                "never picks it; set extensions = ('.ext',) or override guess_can_open",
            )
        )
    _check_params(reader.params, subject, out)
    if not (reader.description or "").strip() and not (type(reader).__doc__ or "").strip():
        out.append(
            Finding(
                subject,
                "docs",
                "problem",
                "has no description or docstring; set description = '...' on the class",
            )
        )


def _check_pipeline(pipe: Any, subject: str, out: list[Finding], registry: Any) -> None:
    for step in pipe.steps:
        if step.operator and step.operator not in registry.operators:
            out.append(
                Finding(
                    subject,
                    "contract",
                    "problem",
                    f"step {step.id!r} uses operator {step.operator!r}, which no installed "
                    "plugin registers",
                )
            )
        if step.reader and step.reader not in registry.readers:
            out.append(
                Finding(
                    subject,
                    "contract",
                    "problem",
                    f"step {step.id!r} uses reader {step.reader!r}, which no installed plugin "
                    "registers",
                )
            )
    if pipe.report:
        try:
            registry.pipeline_report(pipe)
        except Exception as err:
            out.append(Finding(subject, "contract", "problem", str(err)))
    if not (pipe.description or "").strip():
        out.append(
            Finding(subject, "docs", "problem", "has no description; give description='...'")
        )


def _check_report(report: Any, subject: str, out: list[Finding]) -> None:
    if not callable(report.function):
        out.append(Finding(subject, "contract", "problem", "its function is not callable"))
    if not (report.description or "").strip():
        out.append(
            Finding(subject, "docs", "problem", "has no description; give description='...'")
        )


def validate_plugins(
    registry: Any = None, plugins: Iterable[str] | None = None
) -> list[PluginReport]:
    """Check the installed plugins (or those named in ``plugins``) without running data.

    Parameters
    ----------
    registry
        A :class:`minjiang.core._plugins.Registry`; default: a fresh one of the
        installed plugins (entry points).
    plugins
        Plugin names to check; default: every plugin.

    Returns
    -------
    list of PluginReport
        One per plugin, in name order; a plugin that was refused or failed to load
        has a report with its ``load`` or ``api`` problems.

    Raises
    ------
    PluginError
        If a plugin named in ``plugins`` is neither installed nor reported as skipped
        (the message lists the plugins).
    """
    from minjiang.core._plugins import (
        Registry,
        _distribution,
        api_compatibility,
        make_plugin_manager,
        suggested_range,
    )
    from minjiang.core.errors import PluginError

    if registry is None:
        pm, problems = make_plugin_manager()
        registry = Registry(pm, problems)
    tables: list[tuple[str, Mapping[str, tuple[str, Any]], Callable[..., None]]] = [
        ("operator", registry.operators, _check_operator),
        ("reader", registry.readers, _check_reader),
        ("pipeline", registry.pipelines, lambda p, s, o: _check_pipeline(p, s, o, registry)),
        ("report", registry.reports, _check_report),
    ]
    known = set(registry.plugin_names()) | {p.plugin for p in registry.problems}
    wanted = sorted(known) if plugins is None else list(plugins)
    missing = [p for p in wanted if p not in known]
    if missing:
        raise PluginError(
            f"no plugin named {missing!r}; the plugins are {sorted(known)!r} (`minjiang "
            "plugins` lists them)"
        )
    reports = []
    for plugin in wanted:
        out: list[Finding] = []
        obj = registry.pm.get_plugin(plugin)
        module = str(getattr(obj, "__name__", None) or type(obj).__module__) if obj else ""
        dist = _distribution(module) if module else {}
        spec: str | None = None
        for p in registry.problems:
            if p.plugin == plugin:
                check = "api" if p.stage == "compat" else "load"
                out.append(Finding(f"plugin {plugin}", check, "problem", f"({p.stage}) {p.error}"))
        if obj is not None:
            spec, _ = api_compatibility(obj)
            if spec is None:
                out.append(
                    Finding(
                        f"plugin {plugin}",
                        "api",
                        "warning",
                        "declares no supported API range, so an incompatible minjiang would "
                        f"load it anyway; add MINJIANG_API = {suggested_range()!r} to {module}",
                    )
                )
        checked = []
        for kind, table, check_item in tables:
            for name, (owner, item) in table.items():
                if owner != plugin:
                    continue
                subject = f"{kind} {name}"
                checked.append(subject)
                if not name.startswith(f"{plugin}."):
                    out.append(
                        Finding(
                            subject,
                            "namespace",
                            "problem",
                            f"is not in the plugin's namespace {plugin!r}; name it "
                            f"'{plugin}.{name.rsplit('.', 1)[-1]}' so that names of different "
                            "plugins never collide",
                        )
                    )
                try:
                    check_item(item, subject, out)
                except Exception as err:  # a check must not stop the others
                    out.append(
                        Finding(
                            subject,
                            "contract",
                            "problem",
                            f"could not be checked: {type(err).__name__}: {err}",
                        )
                    )
        reports.append(
            PluginReport(
                plugin=plugin,
                module=module,
                package=dist.get("package", ""),
                version=dist.get("version", ""),
                api_range=spec,
                checked=tuple(checked),
                findings=tuple(out),
            )
        )
    return reports

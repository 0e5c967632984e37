"""The public surface: what ``minjiang``, ``minjiang.core`` and ``minjiang.kernels``
export resolves to the real objects, and plugins import only public names.

A plugin module may import the public modules of minjiang (``minjiang``,
``minjiang.core``, ``minjiang.core.errors``, ``minjiang.kernels.<kernel>``,
``minjiang.storage``, ...) and its own plugin's private modules; never another
package's ``_private`` module or ``_private`` name (``minjiang.core._operator``,
``from minjiang.kernels import _cuda``). Checked on the syntax tree of every module
under ``plugins/``, function-level and ``TYPE_CHECKING`` imports included.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _module_name(path: Path) -> str:
    rel = path.relative_to(PLUGINS).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["minjiang", "plugins", *parts])


def imported_names(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """``(line, dotted name)`` of everything ``source`` imports: modules, and for
    ``from X import y`` the name ``X.y`` (a submodule or an attribute)."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            found.append((node.lineno, base))
            found.extend((node.lineno, f"{base}.{a.name}") for a in node.names if a.name != "*")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def private_imports(source: str, module: str, is_package: bool = False) -> list[str]:
    """The private minjiang names ``source`` (the module ``module``) imports from
    outside its own plugin, as ``"line: name"``."""
    own = ".".join(module.split(".")[:3])  # minjiang.plugins.<plugin>
    bad = []
    for line, name in imported_names(source, module, is_package):
        parts = name.split(".")
        if parts[0] != "minjiang" or name == own or name.startswith(own + "."):
            continue
        if any(_private(p) for p in parts[1:]):
            bad.append(f"{line}: {name}")
    return bad


def test_the_check_sees_each_way_of_importing_a_private_module() -> None:
    mod = "minjiang.plugins.demo._ops"
    cases = {
        "from minjiang.core._operator import Operator": True,
        "import minjiang.kernels._dispatch": True,
        "from minjiang.kernels import _cuda": True,
        "from minjiang.storage._dataset import read_array": True,
        "from minjiang.plugins.ocean._time import daily_axis": True,  # another plugin's
        "def f():\n    from minjiang.core._reader import Reader": True,
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import minjiang.core._runtime": True,
        "import importlib\nimportlib.import_module('minjiang.core._tasks')": True,
        "from minjiang.core import Operator, Reader": False,
        "from minjiang.kernels import cuda as _cuda": False,
        "import minjiang as mj": False,
        "from minjiang.plugins.demo._kernels import k": False,  # its own plugin
        "from . import _kernels": False,
        "from .._other import x": True,  # minjiang.plugins._other: not its own plugin
        "import numpy._core": False,  # not minjiang
    }
    for source, private in cases.items():
        assert bool(private_imports(source, mod)) is private, source


@pytest.mark.parametrize(
    "path", sorted(PLUGINS.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_plugins_import_only_public_minjiang_names(path: Path) -> None:
    bad = private_imports(path.read_text(), _module_name(path), path.name == "__init__.py")
    assert not bad, (
        f"{path.relative_to(ROOT)} imports private minjiang modules or names: {bad}; "
        "import the public name instead (minjiang, minjiang.core, minjiang.kernels, "
        "minjiang.kernels.cuda, minjiang.storage), or export it there first"
    )


def _type_checking_imports(module: str) -> dict[str, str]:
    """``name -> module`` of the ``if TYPE_CHECKING:`` imports of ``module``."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text())
    out: dict[str, str] = {}
    for node in tree.body:
        if (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Name)
            and node.test.id == "TYPE_CHECKING"
        ):
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom), ast.dump(stmt)
                for alias in stmt.names:
                    out[alias.asname or alias.name] = stmt.module or ""
    return out


@pytest.mark.parametrize("module", ["minjiang", "minjiang.core"])
def test_every_lazy_name_is_imported_for_type_checkers(module: str) -> None:
    mod = importlib.import_module(module)
    lazy = {
        name: (src if src.startswith("minjiang") else f"{module}.{src}")
        for name, src in mod._LAZY.items()
    }
    assert _type_checking_imports(module) == lazy, (
        f"{module}: the TYPE_CHECKING imports and _LAZY must name the same objects, "
        "or type checkers see a different API than the one that runs"
    )
    eager = {n for n in mod.__all__ if n in vars(mod) and n not in lazy}
    assert set(mod.__all__) == set(lazy) | eager, f"{module}.__all__ and its names differ"


@pytest.mark.parametrize(
    "module", ["minjiang", "minjiang.core", "minjiang.kernels", "minjiang.kernels.cuda"]
)
def test_public_names_resolve_to_their_definitions(module: str) -> None:
    mod = importlib.import_module(module)
    lazy = getattr(mod, "_LAZY", {})
    for name in mod.__all__:
        value = getattr(mod, name)
        if name in lazy:
            src = lazy[name] if lazy[name].startswith("minjiang") else f"{module}.{lazy[name]}"
            assert value is getattr(importlib.import_module(src), name), f"{module}.{name}"
        if inspect.isclass(value) or inspect.isfunction(value):
            home = getattr(value, "__module__", "") or ""
            assert home.startswith("minjiang") or name == "hookimpl", (
                f"{module}.{name} is {value!r}, not a minjiang object"
            )
    with pytest.raises(AttributeError, match="no attribute 'NotAName'"):
        _ = mod.NotAName


def test_facade_offers_what_plugin_authors_need() -> None:
    import minjiang as mj
    from minjiang.core._operator import BlockContext, TaskSize
    from minjiang.core._reader import Reader
    from minjiang.core._runtime import Result
    from minjiang.kernels._dispatch import array_namespace, is_gpu_array, resolve_backend

    assert (mj.Reader, mj.BlockContext, mj.TaskSize, mj.Result) == (
        Reader,
        BlockContext,
        TaskSize,
        Result,
    )
    assert (mj.resolve_backend, mj.is_gpu_array, mj.array_namespace) == (
        resolve_backend,
        is_gpu_array,
        array_namespace,
    )

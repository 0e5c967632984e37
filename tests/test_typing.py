"""Type checkers see the real public API, not ``Any``.

mypy runs on a small user module against minjiang laid out as installed (the same
``.ci/mypy.py`` tree ``make lint`` uses), and must reveal every public class and
function of ``minjiang``, ``minjiang.core``, ``minjiang.kernels`` and
``minjiang.kernels.cuda`` as the object that runs, and report wrong calls and
unknown names. If a lazy name lost its ``TYPE_CHECKING`` import, or ``minjiang``
stopped resolving for mypy, it would be ``Any`` and these assertions fail.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = ("minjiang", "minjiang.core", "minjiang.kernels", "minjiang.kernels.cuda")
ALIASES = {m: f"m{i}" for i, m in enumerate(MODULES)}


def _tree_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_mypy_tree", ROOT / ".ci" / "mypy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _public() -> list[tuple[str, str, object]]:
    """``(module, name, object)`` of every public class and function."""
    out = []
    for module in MODULES:
        mod = importlib.import_module(module)
        for name in mod.__all__:
            value = getattr(mod, name)
            if inspect.isclass(value) or inspect.isfunction(value):
                out.append((module, name, value))
    return out


@dataclasses.dataclass
class Checked:
    """mypy's messages on the snippet by line, and what each line should show."""

    messages: dict[int, str]
    revealed: dict[int, tuple[str, object]]  # line -> (public name, object)
    wrong: dict[str, int]  # kind of mistake -> line


pytestmark = pytest.mark.slow  # one mypy run over the package (~20 s of CPU)


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> Checked:
    work = tmp_path_factory.mktemp("typing")
    tree = _tree_builder().build_tree(work / "tree")
    lines = [f"import {m} as {a}" for m, a in ALIASES.items()]
    lines += ["import minjiang.core._runtime", ""]
    revealed: dict[int, tuple[str, object]] = {}
    for module, name, value in _public():
        if inspect.isclass(value):
            lines.append(f"def _{len(lines)}(x: {ALIASES[module]}.{name}) -> None:")
            lines.append("    reveal_type(x)")
        else:
            lines.append(f"reveal_type({ALIASES[module]}.{name})")
        revealed[len(lines)] = (f"{module}.{name}", value)
    mistakes = {
        "call": "m0.resolve_backend('cpu')",  # kernel= is required
        "unknown": "m0.NotAName",  # not in the facade: an error, not Any
        "private": "minjiang.core._runtime.Runtime(executor=3)",  # executor is a str
    }
    wrong = {}
    for kind, code in mistakes.items():
        lines.append(code)
        wrong[kind] = len(lines)
    snippet = work / "snippet.py"
    snippet.write_text("\n".join(lines) + "\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--follow-imports=silent",  # only the snippet's own messages
            "--cache-dir",
            str(ROOT / ".mypy_cache" / "test_typing"),
            "--no-error-summary",
            str(snippet),
        ],
        cwd=work,
        env={**os.environ, "MYPYPATH": str(tree)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    messages: dict[int, str] = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"^.*snippet\.py:(\d+): (.*)$", line)
        if m:
            messages[int(m[1])] = messages.get(int(m[1]), "") + m[2] + "\n"
    assert messages, f"mypy printed nothing usable:\n{proc.stdout}\n{proc.stderr}"
    return Checked(messages, revealed, wrong)


def test_public_classes_and_functions_have_their_real_types(checked: Checked) -> None:
    assert len(checked.revealed) > 40
    problems = []
    for line, (shown, value) in checked.revealed.items():
        msg = checked.messages.get(line, "")
        if inspect.isclass(value):
            ok = f'Revealed type is "{value.__module__}.{value.__qualname__}' in msg
        else:
            ok = 'Revealed type is "def ' in msg or 'Revealed type is "Overload(' in msg
        if not ok or '"Any"' in msg:
            problems.append(f"{shown}: {msg.strip() or 'no message'}")
    assert not problems, "mypy does not see the real types:\n" + "\n".join(problems)


def test_mypy_reports_wrong_calls_and_unknown_names(checked: Checked) -> None:
    at = {kind: checked.messages.get(line, "") for kind, line in checked.wrong.items()}
    assert 'Missing named argument "kernel"' in at["call"], at
    assert 'has no attribute "NotAName"' in at["unknown"], at
    assert 'incompatible type "int"' in at["private"], at

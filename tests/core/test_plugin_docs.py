"""docs/plugins.md documents every public name of the plugin surface, each in its place.

The surface is read from the code: every hook in ``minjiang.core.hookspecs``; every
name ``minjiang.core`` exports from the operator, reader and pipeline modules; and the
members of each of those classes (dataclass fields, pydantic model fields, and the
public properties and methods of ``BlockContext``, ``Reader`` and ``PlanInput``). A hook,
class or function is documented by a reference heading of its own, ``### `name```,
followed by text; a member by a table row ``| `member` |`` (or ``| `member(...)` |``)
inside its class's section. A mention elsewhere does not count.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import minjiang.core as core
import pytest
from minjiang.core import hookspecs
from pydantic import BaseModel

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
#: the modules of minjiang.core whose exports are the plugin author's surface
SURFACE_MODULES = {"_operator", "_reader", "_pipeline", "hookspecs"}
#: classes whose public methods and properties are documented too, not only their fields
WITH_METHODS = {"BlockContext", "Reader", "PlanInput"}


def surface_names() -> list[str]:
    """Hooks, then the classes and functions of the plugin surface."""
    hooks = sorted(n for n in hookspecs.__all__ if n.startswith("minjiang_"))
    names = sorted(n for n in core.__all__ if core._LAZY.get(n) in SURFACE_MODULES)
    return hooks + names


def members(name: str) -> list[str]:
    """The documented members of a surface class (empty for hooks and functions)."""
    obj = getattr(core, name, None)
    if not isinstance(obj, type):
        return []
    found: list[str] = []
    if dataclasses.is_dataclass(obj):
        found += [f.name for f in dataclasses.fields(obj) if not f.name.startswith("_")]
    elif issubclass(obj, BaseModel):
        found += list(obj.model_fields)
    if name in WITH_METHODS or not found:
        for key, value in vars(obj).items():
            if key.startswith("_"):
                continue
            if isinstance(value, property | classmethod | staticmethod) or inspect.isfunction(
                value
            ):
                found.append(key)
            elif not callable(value) and name == "Reader":  # the class attributes
                found.append(key)
    return list(dict.fromkeys(found))


def sections(text: str) -> dict[str, str]:
    """Reference sections: ``### `name``` heading -> its text (to the next heading)."""
    out: dict[str, str] = {}
    current: str | None = None
    for line in text.splitlines():
        heading = re.match(r"^(#{1,6})\s+(.*)$", line)
        if heading:
            title = re.fullmatch(r"`([A-Za-z_][A-Za-z0-9_]*)`", heading.group(2).strip())
            current = title.group(1) if title and len(heading.group(1)) == 3 else None
            if current is not None:
                out[current] = ""
            continue
        if current is not None:
            out[current] += line + "\n"
    return out


def undocumented(text: str) -> list[str]:
    """The surface names (``Class``) and members (``Class.member``) ``text`` lacks."""
    found = sections(text)
    missing = []
    for name in surface_names():
        body = found.get(name)
        if body is None or not body.strip():
            missing.append(name)
            continue
        rows = set(re.findall(r"^\|\s*`([A-Za-z_][A-Za-z0-9_]*)(?:\([^`]*\))?`\s*\|", body, re.M))
        missing += [f"{name}.{m}" for m in members(name) if m not in rows]
    return missing


def test_the_surface_is_what_plugins_use() -> None:
    names = surface_names()
    for expected in (
        "minjiang_register_operators",
        "minjiang_register_readers",
        "minjiang_register_pipelines",
        "Operator",
        "Input",
        "ArrayOutput",
        "TableOutput",
        "Map",
        "Reduce",
        "BlockContext",
        "Reader",
        "Pipeline",
        "Step",
        "hookimpl",
    ):
        assert expected in names
    assert "Runtime" not in names  # running minjiang is not the plugin surface
    assert {"region", "halo", "dims", "coords", "origin"} <= set(members("BlockContext"))
    assert {"open", "guess_can_open", "chunks", "extensions", "tables"} <= set(members("Reader"))
    assert {"name", "version", "pattern", "memory", "backends"} <= set(members("Operator"))


@pytest.mark.parametrize("name", surface_names())
def test_every_public_name_has_its_reference_section(name: str) -> None:
    missing = [m for m in undocumented(DOC.read_text()) if m.split(".")[0] == name]
    assert not missing, (
        f"docs/plugins.md does not document {missing}: give {name} a '### `{name}`' "
        "section with a table row '| `member` | meaning |' per member"
    )


def test_the_check_fails_for_a_name_only_mentioned() -> None:
    text = DOC.read_text()
    # drop BlockContext's section heading: the name is still mentioned all over the page
    without = text.replace("### `BlockContext`\n", "### BlockContext, unlisted\n")
    assert "BlockContext" in without
    assert "BlockContext" in undocumented(without)
    # drop one member's row: the section is still there, the member is not
    row = next(line for line in text.splitlines() if line.startswith("| `halo` | dim → `(before"))
    assert "BlockContext.halo" in undocumented(text.replace(row + "\n", ""))
    # a hook heading with nothing under it does not count
    hollow = re.sub(
        r"(### `minjiang_configure`\n)(.*?)(?=\n### )", r"\1", text, count=1, flags=re.S
    )
    assert "minjiang_configure" in undocumented(hollow)

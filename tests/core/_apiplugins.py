"""A plugin module made on the fly that declares (or not) the plugin API range it
supports, for the compatibility-gate tests."""

from __future__ import annotations

import types

import minjiang as mj
from minjiang.core import hookimpl


def plugin_with_api(name: str, api: object | None) -> types.ModuleType:
    """A module ``name`` with ``MINJIANG_API = api`` (none when ``api`` is None) and one
    hook that registers no operator."""
    mod = types.ModuleType(name)
    if api is not None:
        mod.MINJIANG_API = api  # type: ignore[attr-defined]

    @hookimpl
    def minjiang_register_operators() -> list[mj.Operator]:
        return []

    mod.minjiang_register_operators = minjiang_register_operators  # type: ignore[attr-defined]
    return mod

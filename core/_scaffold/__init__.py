"""``minjiang new-plugin NAME``: a plugin package generated from the templates beside
this module (``template/``, shipped as package data).

The templates are plain files ending ``.tmpl`` (so that linters and the packaging
checks leave them alone) with ``{{name}}``-style fields. ``src/package/`` becomes
``src/minjiang_<name>/`` and ``docs/plugin.md`` becomes ``docs/<name>.md``; every other
path is kept. The generated package passes its own tests as it is generated.
"""

from __future__ import annotations

import keyword
import os
import re
from collections.abc import Iterable
from pathlib import Path

from minjiang.core.errors import ParameterError, PluginError

__all__ = ["TEMPLATE", "plugin_fields", "scaffold_plugin", "template_files", "validate_plugin_name"]

#: the folder of template files
TEMPLATE = Path(__file__).resolve().parent / "template"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_FIELD = re.compile(r"\{\{([a-z_]+)\}\}")
#: names a plugin namespace cannot take: minjiang's own packages and Python's
_RESERVED = frozenset({"minjiang", "core", "kernels", "storage", "plugins", "web", "test", "tests"})


def validate_plugin_name(name: str, *, installed: Iterable[str] | None = None) -> str:
    """Check ``name`` as the namespace of a new plugin and return it.

    A namespace is what every operator, reader and pipeline of the plugin is called
    under (``name.operator``) and the plugin's entry-point name: lowercase letters,
    digits and ``_``, starting with a letter, at most 32 characters, not a Python
    keyword, not one of minjiang's own names, and not the name of an installed plugin.

    Parameters
    ----------
    name
        The proposed namespace, e.g. ``"mylab"``.
    installed
        Names taken by installed plugins; default: the ``minjiang`` entry points.

    Raises
    ------
    ParameterError
        For a name of the wrong form (the message shows the form and a fixed name).
    PluginError
        For a name an installed plugin already has, or whose package is importable.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        shown = repr(name)[:60]
        fixed = re.sub(r"[^a-z0-9_]+", "_", str(name).lower()).strip("_")[:32]
        hint = f" (e.g. {fixed!r})" if fixed and _NAME.fullmatch(fixed) else " (e.g. 'mylab')"
        raise ParameterError(
            f"plugin name {shown} must be lowercase letters, digits and '_', starting with "
            f"a letter, at most 32 characters{hint}: it becomes the namespace of every "
            "operator, reader and pipeline the plugin registers"
        )
    if keyword.iskeyword(name) or name in _RESERVED:
        raise ParameterError(
            f"plugin name {name!r} is reserved (a Python keyword or one of minjiang's own "
            "names); choose another, e.g. 'mylab'"
        )
    if installed is None:
        from importlib.metadata import entry_points

        from minjiang.core.hookspecs import PROJECT

        installed = [ep.name for ep in entry_points(group=PROJECT)]
    if name in set(installed):
        raise PluginError(
            f"an installed plugin is already called {name!r} (`minjiang plugins` lists it); "
            "choose another name, since plugin names and their namespaces must be unique"
        )
    import importlib.util

    package = f"minjiang_{name}"
    try:
        found = importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        found = False
    if found:
        raise PluginError(
            f"a package {package!r} is already importable here; choose another plugin name "
            f"or uninstall that package (pip uninstall {package.replace('_', '-')})"
        )
    return name


def plugin_fields(name: str) -> dict[str, str]:
    """The template fields for plugin ``name``."""
    import minjiang
    from minjiang.core._plugins import suggested_range

    return {
        "name": name,
        "package": f"minjiang_{name}",
        "dist": f"minjiang-{name.replace('_', '-')}",
        "api_range": suggested_range(),
        "minjiang_version": minjiang.__version__,
    }


def template_files() -> list[Path]:
    """Every template file, relative to :data:`TEMPLATE`."""
    return sorted(p.relative_to(TEMPLATE) for p in TEMPLATE.rglob("*.tmpl") if p.is_file())


def _target(rel: Path, fields: dict[str, str]) -> Path:
    parts = list(rel.with_name(rel.name[: -len(".tmpl")]).parts)
    if parts[:2] == ["src", "package"]:
        parts[1] = fields["package"]
    if parts == ["docs", "plugin.md"]:
        parts[1] = f"{fields['name']}.md"
    return Path(*parts)


def _fill(text: str, fields: dict[str, str], where: Path) -> str:
    def field(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in fields:  # a template bug, not the user's
            raise KeyError(f"template {where} uses an unknown field {{{{{key}}}}}")
        return fields[key]

    return _FIELD.sub(field, text)


def scaffold_plugin(
    name: str, directory: str | os.PathLike[str], *, installed: Iterable[str] | None = None
) -> list[Path]:
    """Write a new plugin package called ``name`` into ``directory``.

    The package has a ``pyproject.toml`` with the ``minjiang`` entry point, one
    operator (``<name>.box_mean``: a NumPy reference and a numba kernel), a reader
    (``<name>.npy``), a pipeline (``<name>.smooth``), tests on fixtures made from NumPy,
    and a docs page. Nothing is written unless every check passes.

    Parameters
    ----------
    name
        The plugin's namespace (see :func:`validate_plugin_name`).
    directory
        Where to write it: a folder that does not exist yet, or an empty one.
    installed
        Names taken by installed plugins; default: the ``minjiang`` entry points.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    ParameterError
        For a bad name, or a ``directory`` that is a file or a non-empty folder.
    PluginError
        For a name an installed plugin (or an importable package) already has.
    """
    name = validate_plugin_name(name, installed=installed)
    root = Path(directory)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ParameterError(
            f"{str(root)[-120:]!r} exists and is not an empty folder; give a new folder "
            "(--directory) so that nothing is overwritten"
        )
    fields = plugin_fields(name)
    rendered = [
        (root / _target(rel, fields), _fill((TEMPLATE / rel).read_text(), fields, rel))
        for rel in template_files()
    ]
    written = []
    for path, text in rendered:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written

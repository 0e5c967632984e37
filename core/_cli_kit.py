"""The plugin author's commands: ``minjiang new-plugin``, ``doctor`` and ``validate``.

Registered on the ``minjiang`` typer app by :func:`register` (called from
``core/cli.py``). ``doctor`` and ``validate`` exit with status 1 when they find a
problem (typed errors still exit 2, as every command's do); ``--json`` prints the
findings as one JSON document instead of tables.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

__all__ = ["register"]

_STYLE = {"ok": "green", "info": "cyan", "warning": "yellow", "problem": "red"}


def new_plugin(
    name: str = typer.Argument(
        ..., help="The plugin's namespace, e.g. mylab: its operators are mylab.<name>."
    ),
    directory: Path | None = typer.Option(
        None,
        "--directory",
        "-d",
        help="Where to write the package (new or empty); default ./minjiang-NAME ('-' for '_').",
    ),
) -> None:
    """Write a new plugin package: pyproject with the entry point, an operator (NumPy
    reference + numba kernel), a reader, a pipeline, tests and a docs page."""
    from minjiang.core._scaffold import plugin_fields, scaffold_plugin
    from minjiang.core.cli import console

    target = directory if directory is not None else Path(f"minjiang-{name.replace('_', '-')}")
    written = scaffold_plugin(name, target)
    fields = plugin_fields(name)
    console.print(
        f"wrote {len(written)} files of plugin [bold]{escape(name)}[/] "
        f"(package {escape(fields['dist'])}) into {escape(str(target))}"
    )
    console.print(
        escape(
            f"next: cd {target} && pip install -e '.[test]' && minjiang plugins && "
            f"minjiang validate {name} && python -m pytest"
        )
    )


def doctor(
    store: str | None = typer.Option(
        None, "--store", envvar="MINJIANG_STORE", help="Store root (folder or s3://bucket/prefix)."
    ),
    address: str | None = typer.Option(
        None,
        "--address",
        envvar="RAY_ADDRESS",
        help="A Ray cluster to check (host:port, ray://, http://).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the checks as JSON."),
) -> None:
    """Check the installation: plugins and their API, backends, Ray, GPU and the store.

    Every problem comes with its fix; the exit status is 1 when there is a problem.
    """
    import dataclasses

    from minjiang.core._doctor import doctor as run_doctor
    from minjiang.core.cli import console

    checks = run_doctor(store, address)
    failed = any(c.status == "problem" for c in checks)
    if as_json:
        import minjiang

        doc = {
            "ok": not failed,
            "minjiang": minjiang.__version__,
            "api_version": minjiang.API_VERSION,
            "checks": [dataclasses.asdict(c) for c in checks],
        }
        console.out(json.dumps(doc, indent=2))
    else:
        table = Table(title="minjiang doctor")
        for col in ("area", "check", "status", "detail", "fix"):
            table.add_column(col)
        for c in checks:
            style = _STYLE[c.status]
            table.add_row(
                c.area,
                escape(c.name),
                f"[{style}]{c.status}[/]",
                escape(c.detail),
                escape(c.fix) if c.status in ("warning", "problem", "info") else "",
            )
        console.print(table)
        n = sum(c.status == "problem" for c in checks)
        console.print(
            f"[red]{n} problem{'s' if n != 1 else ''}[/]: see the fix beside each"
            if failed
            else "[green]no problems[/]"
        )
    if failed:
        raise typer.Exit(1)


def validate(
    plugin: list[str] = typer.Argument(None, help="Plugins to check (default: all installed)."),
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
) -> None:
    """Check plugins without running any data: contracts, kernels for the declared
    backends, memory formulas on sample sizes, namespaced names, docs and API range.

    The exit status is 1 when a plugin has a problem (warnings alone exit 0).
    """
    from minjiang.core._validate import validate_plugins
    from minjiang.core.cli import console

    reports = validate_plugins(plugins=plugin or None)
    failed = any(not r.ok for r in reports)
    if as_json:
        console.out(
            json.dumps({"ok": not failed, "plugins": [r.to_json() for r in reports]}, indent=2)
        )
    else:
        for r in reports:
            pkg = f"{r.package} {r.version}" if r.package else "not an installed package"
            status = "[green]ok[/]" if r.ok else "[red]problems[/]"
            console.print(
                f"[bold]{escape(r.plugin)}[/] ({escape(r.module)}, {escape(pkg)}, API "
                f"{escape(r.api_range or 'undeclared')}): {len(r.checked)} checked, {status}"
            )
            if r.findings:
                table = Table(show_header=True, box=None, pad_edge=False)
                for col in ("", "subject", "check", "finding"):
                    table.add_column(col)
                for f in r.findings:
                    table.add_row(
                        f"[{_STYLE[f.severity]}]{f.severity}[/]",
                        escape(f.subject),
                        f.check,
                        escape(f.message),
                    )
                console.print(table)
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``new-plugin``, ``doctor`` and ``validate`` to the ``minjiang`` app."""
    app.command("new-plugin")(new_plugin)
    app.command("doctor")(doctor)
    app.command("validate")(validate)

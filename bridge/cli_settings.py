"""``imaging-bridge settings doc``: the settings reference, generated from the settings models
(:mod:`bridge.settings_reference`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bridge.cli_common import console
from bridge.settings_reference import DEFAULT_OUTPUT, render_reference

settings_app = typer.Typer(no_args_is_help=True,
                           help="The settings: every key, its type, default and variable.")
out = console()
err = console(stderr=True)


@settings_app.command("doc")
def doc(
    output: Annotated[Path, typer.Option(help="where to write")] = DEFAULT_OUTPUT,
    check: Annotated[bool, typer.Option("--check", help="fail if the file is stale")] = False,
) -> None:
    """Write the settings reference (docs/settings-reference.md).

    Every key of every section with its type, default, environment variable and
    description, from bridge/config.py.  With --check: exit status 1 when the file differs
    from what would be written.
    """
    text = render_reference()
    current = output.read_text(encoding="utf-8") if output.exists() else None
    if check:
        if current != text:
            err.print(f"{output} is out of date: run imaging-bridge settings doc", markup=False)
            raise typer.Exit(1)
        out.print(f"{output} is up to date", markup=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    out.print(f"wrote {output} ({len(text.splitlines())} lines)", markup=False)


def register(app: typer.Typer) -> None:
    """Add the ``settings`` command group to the main CLI."""
    app.add_typer(settings_app, name="settings")

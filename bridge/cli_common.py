"""Pieces shared by the ``imaging-bridge`` command modules (options and argument parsing)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bridge.config import Settings, load_settings
from bridge.errors import ConfigError
from bridge.logging import setup_logging

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML config file (else BRIDGE_CONFIG_FILE / env)"),
]


def parse_date(value: str | None) -> date | None:
    """A ``--from``/``--to`` value as a date; a bad one names itself in the error."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from exc


def settings_or_exit(config: Path | None) -> Settings:
    """The settings, with logging set up; exit status 2 naming a configuration error."""
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        Console(stderr=True).print(f"[red]configuration error:[/red] {exc.message}")
        raise typer.Exit(2) from exc
    setup_logging(settings.log)
    return settings

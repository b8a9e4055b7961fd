"""Pieces shared by the ``imaging-bridge`` command modules (options and argument parsing)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from bridge.config import Settings, load_settings
from bridge.errors import ConfigError
from bridge.logging import setup_logging

T = TypeVar("T")

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


def archives_named(archives: Mapping[str, T], archive: str | None) -> list[tuple[str, T]]:
    """``(name, archive)`` for ``--archive`` (every configured one when None); an unknown
    name is a :class:`ConfigError` naming it."""
    names = [archive] if archive else list(archives)
    unknown = [n for n in names if n not in archives]
    if unknown:
        raise ConfigError(f"no archive named {unknown[0]!r}")
    return [(n, archives[n]) for n in names]

"""Pieces shared by the ``imaging-bridge`` command modules (options and argument parsing)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

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

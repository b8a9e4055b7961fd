"""Pieces shared by the ``imaging-bridge`` command modules (options, argument parsing,
settings, the state store and the consoles)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, TypeVar

import typer
import yaml
from rich.console import Console
from rich.text import Text

from bridge.config import Settings, load_settings
from bridge.errors import AuthError, BridgeError, ConfigError, MappingConfigError
from bridge.logging import setup_logging
from bridge.state import StateStore, open_store
from bridge.state.tasks import task_key

T = TypeVar("T")

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", metavar="FILE",
                 help="YAML config file (else BRIDGE_CONFIG_FILE / env)"),
]
FromOpt = Annotated[str | None, typer.Option("--from", metavar="DATE",
                                             help="first StudyDate, YYYY-MM-DD")]
ToOpt = Annotated[str | None, typer.Option("--to", metavar="DATE",
                                           help="last StudyDate, YYYY-MM-DD")]
ArchiveOpt = Annotated[str | None, typer.Option(metavar="NAME", help="only this archive")]

#: what running without any configuration prints: the settings every command needs
NO_CONFIGURATION = """\
no configuration: give the bridge its settings in a YAML file (--config FILE, or \
BRIDGE_CONFIG_FILE=FILE) or as BRIDGE_* environment variables. At least:
  archives[].base_url  the archive's DICOMweb root  (BRIDGE_ARCHIVE__BASE_URL)
  fhir.base_url        the EHR's FHIR R4 base        (BRIDGE_FHIR__BASE_URL)
  state.url            where the state store lives   (BRIDGE_STATE__URL, e.g. \
sqlite:///var/lib/imaging-bridge/state.db)
Every setting, its type, default and variable: docs/settings-reference.md \
(imaging-bridge settings doc)."""


def console(*, stderr: bool = False) -> Console:
    """A console for command output: colour only for the markup we write, and only on a
    terminal (``NO_COLOR`` is honoured); never rich's guesswork highlighting of numbers,
    strings and paths, which put colour codes into every ``sync``/``backfill`` line.  Lines
    are not broken at the terminal's width (a path or UID stays whole for copy and grep)."""
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def plain_console(*, stderr: bool = False) -> Console:
    """A console that never writes colour, even on a terminal: for the commands that run
    under a supervisor (``serve``, ``sync``, ``backfill``), whose output ends up in log
    collectors that store escape codes as they come (``docker run -t``, ``script``)."""
    return Console(stderr=stderr, highlight=False, no_color=True, soft_wrap=True)


def parse_date(value: str | None) -> date | None:
    """A ``--from``/``--to`` value as a date; a bad one names itself in the error."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from exc


def configured(config: Path | None, environ: Mapping[str, str]) -> bool:
    """Whether any configuration was given: a file, or one ``BRIDGE_<section>...`` variable.

    Variables that are no settings (the test tools' ``BRIDGE_HAPI_JAR``) do not count:
    without this check every default applies, and a command creates ``./bridge-state.db``
    and shows its empty tables as if nothing had happened.
    """
    if config is not None or environ.get("BRIDGE_CONFIG_FILE"):
        return True
    sections = set(Settings.model_fields)
    return any(name.upper().startswith("BRIDGE_")
               and name[len("BRIDGE_"):].split("__", 1)[0].lower() in sections
               for name in environ)


def _check_config_file(path: Path | str | None) -> None:
    """A config file that is no YAML mapping as a :class:`ConfigError` naming the file (the
    settings loader lets the YAML parser's exception through: a traceback, not a message)."""
    if path is None or not Path(path).is_file():
        return  # none given, or load_settings names the missing file
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        raise ConfigError(f"{path} is not valid YAML{at}: "
                          f"{getattr(exc, 'problem', None) or exc}") from exc
    if document is not None and not isinstance(document, dict):
        raise ConfigError(f"{path} is not a mapping of settings sections (archives:, fhir:, "
                          f"state:, ...) but a {type(document).__name__}")


def settings_or_exit(config: Path | None) -> Settings:
    """The settings, with logging set up; exit status 2 naming a configuration error, or
    saying which settings are needed when none were given at all."""
    err = console(stderr=True)
    if not configured(config, os.environ):
        err.print(NO_CONFIGURATION, markup=False, soft_wrap=True)
        raise typer.Exit(2)
    try:
        _check_config_file(config or os.environ.get("BRIDGE_CONFIG_FILE") or None)
        settings = load_settings(config)
    except ConfigError as exc:
        err.print(Text.assemble(("configuration error:", "red"), " ", exc.message))
        raise typer.Exit(2) from exc
    setup_logging(settings.log)
    return settings


def _missing_sqlite_file(url: str) -> Path | None:
    """The file of a SQLite ``url`` when it does not exist (None for other databases)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    database = parsed.database
    if not parsed.drivername.startswith("sqlite") or not database or database == ":memory:" \
            or database.startswith("file:"):
        return None
    path = Path(database)
    return None if path.exists() else path


@contextmanager
def reported_errors() -> Iterator[None]:
    """A :class:`BridgeError` as one line ``kind: message`` on stderr and exit status 1 (2
    when it is the configuration's or the credentials' fault), not a traceback."""
    try:
        yield
    except BridgeError as exc:
        console(stderr=True).print(f"{exc.kind}: {exc.message}", markup=False)
        failed_setup = isinstance(exc, AuthError | ConfigError | MappingConfigError)
        raise typer.Exit(2 if failed_setup else 1) from exc


@contextmanager
def existing_store(settings: Settings) -> Iterator[StateStore]:
    """The state store, for commands that only read or requeue what a sync recorded; closed
    at the end, its errors (a database that does not answer) reported as one line.

    A SQLite file that does not exist is an error naming it, not a new empty store: an
    empty table there would claim that nothing failed or warned, when the command only
    looked in the wrong place (a relative ``state.url`` run from another directory).
    """
    missing = _missing_sqlite_file(settings.state.url)
    if missing is not None:
        console(stderr=True).print(
            f"no state store at {missing.resolve()} (state.url {settings.state.url}): "
            "nothing was synced with these settings yet, or state.url names another file",
            markup=False, soft_wrap=True)
        raise typer.Exit(2)
    with reported_errors():
        store = open_store(settings.state.url)
        try:
            yield store
        finally:
            store.close()


def archives_named(archives: Mapping[str, T], archive: str | None) -> list[tuple[str, T]]:
    """``(name, archive)`` for ``--archive`` (every configured one when None); an unknown
    name is a :class:`ConfigError` naming it."""
    names = [archive] if archive else list(archives)
    unknown = [n for n in names if n not in archives]
    if unknown:
        raise ConfigError(f"no archive named {unknown[0]!r}")
    return [(n, archives[n]) for n in names]


def archive_name(settings: Settings, archive: str | None) -> str:
    """``--archive`` checked against the configured archives; without one the default
    archive (``gateway.archive``, else the first).  A :class:`ConfigError` names what is
    wrong."""
    names = [a.name for a in settings.archives]
    if archive is None:
        if not names:
            raise ConfigError("no archive configured")
        return settings.gateway.archive or names[0]
    if archive not in names:
        raise ConfigError(f"no archive named {archive!r} is configured")
    return archive


def retry_failed_study_tasks(settings: Settings, kind: str, uid: str | None,
                             archive: str | None) -> int:
    """Make the failed tasks of ``kind`` due again: every one, or the study ``uid``'s
    (keyed ``<archive>/<uid>``, as the sync's follow-ups are); how many."""
    key = None
    if uid is not None:
        with reported_errors():
            key = task_key(archive_name(settings, archive), uid)
    with existing_store(settings) as store:
        return store.retry_failed_tasks(kind, key)

"""``imaging-bridge migrate``: move the studies of a legacy PACS (DIMSE) into the archive,
study by study, each verified (issue 15, docs/migration.md).

The usual order: ``migrate echo`` (the link), ``migrate inventory`` (one queued task per
study found), ``migrate run`` (drain the queue; any number of processes and machines
sharing the state store), ``migrate status`` while it runs, ``migrate report`` at the
end (every study: state, counts, missing instances, error); ``migrate retry`` puts
failed studies back in the queue.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from bridge.cli_common import (
    ConfigOpt,
    FromOpt,
    ToOpt,
    console,
    parse_date,
    plain_console,
    reported_errors,
    settings_or_exit,
)

migrate_app = typer.Typer(no_args_is_help=True,
                          help="Migrate a legacy PACS (DIMSE) into the archive.")
out = plain_console()
err = plain_console(stderr=True)
report_out = console()

SourceOpt = Annotated[str, typer.Option("--source", metavar="NAME",
                                        help="the legacy source (migration.sources[].name)")]
#: what --from defaults to: before any DICOM study (StudyDate is a DA, PS3.5 6.2)
EARLIEST = date(1900, 1, 1)

if TYPE_CHECKING:
    from bridge.migration.run import MigrationRun
    from bridge.state import StateStore


@migrate_app.command("echo")
def echo(source: SourceOpt, config: ConfigOpt = None) -> None:
    """C-ECHO the legacy source: is it reachable, does it accept our AE title."""
    from bridge.assembly import migration_source
    from bridge.migration.client import LegacySource

    settings = settings_or_exit(config)
    with reported_errors():
        legacy = LegacySource(migration_source(settings, source))
        asyncio.run(legacy.echo())
    out.print(f"{source}: C-ECHO answered")


@migrate_app.command("inventory")
def inventory(source: SourceOpt, from_: FromOpt = None, to: ToOpt = None,
              window_days: Annotated[int, typer.Option(
                  min=1, help="days per C-FIND window before a capped one is split")] = 365,
              config: ConfigOpt = None) -> None:
    """Find the source's studies by C-FIND and queue one task per study not queued yet."""
    from bridge.assembly import migration_source
    from bridge.migration.client import LegacySource
    from bridge.migration.queue import enqueue_inventory
    from bridge.state import open_store

    start = parse_date(from_) or EARLIEST
    end = parse_date(to) or date.today()
    settings = settings_or_exit(config)
    with reported_errors():
        legacy = LegacySource(migration_source(settings, source))
        store = open_store(settings.state.url)
        try:
            counts = asyncio.run(enqueue_inventory(store, legacy, start=start, end=end,
                                                   window_days=window_days))
        finally:
            store.close()
    out.print(f"{source}: found {counts.found} studies ({counts.instances} instances) "
              f"from {start} to {end}: queued {counts.queued}, already queued {counts.known}")


@migrate_app.command("run")
def run(source: SourceOpt,
        workers: Annotated[int | None, typer.Option(
            min=1, help="studies at once (default migration.workers)")] = None,
        config: ConfigOpt = None) -> None:
    """Migrate the source's queued studies until none is due or in progress."""
    from bridge.assembly import migrator_of
    from bridge.migration.engine import run_of
    from bridge.state import open_store

    settings = settings_or_exit(config)

    async def drain() -> None:
        async with migrator_of(settings, source) as migrator:
            run = run_of(store, migrator, settings.migration, workers=workers)
            started = time.monotonic()
            with _progress() as progress:
                bar = progress.add_task(source, total=None, done="", moved="")
                ticking = asyncio.create_task(_tick(progress, bar, store, run, started))
                try:
                    counts = await run.drain()
                finally:
                    ticking.cancel()
                await _show(progress, bar, store, run, started)
        seconds = time.monotonic() - started
        out.print(f"{source}: migrated {counts.migrated} studies this run "
                  f"({counts.instances} instances, {counts.bytes} bytes, {seconds:.1f} s)")

    with reported_errors():
        store = open_store(settings.state.url)
        try:
            asyncio.run(drain())
            states = _state_counts(store, source)
        finally:
            store.close()
    out.print(_states(source, states))
    if states["failed"]:
        raise typer.Exit(1)


def _state_counts(store: StateStore, source: str) -> dict[str, int]:
    """Studies per state (imported here: the room loads pynetdicom and pydicom)."""
    from bridge.migration.report import state_counts

    return state_counts(store, source)


def _progress() -> Progress:
    """Studies settled of all queued (any worker's), instances, GB, rate and ETA."""
    return Progress(TextColumn("{task.description}"), BarColumn(bar_width=16),
                    TextColumn("{task.fields[done]}"), TextColumn("{task.fields[moved]}"),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=err)


async def _show(progress: Progress, bar: TaskID, store: StateStore, run: MigrationRun,
                started: float) -> None:
    states = await asyncio.to_thread(_state_counts, store, run.migrator.source.name)
    settled = states["migrated"] + states["failed"]
    counts = run.counts
    rate = counts.instances / max(time.monotonic() - started, 1e-6)
    progress.update(bar, total=sum(states.values()), completed=settled,
                    done=f"{settled}/{sum(states.values())} studies, "
                         f"{states['failed']} failed",
                    moved=f"{counts.instances} inst, {counts.bytes / 1e9:.2f} GB, "
                          f"{rate:.1f} inst/s")


async def _tick(progress: Progress, bar: TaskID, store: StateStore, run: MigrationRun,
                started: float) -> None:
    while True:
        await _show(progress, bar, store, run, started)
        await asyncio.sleep(1.0)


def _states(source: str, states: dict[str, int]) -> str:
    return f"{source}: " + ", ".join(f"{state} {n}" for state, n in states.items())


@migrate_app.command("status")
def status(source: SourceOpt, config: ConfigOpt = None) -> None:
    """Studies of the source per state (queued, in progress, migrated, failed)."""
    from bridge.cli_common import existing_store
    from bridge.migration.report import state_counts

    settings = settings_or_exit(config)
    with existing_store(settings) as store:
        out.print(_states(source, state_counts(store, source)))


@migrate_app.command("report")
def report(source: SourceOpt,
           format_: Annotated[Literal["csv", "json"], typer.Option(
               "--format", help="csv or json")] = "csv",
           config: ConfigOpt = None) -> None:
    """Every study of the source: state, counts, missing SOP Instance UIDs, error."""
    from bridge.cli_common import existing_store
    from bridge.migration.report import report_csv, report_json, report_rows

    settings = settings_or_exit(config)
    with existing_store(settings) as store:
        rows = list(report_rows(store, source))
    sys.stdout.write(report_csv(rows) if format_ == "csv" else report_json(source, rows)
                     + "\n")


@migrate_app.command("retry")
def retry(source: SourceOpt,
          uid: Annotated[str | None, typer.Argument(help="only this Study Instance UID")]
          = None,
          config: ConfigOpt = None) -> None:
    """Queue the source's failed studies (or one of them) again."""
    from bridge.cli_common import existing_store
    from bridge.migration.study import migration_kind

    settings = settings_or_exit(config)
    with existing_store(settings) as store:
        n = store.retry_failed_tasks(migration_kind(source), uid)
    report_out.print(f"{source}: {n} failed studies queued again")


@migrate_app.command("coercion")
def coercion(file: Annotated[Path, typer.Option(
                 "--file", metavar="FILE", help="a coercion file (mappings/migration.yaml)")],
             source: Annotated[str | None, typer.Option(
                 "--source", metavar="NAME", help="preview this source's rules")] = None,
             instance: Annotated[Path | None, typer.Option(
                 "--instance", metavar="DCM", help="a Part-10 file to preview them on")]
             = None) -> None:
    """Check a coercion file; with --source and --instance, show what it changes in one
    instance (the values before and after; the instance itself is not written)."""
    from bridge.migration.coercion import SourceCoercion
    from bridge.migration.coercion_rules import load_migration_mapping

    with reported_errors():
        mapping = load_migration_mapping(file)
    if source is None or instance is None:
        names = ", ".join(sorted(mapping.sources)) or "none"
        out.print(f"{file}: valid; rules for {len(mapping.sources)} sources ({names})")
        return
    rules = mapping.rules_for(source)
    if rules is None:
        out.print(f"{file}: no rules for source {source!r}: instances are stored as received")
        return
    import pydicom

    with reported_errors():
        ds = pydicom.dcmread(instance)
        changed = SourceCoercion(rules, modifying_system=mapping.modifying_system,
                                 source_of_previous_values=source).coerce(ds)
    if not changed:
        out.print(f"{instance}: unchanged")
        return
    (modified,) = ds.OriginalAttributesSequence[-1].ModifiedAttributesSequence
    for element in modified:
        out.print(f"{element.keyword}: {_shown(element.value, element.VR)} -> "
                  f"{_shown(ds[element.tag].value, element.VR)}", markup=False)


def _shown(value: object, vr: str) -> str:
    if value in (None, "") or (vr == "SQ" and not value):
        return "(absent)"
    if vr == "SQ":
        items = list(value)  # type: ignore[call-overload]
        return f"{len(items)} item(s): " + "; ".join(
            ", ".join(f"{e.keyword}={str(e.value)!r}" for e in item) for item in items)
    return repr(str(value))


def register(app: typer.Typer) -> None:
    """Add the ``migrate`` command group to the main CLI."""
    app.add_typer(migrate_app, name="migrate")

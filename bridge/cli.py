"""``imaging-bridge``: the command line of the product."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Column, Table

from bridge.cli_common import (
    ArchiveOpt,
    ConfigOpt,
    FromOpt,
    ToOpt,
    archives_named,
    console,
    existing_store,
    parse_date,
    plain_console,
    reported_errors,
    settings_or_exit,
)
from bridge.cli_help import HELP_STYLE, HelpGroup

app = typer.Typer(no_args_is_help=True, add_completion=False, **HELP_STYLE,
                  help="Keep a DICOMweb archive and a FHIR R4 EHR in sync.")
failures_app = typer.Typer(no_args_is_help=True, **HELP_STYLE,
                           help="Studies that failed to sync.")
app.add_typer(failures_app, name="failures")
#: serve, sync and backfill run under supervisors that keep what they print: no colour
out = plain_console()
err = plain_console(stderr=True)
#: the reports people read at a terminal (failures): colour where we ask for it
report = console()


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        sys.stdout.write(f"imaging-bridge {version('imaging-fhir-bridge')}\n")
        raise typer.Exit()


@app.callback()
def _main(
    _show_version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")]
    = False,
) -> None:
    """Keep a DICOMweb archive and a FHIR R4 EHR in sync."""

#: exit status of a run that could not work because of its configuration or credentials
#: (as :func:`~bridge.cli_common.settings_or_exit` for invalid settings); 1 is any other error
EXIT_CONFIG = 2


def _run(coro: Any) -> Any:
    with reported_errors():
        return asyncio.run(coro)


def _summary(stats: Any) -> None:
    """The run's figures; then, when nothing could be written because the credentials
    were refused, the reason on stderr and exit status 2 (a cron job must notice)."""
    from bridge.sync.service import nothing_written_reason

    out.print(f"synced {stats.synced}, unchanged {stats.unchanged}, "
              f"retry later {stats.retried}, failed {stats.failed}")
    reason = nothing_written_reason(stats)
    if reason is not None:
        err.print(f"auth: nothing was written: {reason}", markup=False)
        raise typer.Exit(EXIT_CONFIG)


@app.command()
def serve(config: ConfigOpt = None) -> None:
    """Run the service: poller, sync workers and the HTTP API.

    The HTTP API serves the admin routes, and when enabled the gateway, the SMART app, the
    STOW-RS proxy and notifications; with api.admin_port the admin routes get a listener
    of their own.
    """
    from bridge.api.serve import serve as serve_listeners

    settings = settings_or_exit(config)
    status = serve_listeners(settings)
    if status:
        raise typer.Exit(status)


@app.command()
def sync(
    config: ConfigOpt = None,
    once: Annotated[bool, typer.Option("--once", help="one poll, drain, exit")] = False,
) -> None:
    """Poll the archives and sync what is due, once or continuously.

    With --once: one poll, sync everything due, exit; exit status 2 when the FHIR
    server's credentials are refused.
    """
    from bridge.assembly import sync_only
    from bridge.sync.service import check_fhir_credentials, run_service

    settings = settings_or_exit(config)

    async def main() -> Any:
        async with sync_only(settings) as ctx:
            if once:
                await check_fhir_credentials(ctx.fhir)
                results = await ctx.poller.poll_once()
                stats = await ctx.runner.drain()
                for r in results:
                    out.print(f"archive {r.archive}: {r.seen} studies in window, {r.due} due")
                return stats
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            # no scheduled reconciliation here (serve has one): sweep for the studies no
            # poll window finds at the same rate instead
            await run_service(ctx, stop,
                              undated_interval=settings.realtime.reconcile_interval)
            return None

    stats = _run(main())
    if stats is not None:
        _summary(stats)




@app.command()
def backfill(
    config: ConfigOpt = None,
    from_: FromOpt = None,
    to: ToOpt = None,
    archive: ArchiveOpt = None,
    settle: Annotated[float, typer.Option(
        metavar="SECONDS",
        help="seconds to keep waiting for retries and expired leases once nothing is due, "
             "and for the archive to answer again during the scan")
    ] = 120.0,
    undated: Annotated[bool | None, typer.Option(
        "--undated/--no-undated",
        help="also sync the studies outside the date range (StudyDate empty, invalid, "
             "earlier or later); default: on unless --from or --to is given")] = None,
) -> None:
    """Sync an archive's whole history.

    Resumable: run it again after a crash.  Exit status 2 when the FHIR server's
    credentials are refused (nothing can be written).
    """
    from bridge.assembly import sync_only
    from bridge.sync.backfill import DEFAULT_START, BackfillProgress
    from bridge.sync.backfill import backfill as run_backfill
    from bridge.sync.patience import Patience
    from bridge.sync.runner import DrainStats
    from bridge.sync.service import check_fhir_credentials
    from bridge.sync.undated import UndatedResult

    settings = settings_or_exit(config)
    start = parse_date(from_) or DEFAULT_START
    end = parse_date(to) or datetime.now(UTC).date()
    whole = undated if undated is not None else (from_ is None and to is None)

    async def main() -> Any:
        async with sync_only(settings) as ctx:
            await check_fhir_credentials(ctx.fhir)
            named = archives_named(ctx.archives, archive)
            names = [name for name, _ in named]
            clients = [client for _, client in named]
            with Progress(TextColumn("{task.description}"), BarColumn(),
                          TextColumn("{task.completed}/{task.total}"),
                          TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                          TimeRemainingColumn(), console=err) as progress:
                scans = {name: progress.add_task(f"scan {name} (days)", total=None, rate="")
                         for name in names}
                # the sync runs while the scan goes on: its total grows with the scan
                sync_task = progress.add_task("sync", total=None, rate="")
                started = time.monotonic()

                def on_window(name: str, p: BackfillProgress) -> None:
                    progress.update(scans[name], completed=p.days_done, total=p.days_total,
                                    rate=f"{p.studies_marked} due")

                def on_undated(u: UndatedResult) -> None:
                    progress.update(scans[u.archive],
                                    rate=f"outside the dates: {u.seen} seen, {u.marked} due")

                def on_batch(stats: DrainStats) -> None:
                    rate = stats.processed / max(1e-6, time.monotonic() - started)
                    progress.update(sync_task, completed=stats.processed,
                                    total=stats.processed + ctx.store.queue_depth(),
                                    rate=f"{rate:.1f} studies/s")

                result = await run_backfill(
                    ctx.runner, clients, start=start, end=end,
                    window_days=settings.sync.backfill_window_days,
                    adaptive=settings.sync.backfill_adaptive_windows,
                    scan_concurrency=settings.sync.backfill_concurrency,
                    max_idle=settle, undated=whole, patience=Patience(seconds=settle),
                    on_window=on_window, on_batch=on_batch, on_undated=on_undated)
            for u in result.undated:
                out.print(f"archive {u.archive}: {u.seen} studies outside the dates "
                          f"(StudyDate empty, invalid or out of range), {u.marked} due"
                          + ("" if u.complete else
                             "; listing stopped at the archive's result cap"))
            return result.stats

    _summary(_run(main()))


@failures_app.command("list")
def failures_list(
    config: ConfigOpt = None,
    limit: Annotated[int, typer.Option(metavar="N", help="at most this many")] = 100,
) -> None:
    """Studies whose last sync failed, with the reason."""
    with existing_store(settings_or_exit(config)) as store:
        failed = store.failures(limit=limit)
    if not failed:
        report.print("failed studies: none")
        return
    # the UID is what `failures show/retry` need: never cut or wrapped, the message gives way
    study = Column("study", no_wrap=True,
                   min_width=max((len(f.study_uid) for f in failed), default=5))
    kind = Column("kind", no_wrap=True, min_width=max((len(f.kind) for f in failed), default=4))
    table = Table("archive", study, kind, "at", "message")
    for f in failed:
        table.add_row(f.archive, f.study_uid, f.kind, str(f.at), f.message[:120])
    report.print(table)


@failures_app.command("show")
def failures_show(uid: str, config: ConfigOpt = None) -> None:
    """Every failure recorded for a study, with the FHIR server's OperationOutcome."""
    from dataclasses import asdict

    with existing_store(settings_or_exit(config)) as store:
        history = store.failure_history(uid)
    if not history:
        console(stderr=True).print(f"no failures recorded for {uid}", markup=False)
        raise typer.Exit(1)
    sys.stdout.write(json.dumps([asdict(h) for h in history], indent=2, default=str) + "\n")


@failures_app.command("retry")
def failures_retry(
    uid: Annotated[str | None, typer.Argument(help="a StudyInstanceUID")] = None,
    all_: Annotated[bool, typer.Option("--all", help="every failed study")] = False,
    config: ConfigOpt = None,
) -> None:
    """Put failed studies back in the queue."""
    if not uid and not all_:
        raise typer.BadParameter("give a study UID or --all")
    with existing_store(settings_or_exit(config)) as store:
        n = store.retry_failed(uid, all=all_)
    report.print(f"{n} studies due again")


def _register_command_modules() -> None:
    """The command groups in their own modules add themselves (imported here, after ``app``
    exists: they build on it)."""
    from bridge import (
        cli_keys,
        cli_mapping,
        cli_migration,
        cli_realtime,
        cli_record,
        cli_resync,
        cli_settings,
        cli_sharing,
        cli_warnings,
        cli_worklist,
    )

    for module in (cli_mapping, cli_keys, cli_realtime, cli_warnings, cli_resync,
                   cli_migration, cli_settings, cli_worklist, cli_sharing, cli_record):
        module.register(app)
    # every command group lists its commands whole (the modules' own Typers know nothing of
    # the help layout; typer reads this when it builds the click group, at app())
    for group in app.registered_groups:
        group.cls = HelpGroup


_register_command_modules()


def main() -> None:
    app()


if __name__ == "__main__":
    main()

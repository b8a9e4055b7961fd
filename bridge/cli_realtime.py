"""``imaging-bridge reconcile``: report (and with ``--fix`` repair) drift between the archive,
the FHIR server and the state store (issue 5, "Reconciliation")."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from bridge.cli_common import (
    ArchiveOpt,
    ConfigOpt,
    FromOpt,
    ToOpt,
    archives_named,
    console,
    parse_date,
    settings_or_exit,
)
from bridge.errors import BridgeError

out = console()
err = console(stderr=True)


def reconcile_command(
    config: ConfigOpt = None,
    from_: FromOpt = None,
    to: ToOpt = None,
    archive: ArchiveOpt = None,
    fix: Annotated[bool, typer.Option("--fix", help="mark drifted studies due (repair)")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout instead of a table")]
    = False,
) -> None:
    """Report drift between the archive, the FHIR server and the state store.

    Compares the archive's studies (QIDO-RS), our ImagingStudy resources and the state
    store.  Without --from/--to the whole archive is compared.  Exit status 0 when there is
    no drift, 3 when there is (after --fix too: the repairs happen in the sync workers).
    """
    from bridge.assembly import sync_only
    from bridge.sync.reconcile import ReconcileReport, reconcile

    start, end = parse_date(from_), parse_date(to)
    if (start is None) != (end is None):
        raise typer.BadParameter("give both --from and --to, or neither")
    settings = settings_or_exit(config)

    async def main() -> list[ReconcileReport]:
        async with sync_only(settings) as ctx:
            reports = []
            for _name, client in archives_named(ctx.archives, archive):
                reports.append(await reconcile(archive=client, fhir=ctx.fhir, store=ctx.store,
                                               start=start, end=end, fix=fix))
            return reports

    try:
        reports = asyncio.run(main())
    except BridgeError as exc:
        err.print(f"[red]{exc.kind}:[/red] {exc.message}")
        raise typer.Exit(1) from exc
    if as_json:
        sys.stdout.write(json.dumps([r.to_json() for r in reports], indent=2) + "\n")
    else:
        for report in reports:
            _print(report)
    if any(r.drift for r in reports):
        raise typer.Exit(3)


def _print(report: object) -> None:
    from bridge.sync.reconcile import ReconcileReport

    assert isinstance(report, ReconcileReport)
    window = f"{report.start} .. {report.end}" if report.start else "all dates"
    out.print(f"archive [bold]{report.archive}[/bold] ({window}): {report.archive_studies} "
              f"studies in the archive, {report.fhir_studies} ImagingStudy of ours, "
              f"{report.in_flight} in flight")
    if not report.drift:
        out.print("[green]no drift[/green]")
        return
    table = Table("kind", "study", "detail", "ImagingStudy", "fix")
    for d in report.drift:
        table.add_row(d.kind, d.study_uid, d.detail, ", ".join(d.fhir_ids), d.fixed or "")
    out.print(table)
    out.print(", ".join(f"{k}: {v}" for k, v in sorted(report.counts().items())))


def register(app: typer.Typer) -> None:
    """Add ``reconcile`` to the main CLI."""
    app.command("reconcile")(reconcile_command)

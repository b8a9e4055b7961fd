"""``imaging-bridge record``: the longitudinal record's reports and dose (issue 16,
docs/record.md).

* ``record status`` counts the ``record.map`` tasks by state, lists the failed ones with
  their reason and the studies whose latest mapping left something out (warning codes);
* ``record preview FILE.dcm|STUDY_UID`` shows what a report, dose SR or PDF (a Part 10
  file), or a synced study's record (read from the archive, referenced to its ImagingStudy
  in the FHIR server), maps to: resources and warnings as JSON; nothing is written;
* ``record enqueue UID...`` queues studies' record (synced before ``record.enabled``, or
  after a change to the dose rules); ``record run`` runs what is due once, and exits;
  ``record retry`` queues the failed ones again.

``imaging-bridge export --out DIR`` writes the analytics tables (studies, series, reports,
dose; :mod:`bridge.record.tables`) read from the FHIR server (paged searches, or a Bulk
Data ``$export`` with ``--bulk``), as Parquet (pyarrow) or CSV.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from bridge.cli_common import (
    ArchiveOpt,
    ConfigOpt,
    archive_name,
    console,
    existing_store,
    parse_date,
    reported_errors,
    retry_failed_study_tasks,
    settings_or_exit,
)
from bridge.config import Settings
from bridge.errors import ConfigError

out = console()
record_app = typer.Typer(help="Reports and radiation dose of the synced studies "
                              "(DiagnosticReport, Observation).", no_args_is_help=True)

#: the task kind (bridge.state.tasks.RECORD_MAP), repeated so the status commands need not
#: import the room
RECORD_MAP = "record.map"
#: placeholders a file's preview points to (it belongs to no synced study)
PREVIEW_STUDY = {"reference": "ImagingStudy/preview"}
PREVIEW_PATIENT = {"reference": "Patient/preview"}


def _print_json(value: Any) -> None:
    out.print(json.dumps(value, indent=2, ensure_ascii=False), markup=False)


@record_app.command("status")
def status(
    limit: Annotated[int, typer.Option(help="failed and warned studies listed at most")] = 20,
    config: ConfigOpt = None,
) -> None:
    """Record tasks by state; the failed ones with their reason; the studies whose record
    left something out, with the warning codes."""
    settings = settings_or_exit(config)
    with existing_store(settings) as store:
        counts = store.task_counts(RECORD_MAP)
        failed = store.tasks(RECORD_MAP, status="failed", limit=limit)
        done = store.tasks(RECORD_MAP, status="done", limit=10_000)
    out.print(("record enabled" if settings.record.enabled else "record NOT enabled") + ": "
              + ", ".join(f"{state} {counts.get(state, 0)}"
                          for state in ("due", "leased", "done", "failed")))
    for task in failed:
        out.print(f"failed {task.key} (attempts {task.attempts}): {task.last_error}",
                  markup=False)
    warned = [t for t in done if (t.result or {}).get("warning_count")]
    written = sum(len((t.result or {}).get("written", [])) for t in done)
    out.print(f"{written} resources written by the last run of {len(done)} studies; "
              f"{len(warned)} with warnings")
    for task in warned[:limit]:
        codes = sorted({w.get("code", "?") for w in (task.result or {}).get("warnings", [])})
        out.print(f"warned {task.key}: {', '.join(codes)}", markup=False)


def _preview_file(path: Path) -> dict[str, Any]:
    import pydicom

    from bridge.record.rules import load_dose_rules
    from bridge.record.study import map_study_record, record_instances

    ds = pydicom.dcmread(path)
    instances = record_instances([ds.to_json_dict()])
    if not instances:
        raise ConfigError(f"{path} is no report SR, dose SR or encapsulated PDF "
                          f"(SOP Class {ds.get('SOPClassUID', '?')})")
    result = map_study_record(instances, imaging_study=PREVIEW_STUDY,
                              patient=PREVIEW_PATIENT, rules=load_dose_rules())
    return result.to_json()


async def _preview_study(settings: Settings, archive: str, uid: str) -> dict[str, Any]:
    from bridge.assembly import sync_only
    from bridge.record.handler import RecordHandler
    from bridge.record.rules import read_dose_rules

    async with sync_only(settings) as sync:
        handler = RecordHandler(archives=sync.archives, fhir=sync.fhir,
                                rules=read_dose_rules(settings.record.dose_rules_file))
        try:
            instances, context, mapped = await handler.map(archive, uid)
        finally:
            await handler.aclose()
    body: dict[str, Any] = {"instances": [{"kind": i.kind.value, "sop_uid": i.sop_uid}
                                          for i in instances]}
    if instances and context is None:
        body["waiting"] = "the study has no ImagingStudy in the FHIR server yet (sync it)"
    if mapped is not None:
        body.update(mapped.to_json())
    return body


@record_app.command("preview")
def preview(
    what: Annotated[str, typer.Argument(metavar="FILE.dcm|STUDY_UID",
                                        help="a Part 10 file, or a synced study's UID")],
    archive: ArchiveOpt = None,
    config: ConfigOpt = None,
) -> None:
    """What a report, dose SR or encapsulated PDF maps to (nothing is written): the FHIR
    resources and the warnings, as JSON."""
    path = Path(what)
    with reported_errors():
        if path.suffix.lower() in (".dcm", ".dicom") or path.is_file():
            _print_json(_preview_file(path))
            return
        settings = settings_or_exit(config)
        _print_json(asyncio.run(_preview_study(settings, archive_name(settings, archive), what)))


@record_app.command("enqueue")
def enqueue(
    uids: Annotated[list[str], typer.Argument(help="StudyInstanceUIDs")],
    archive: ArchiveOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Queue studies' record (a running serve, or record run, maps them).  For every
    synced study: imaging-bridge resync --all --force (each written study queues it)."""
    settings = settings_or_exit(config)
    with reported_errors():
        name = archive_name(settings, archive)
    with existing_store(settings) as store:
        store.enqueue_tasks(RECORD_MAP, [f"{name}/{uid}" for uid in uids])
    out.print(f"{len(uids)} record tasks queued (archive {name})")


async def _drain(settings: Settings) -> int:
    from bridge.assembly import sync_only
    from bridge.record.handler import RecordHandler
    from bridge.record.rules import read_dose_rules
    from bridge.record.service import record_worker

    async with sync_only(settings) as sync:
        handler = RecordHandler(archives=sync.archives, fhir=sync.fhir,
                                rules=read_dose_rules(settings.record.dose_rules_file))
        try:
            return await record_worker(sync.store, handler, settings.record,
                                       worker_id="cli-record").drain()
        finally:
            await handler.aclose()


@record_app.command("run")
def run(config: ConfigOpt = None) -> None:
    """Map and write the due records once, and exit (serve does this continuously)."""
    settings = settings_or_exit(config)
    with reported_errors():
        ran = asyncio.run(_drain(settings))
    out.print(f"{ran} record tasks run")


@record_app.command("retry")
def retry(
    uid: Annotated[str | None, typer.Argument(help="only this StudyInstanceUID")] = None,
    archive: ArchiveOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Queue the failed record tasks again (all, or one study's)."""
    n = retry_failed_study_tasks(settings_or_exit(config), RECORD_MAP, uid, archive)
    out.print(f"{n} failed record tasks due again")


def export(
    out_dir: Annotated[Path, typer.Option("--out", metavar="DIR",
                                          help="where the tables are written")],
    patient: Annotated[list[str] | None, typer.Option(
        metavar="Patient/ID", help="only this patient's resources (repeatable)")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", metavar="DATE", help="only resources changed on or after this day")] = None,
    csv_: Annotated[bool, typer.Option("--csv", help="CSV even when pyarrow is there")]
    = False,
    bulk: Annotated[bool, typer.Option(
        "--bulk", help="read by a FHIR Bulk Data $export (NDJSON) instead of paged searches")]
    = False,
    bulk_wait: Annotated[float, typer.Option(
        metavar="SECONDS", help="give up (and cancel) a bulk export not complete by then")]
    = 3600.0,
    views: Annotated[Path | None, typer.Option(
        metavar="DIR", help="SQL-on-FHIR ViewDefinitions (*.json) shaping the tables "
        "[default: mappings/record/views]")] = None,
    bulk_poll: Annotated[float, typer.Option(
        metavar="SECONDS", help="ask for a bulk export's status at least this often, "
        "whatever its Retry-After says")] = 300.0,
    config: ConfigOpt = None,
) -> None:
    """Write the imaging record as flat tables (studies, series, reports, dose) for SQL:
    Parquet when pyarrow is installed, else CSV; mappings/record/example_queries.sql has
    example questions.  --bulk reads a FHIR Bulk Data export (the server must offer
    $export) instead of paged searches."""
    settings = settings_or_exit(config)
    day = parse_date(since)

    async def run() -> Any:
        from bridge.fhir.client import FhirClient
        from bridge.record.bulk import BulkExportClient
        from bridge.record.export import export_bulk, export_tables
        from bridge.record.rules import read_dose_rules
        from bridge.record.views import DEFAULT_VIEWS, load_views

        rules = read_dose_rules(settings.record.dose_rules_file)
        shapes = load_views(views or DEFAULT_VIEWS)  # checked before any request
        if bulk:
            async with BulkExportClient(settings.fhir, max_wait=bulk_wait,
                                        max_poll=bulk_poll) as client:
                return await export_bulk(client, out_dir, rules=rules, patients=patient or (),
                                         since=day, parquet=False if csv_ else None,
                                         views=shapes,
                                         progress=lambda text: out.print(
                                             f"export: {text}", markup=False))
        async with FhirClient(settings.fhir) as fhir:
            return await export_tables(fhir, out_dir, rules=rules, patients=patient or (),
                                       since=day, parquet=False if csv_ else None,
                                       views=shapes)

    with reported_errors():
        result = asyncio.run(run())
    out.print(", ".join(f"{name} {n}" for name, n in result.rows.items()) + " rows")
    for path in result.files:
        out.print(str(path), markup=False)


def register(app: typer.Typer) -> None:
    """Add the ``record`` command group and ``export`` to the main CLI."""
    app.add_typer(record_app, name="record")
    app.command("export")(export)

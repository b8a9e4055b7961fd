"""``imaging-bridge worklist``: the Modality Worklist built from the EHR's orders (issue 17).

``worklist list`` reads the orders once and prints what the SCP would serve (and the
orders refused, with the field at fault); ``worklist serve`` runs the SCP, its order
poller and the MPPS reports alone, without the sync and the API (``serve`` runs them too
when ``worklist.enabled``); ``worklist mismatches`` lists the studies performed for an
order of another patient (not linked), ``worklist relink`` tries them again.
"""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Annotated, Any

import typer

from bridge import assembly
from bridge.cli_common import (
    ConfigOpt,
    console,
    existing_store,
    plain_console,
    settings_or_exit,
)
from bridge.config import Settings
from bridge.fhir.client import FhirClient
from bridge.state import open_store
from bridge.worklist.link import WORKLIST_LINK

worklist_app = typer.Typer(no_args_is_help=True,
                           help="The Modality Worklist served from the EHR's orders.")
out = console()


def _row(item: Any) -> dict[str, str]:
    step = (item.get("ScheduledProcedureStepSequence") or [None])[0]
    return {
        "accession": str(item.get("AccessionNumber", "")),
        "patient_id": str(item.get("PatientID", "")),
        "study_uid": str(item.get("StudyInstanceUID", "")),
        "modality": str(step.get("Modality", "")) if step is not None else "",
        "station_ae": str(step.get("ScheduledStationAETitle", "")) if step is not None else "",
        "start": (f"{step.get('ScheduledProcedureStepStartDate', '')} "
                  f"{step.get('ScheduledProcedureStepStartTime', '')}").strip()
        if step is not None else "",
    }


async def _list(settings: Settings) -> dict[str, Any]:
    async with FhirClient(settings.fhir) as fhir:
        service = assembly.worklist_service(settings.worklist, fhir=fhir)
        await service.poller.poll()
    book = service.poller.book
    served = service.poller.status.served
    items = [e for e in book.entries() if e.item is not None]
    return {
        "served": served,
        "scheduled": [{"order": f"ServiceRequest/{e.order_id}", **_row(e.item)}
                      for e in items],
        "refused": [{"order": f"ServiceRequest/{e.order_id}", "field": e.refusal.field,
                     "kind": e.refusal.kind, "reason": e.refusal.reason}
                    for e in book.entries() if e.refusal is not None],
    }


def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    config: ConfigOpt = None,
) -> None:
    """Read the EHR's active orders once and print the worklist items they give (and the
    orders refused, with the field at fault).  Patient names are not printed."""
    settings = settings_or_exit(config)
    listing = asyncio.run(_list(settings))
    if as_json:
        out.print_json(json.dumps(listing))
        return
    for row in listing["scheduled"]:
        out.print(f"{row['order']}  {row['accession']}  {row['modality']} "
                  f"{row['station_ae']}  {row['start']}  {row['study_uid']}", markup=False)
    for row in listing["refused"]:
        out.print(f"{row['order']}  refused  {row['field']}: {row['reason']}", markup=False)
    out.print(f"{len(listing['scheduled'])} scheduled ({listing['served']} in the "
              f"scheduling window), {len(listing['refused'])} refused", markup=False)


async def _serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with open_store(settings.state.url) as store:
        async with FhirClient(settings.fhir) as fhir:
            service = assembly.worklist_service(settings.worklist, fhir=fhir, store=store)
            await service.run(stop)


def serve_command(config: ConfigOpt = None) -> None:
    """Run the worklist SCP (MWL C-FIND, MPPS), its order poller and the MPPS reports to
    the EHR until interrupted (the sync and the API are not started; imaging-bridge
    serve runs the worklist too when it is enabled)."""
    settings = settings_or_exit(config)
    if not settings.worklist.calling_ae_titles:
        plain_console(stderr=True).print(
            "worklist.calling_ae_titles: name the modalities allowed to query", markup=False)
        raise typer.Exit(2)
    wl = settings.worklist
    plain_console().print(f"worklist SCP {wl.ae_title} on {wl.host}:{wl.port}, orders from "
                          f"{settings.fhir.base_url} every {wl.poll_interval:g} s",
                          markup=False)
    asyncio.run(_serve(settings))


def mismatches_command(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    config: ConfigOpt = None,
) -> None:
    """Studies performed for an order of another patient: not linked to the order
    (IHE Patient Information Reconciliation); run worklist relink once corrected."""
    settings = settings_or_exit(config)
    with existing_store(settings) as store:
        failed = store.tasks(WORKLIST_LINK, status="failed", limit=1000)
    rows = [{"study": t.key, "reason": t.last_error or "", "since": t.updated_at.isoformat()}
            for t in failed]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    for row in rows:
        out.print(f"{row['study']}  {row['since']}  {row['reason']}", markup=False)
    out.print(f"{len(rows)} studies not linked to their order", markup=False)


def relink_command(
    study: Annotated[str | None, typer.Argument(
        metavar="ARCHIVE/STUDY_UID", help="one study (default: every mismatch)")] = None,
    config: ConfigOpt = None,
) -> None:
    """Try the link of mismatched studies again (after the patient was reconciled); a
    running serve picks them up."""
    settings = settings_or_exit(config)
    with existing_store(settings) as store:
        n = store.retry_failed_tasks(WORKLIST_LINK, study)
    out.print(f"{n} study links due again", markup=False)


worklist_app.command("list")(list_command)
worklist_app.command("relink")(relink_command)
worklist_app.command("mismatches")(mismatches_command)
worklist_app.command("serve")(serve_command)


def register(app: typer.Typer) -> None:
    """Add the ``worklist`` command group to the main CLI."""
    app.add_typer(worklist_app, name="worklist")

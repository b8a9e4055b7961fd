"""``imaging-bridge sharing``: cross-enterprise image sharing (issue 14, docs/sharing.md).

As the Imaging Document Source (this site publishes):

* ``sharing publish UID...`` queues the publication of studies (``share.publish``,
  marked requested: the way to share a study under the ``on-demand`` policy); with
  ``--now`` the queue is run here too, else a running ``serve`` publishes them;
* ``sharing run`` publishes what is due, once, and exits (for a site without ``serve``);
* ``sharing status`` counts the publications by state and lists the failed ones with
  their reason; ``sharing retry`` queues the failed ones again.

As the Imaging Document Consumer (this site reads the others'):

* ``sharing outside --patient SYSTEM|VALUE`` lists the outside manifests the registry has
  for an affinity-domain patient (ITI-67), and each document it could not read with the
  field at fault.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from bridge.cli_common import (
    ArchiveOpt,
    ConfigOpt,
    FromOpt,
    ToOpt,
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
sharing_app = typer.Typer(help="Cross-enterprise image sharing (IHE XDS-I.b over MHD).",
                          no_args_is_help=True)

#: the task kind, repeated here so the status commands need not import the room
SHARE_PUBLISH = "share.publish"


def _enabled(settings: Settings) -> None:
    if not settings.sharing.enabled or settings.sharing.registry is None:
        raise ConfigError("sharing is not enabled: set sharing.enabled and sharing.registry")


async def _drain(settings: Settings) -> int:
    """Run the due publications once, in this process; how many ran."""
    from bridge.assembly import sharing_publisher, sync_only
    from bridge.sharing.service import publication_worker

    async with sync_only(settings) as sync, sharing_publisher(settings, sync=sync) as pub:
        worker = publication_worker(sync.store, pub, settings.sharing, worker_id="cli-sharing")
        return await worker.drain()


@sharing_app.command("publish")
def publish(
    uids: Annotated[list[str], typer.Argument(help="StudyInstanceUIDs")],
    archive: ArchiveOpt = None,
    now: Annotated[bool, typer.Option("--now", help="publish here, now, then exit")] = False,
    config: ConfigOpt = None,
) -> None:
    """Share studies: queue their publication (requested, so the on-demand policy shares
    them too; the policy's exclusions still apply)."""
    settings = settings_or_exit(config)
    with reported_errors():
        _enabled(settings)
        name = archive_name(settings, archive)
    with existing_store(settings) as store:
        for uid in uids:
            store.enqueue_task(SHARE_PUBLISH, f"{name}/{uid}", payload={"requested": True})
    out.print(f"{len(uids)} publications queued (archive {name})")
    if now:
        with reported_errors():
            ran = asyncio.run(_drain(settings))
        out.print(f"{ran} publications run")
        _status_lines(settings, [f"{name}/{uid}" for uid in uids])


def _status_lines(settings: Settings, keys: list[str]) -> None:
    with existing_store(settings) as store:
        for key in keys:
            task = store.task(SHARE_PUBLISH, key)
            if task is None:
                continue
            result: dict[str, Any] = dict(task.result or {})
            what = (f"shared ({result.get('reason')}) {result.get('document', '')}"
                    if result.get("shared") else f"not shared ({result.get('reason')})")
            out.print(f"{key}: {task.status}: "
                      + (what if task.status == "done" else task.last_error or ""),
                      markup=False)


@sharing_app.command("run")
def run(config: ConfigOpt = None) -> None:
    """Publish the due studies once, and exit (serve does this continuously)."""
    settings = settings_or_exit(config)
    with reported_errors():
        _enabled(settings)
        ran = asyncio.run(_drain(settings))
    out.print(f"{ran} publications run")


@sharing_app.command("status")
def status(
    limit: Annotated[int, typer.Option(help="failed publications listed at most")] = 20,
    config: ConfigOpt = None,
) -> None:
    """Publications by state, and the failed ones with their reason."""
    settings = settings_or_exit(config)
    with existing_store(settings) as store:
        counts = store.task_counts(SHARE_PUBLISH)
        failed = store.tasks(SHARE_PUBLISH, status="failed", limit=limit)
    out.print(", ".join(f"{state} {counts.get(state, 0)}"
                        for state in ("due", "leased", "done", "failed")))
    for task in failed:
        out.print(f"failed {task.key} (attempts {task.attempts}): {task.last_error}",
                  markup=False)


@sharing_app.command("retry")
def retry(
    uid: Annotated[str | None, typer.Argument(help="only this StudyInstanceUID")] = None,
    archive: ArchiveOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Queue the failed publications again (all, or one study's)."""
    n = retry_failed_study_tasks(settings_or_exit(config), SHARE_PUBLISH, uid, archive)
    out.print(f"{n} failed publications due again")


def _identifier(value: str) -> dict[str, str]:
    system, sep, ident = value.partition("|")
    if not sep or not system or not ident:
        raise typer.BadParameter("give the affinity-domain identifier as SYSTEM|VALUE",
                                 param_hint="--patient")
    return {"system": system, "value": ident}


@sharing_app.command("outside")
def outside(
    patient: Annotated[str, typer.Option(
        metavar="SYSTEM|VALUE", help="the patient's identifier in the affinity domain")],
    from_: FromOpt = None,
    to: ToOpt = None,
    modality: Annotated[list[str] | None, typer.Option(
        metavar="CODE", help="only manifests of studies with this modality (repeatable)")]
    = None,
    config: ConfigOpt = None,
) -> None:
    """Outside studies of a patient: the current manifests the registry has (ITI-67),
    and the documents that could not be read, with the field at fault."""
    identifier = _identifier(patient)
    since, until = parse_date(from_), parse_date(to)
    settings = settings_or_exit(config)

    async def find() -> Any:
        from bridge.sharing.consumer import DocumentConsumer

        registry = settings.sharing.registry
        assert registry is not None
        async with DocumentConsumer(registry) as consumer:
            return await consumer.find(identifier, since=since, until=until,
                                       modalities=modality or ())

    with reported_errors():
        _enabled(settings)
        found = asyncio.run(find())
    out.print(f"{len(found.documents)} outside studies, {len(found.problems)} documents "
              "could not be read")
    for doc in found.documents:
        out.print(f"DocumentReference/{doc.id}  study {doc.study_uid}  date "
                  f"{doc.study_date or '?'}  {','.join(doc.modalities) or '-'}  source "
                  f"{doc.source or '?'}", markup=False)
    for problem in found.problems:
        out.print(f"could not be read: {problem.message}", markup=False)


def register(app: typer.Typer) -> None:
    """Add the ``sharing`` command group to the main CLI."""
    app.add_typer(sharing_app, name="sharing")

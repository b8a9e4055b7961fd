"""``imaging-bridge resync``: map synced studies again after a mapping or Endpoint change.

The sync writes a study when the archive says it changed; a change on our side (a new
``mappings/*.yaml``, the gateway or IID switched on, a new default archive) reaches the
studies already in the EHR only when each is next synced.  ``resync`` makes them due now.
Each is mapped again and written only when the resource differs from the last confirmed
write (so resyncing an unchanged mapping costs archive reads, not EHR writes), unless
``--force``: then every one is written, for an EHR whose copies were edited or lost.

The usual loop of an interface team: ``warnings list`` shows e.g. ``unknown-body-part``
with the local term; the term goes into the mapping (``mappings diff --proposed`` to
check); ``resync --code unknown-body-part`` puts exactly those studies through again.
"""

from __future__ import annotations

from typing import Annotated

import typer

from bridge.cli_common import ArchiveOpt, ConfigOpt, console, existing_store, settings_or_exit
from bridge.mapping import WARNING_CODES

out = console()


def resync(
    uids: Annotated[list[str] | None, typer.Argument(help="StudyInstanceUIDs")] = None,
    all_: Annotated[bool, typer.Option("--all", help="every synced study")] = False,
    code: Annotated[str | None, typer.Option(
        metavar="CODE", help="only studies whose latest mapping had this warning code")] = None,
    archive: ArchiveOpt = None,
    force: Annotated[bool, typer.Option(
        help="write every study even if its resource is unchanged")] = False,
    config: ConfigOpt = None,
) -> None:
    """Put synced studies back in the queue to be mapped again.

    A running serve picks them up; or run imaging-bridge sync --once.
    """
    if not uids and not all_ and code is None:
        raise typer.BadParameter("give study UIDs, --code or --all")
    if uids and all_:
        raise typer.BadParameter("give study UIDs or --all, not both")
    if code is not None and code not in WARNING_CODES:
        raise typer.BadParameter(
            f"unknown warning code {code!r}; one of: {', '.join(sorted(WARNING_CODES))}",
            param_hint="--code")
    settings = settings_or_exit(config)
    if archive is not None and archive not in {a.name for a in settings.archives}:
        raise typer.BadParameter(f"no archive named {archive!r} is configured",
                                 param_hint="--archive")
    with existing_store(settings) as store:
        n = store.requeue_synced(uids or None, archive=archive, warning_code=code, force=force)
    out.print(f"{n} synced studies due again (reason resync{', forced write' if force else ''})")


def register(app: typer.Typer) -> None:
    """Add the ``resync`` command to the main CLI."""
    app.command("resync")(resync)

"""Building a source's migration step from its settings, and the room service that runs
every source's worker inside ``serve`` (``migration.run_in_serve``).

The composition root (:mod:`bridge.assembly`) hands in the sub-settings: the source's
entry, the migration section, the archive the studies go to, and the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

from bridge.archive.client import DicomwebClient
from bridge.clock import SYSTEM_CLOCK, Clock
from bridge.errors import ConfigError
from bridge.migration.client import LegacySource
from bridge.migration.coercion import SourceCoercion
from bridge.migration.coercion_rules import load_migration_mapping
from bridge.migration.receiver import MoveReceiver
from bridge.migration.run import MigrationRun, Sleep
from bridge.migration.study import InstanceCoercion, StudyMigrator
from bridge.migration.transfer import DirectMove, Get, MoveToBridge, Transfer
from bridge.realtime.stow_forward import StowForwarder
from bridge.sections.base import ArchiveSettings
from bridge.sections.migration import LegacySourceSettings, MigrationSettings
from bridge.state.store import StateStore

__all__ = ["MigrationService", "archive_of", "coercion_of", "open_migrator", "receiver_of",
           "run_of", "spool_of"]


def spool_of(migration: MigrationSettings, source: str) -> Path:
    """The spool directory of ``source``'s studies."""
    root = migration.spool_dir or Path(tempfile.gettempdir()) / "imaging-bridge-migration"
    return root / source


def coercion_of(migration: MigrationSettings, source: LegacySourceSettings, *,
                clock: Clock = SYSTEM_CLOCK) -> InstanceCoercion | None:
    """``source``'s coercion from ``migration.coercion_file`` (validated here: a bad file
    is a MappingConfigError naming file, line and key); None when it has no rules."""
    if migration.coercion_file is None:
        return None
    mapping = load_migration_mapping(migration.coercion_file)
    rules = mapping.rules_for(source.name)
    if rules is None:
        return None
    return SourceCoercion(rules, modifying_system=mapping.modifying_system,
                          source_of_previous_values=source.ae_title, clock=clock)


def receiver_of(migration: MigrationSettings) -> MoveReceiver | None:
    """The bridge's move destination (not started), when ``migration.receiver`` is set."""
    settings = migration.receiver
    if settings is None:
        return None
    return MoveReceiver(ae_title=settings.ae_title, host=settings.host, port=settings.port)


@contextlib.contextmanager
def _transfer(source: LegacySourceSettings, migration: MigrationSettings,
              receiver: MoveReceiver | None) -> Iterator[Transfer]:
    """``source``'s transfer; for ``c-move`` on ``receiver``, else on a receiver of its
    own, started here and stopped on exit."""
    if source.transfer == "c-get":
        yield Get()
    elif source.transfer == "c-move-direct":
        assert source.move_destination is not None  # the settings check it
        yield DirectMove(destination=source.move_destination)
    elif receiver is not None:
        yield MoveToBridge(receiver, destination=source.move_destination or receiver.ae_title)
    else:
        own = receiver_of(migration)
        if own is None:
            raise ConfigError("migration.receiver is needed by c-move sources")
        with own:
            yield MoveToBridge(own, destination=source.move_destination or own.ae_title)


@contextlib.asynccontextmanager
async def open_migrator(source: LegacySourceSettings, *, migration: MigrationSettings,
                        archive: ArchiveSettings, receiver: MoveReceiver | None = None,
                        clock: Clock = SYSTEM_CLOCK) -> AsyncIterator[StudyMigrator]:
    """The per-study step of ``source`` into ``archive`` (with the source's coercion and
    transfer; ``receiver``: a started move destination to share, for ``c-move``), its
    clients closed on exit."""
    coercion = coercion_of(migration, source, clock=clock)
    with _transfer(source, migration, receiver) as transfer:
        async with DicomwebClient(archive) as client:
            forwarder = StowForwarder(client, timeout=migration.stow_timeout)
            try:
                yield StudyMigrator(source=LegacySource(source), archive=client,
                                    stow=forwarder, spool=spool_of(migration, source.name),
                                    coercion=coercion, chunk=migration.stow_chunk,
                                    transfer=transfer, clock=clock)
            finally:
                await forwarder.aclose()


class MigrationService:
    """Every source's migration worker, run by ``serve`` until it stops."""

    name = "migration"

    def __init__(self, store: StateStore, *, migration: MigrationSettings,
                 archive: ArchiveSettings, worker_id: str | None = None) -> None:
        self.store = store
        self.migration = migration
        self.archive = archive
        self.worker_id = worker_id
        for source in migration.sources:  # the coercion file is validated at start-up
            coercion_of(migration, source)

    async def run(self, stop: asyncio.Event) -> None:
        moving = any(s.transfer == "c-move" for s in self.migration.sources)
        receiver = receiver_of(self.migration) if moving else None
        with receiver or contextlib.nullcontext():
            await asyncio.gather(*(self._source(s, stop, receiver)
                                   for s in self.migration.sources))

    async def _source(self, source: LegacySourceSettings, stop: asyncio.Event,
                      receiver: MoveReceiver | None) -> None:
        async with open_migrator(source, migration=self.migration, archive=self.archive,
                                 receiver=receiver) as migrator:
            await run_of(self.store, migrator, self.migration,
                         worker_id=self.worker_id).run(stop)


def run_of(store: StateStore, migrator: StudyMigrator, migration: MigrationSettings, *,
           workers: int | None = None, worker_id: str | None = None,
           sleep: Sleep = asyncio.sleep) -> MigrationRun:
    """A run of ``migrator``'s source with the section's worker settings (``sleep``: how
    it waits, for a source's window and between polls; tests move a clock instead)."""
    return MigrationRun(store, migrator, workers=workers or migration.workers,
                        lease_seconds=migration.lease_seconds,
                        max_attempts=migration.max_attempts, worker_id=worker_id,
                        sleep=sleep)


def archive_of(archives: Sequence[ArchiveSettings], name: str | None) -> ArchiveSettings:
    """The archive the migration stores into: ``migration.archive``, else the first."""

    if not archives:
        raise ConfigError("migration: no archive is configured to store the studies into")
    if name is None:
        return archives[0]
    for archive in archives:
        if archive.name == name:
            return archive
    raise ConfigError(f"migration.archive: no archive named {name!r} is configured")

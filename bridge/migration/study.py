"""The per-study step of a migration worker: one queued legacy study into the archive,
"migrated" only once verified.

For the study named by a task of kind ``migrate.<source>`` (key: its Study Instance UID):

1. the source's time windows: outside them :class:`SourceClosed` (Waiting: the task is
   due again when the next window opens, the attempt is not counted);
2. the source's own list of the study's instances (C-FIND at IMAGE level), the reference
   the verification compares with; none is :class:`StudyNotAtSource`;
3. the instances-per-second throttle (:class:`~bridge.migration.throttle.InstanceRate`,
   shared by the source's workers) books them, and the step sleeps what it answers;
4. the study's instances fetched by the source's transfer
   (:mod:`bridge.migration.transfer`: C-GET, or C-MOVE to the bridge's receiver) into a
   spool directory of its own (removed afterwards), each instance as the source sent it;
   the coercion (``mappings/migration.yaml``), if the source has any, rewrites an
   instance only when a rule changes it;
5. STOW-RS in chunks; the archive's answer is read per instance (with ``c-move-direct``
   the source sends them to the archive itself: steps 4's spool and 5 do not apply);
6. verification: the archive's SOP Instance UIDs (QIDO-RS) against the source's list.
   Instances still missing are fetched once more (at IMAGE level) and stored; if the
   archive still differs, :class:`StudyIncomplete` names them (a Permanent error: the
   task is dead-lettered and the report lists them).

STOW-RS of an instance the archive already has is harmless, so a step that crashed half
way (its lease expires) simply runs again from the start.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bridge.archive.client import DicomwebClient
from bridge.clock import SYSTEM_CLOCK, Clock
from bridge.errors import ConfigError
from bridge.migration.client import LegacySource
from bridge.migration.errors import SourceClosed, StudyIncomplete, StudyNotAtSource
from bridge.migration.records import InstanceRecord
from bridge.migration.retrieve import ReceivedInstance
from bridge.migration.stow import DEFAULT_CHUNK, InstanceRefusal, stow_study
from bridge.migration.throttle import InstanceRate, seconds_until_open
from bridge.migration.transfer import Get, Transfer
from bridge.migration.verify import StudyVerification, compare_with_archive
from bridge.realtime.stow_forward import StowForwarder

__all__ = ["InstanceCoercion", "StudyMigrator", "TaskLike", "migration_kind"]

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


def migration_kind(source: str) -> str:
    """The task kind of ``source``'s studies in the task queue."""
    return f"migrate.{source}"


class TaskLike(Protocol):
    """What the step reads of a queued task (``bridge.state.tasks.Task``)."""

    @property
    def key(self) -> str: ...


class InstanceCoercion(Protocol):
    """Rewrites one instance on its way in (``bridge.migration.coercion``): returns the
    Part-10 bytes it was given when no rule changes it."""

    def __call__(self, part10: bytes) -> bytes: ...


@dataclass(slots=True)
class _Moved:
    received: int = 0
    stored: int = 0
    coerced: int = 0
    bytes: int = 0
    refused: list[InstanceRefusal] | None = None
    failed_at_source: list[str] | None = None


class StudyMigrator:
    """The handler of a source's migration tasks: ``await migrator(task)`` moves the study
    ``task.key`` and returns the counts the task's result keeps."""

    def __init__(self, *, source: LegacySource, archive: DicomwebClient, stow: StowForwarder,
                 spool: Path, rate: InstanceRate | None = None,
                 coercion: InstanceCoercion | None = None, chunk: int = DEFAULT_CHUNK,
                 transfer: Transfer | None = None, clock: Clock = SYSTEM_CLOCK,
                 sleep: Sleep = asyncio.sleep) -> None:
        if coercion is not None and transfer is not None and not transfer.stores:
            raise ConfigError(f"legacy source {source.name!r}: instances moved straight to "
                              "the archive (c-move-direct) cannot be coerced")
        self.source = source
        self.transfer: Transfer = transfer or Get()
        self.archive = archive
        self.stow = stow
        self.spool = spool
        self.rate = rate or InstanceRate(source.settings.instances_per_second, clock=clock)
        self.coercion = coercion
        self.chunk = chunk
        self._clock = clock
        self._sleep = sleep

    async def __call__(self, task: TaskLike) -> dict[str, Any]:
        return await self.migrate(task.key)

    def seconds_until_open(self) -> float:
        """Seconds until the source may be read (0: now)."""
        return seconds_until_open(self.source.settings, self._clock.now())

    async def migrate(self, study_uid: str) -> dict[str, Any]:
        """Move ``study_uid`` and verify it; the counts, or an error of the tree."""
        wait = self.seconds_until_open()
        if wait > 0:
            raise SourceClosed(f"legacy source {self.source.name!r} is outside its time "
                               f"windows for {wait:.0f} s", retry_after=wait)
        started = time.monotonic()
        listed = await self.source.study_instances(study_uid)
        if not listed:
            raise StudyNotAtSource(f"legacy source {self.source.name!r} lists no instance of "
                                   f"study {study_uid}")
        self.spool.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="study-", dir=self.spool))
        try:
            moved = await self._move(study_uid, listed, folder, whole=True)
            verified = await compare_with_archive(
                self.archive, study_uid, [i.sop_instance_uid for i in listed])
            retried = 0
            if verified.missing:
                missing = set(verified.missing)
                retried = len(missing)
                again = await self._move(study_uid,
                                         [i for i in listed if i.sop_instance_uid in missing],
                                         folder, whole=False)
                verified = await compare_with_archive(
                    self.archive, study_uid, [i.sop_instance_uid for i in listed])
                moved.received += again.received
                moved.stored += again.stored
                moved.coerced += again.coerced
                moved.bytes += again.bytes
                moved.refused = again.refused
                moved.failed_at_source = again.failed_at_source
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if not verified.equal:
            raise StudyIncomplete(study_uid, missing=verified.missing, extra=verified.extra,
                                  reasons=_reasons(moved))
        result = _result(verified, moved, listed, retried, time.monotonic() - started)
        log.info("legacy study migrated", extra={
            "source": self.source.name, "study_uid": study_uid,
            "instances": verified.archive_count, "retried": retried})
        return result

    async def _move(self, study_uid: str, instances: Sequence[InstanceRecord], folder: Path,
                    *, whole: bool) -> _Moved:
        """C-GET ``instances`` (the whole study, or only these), coerce, STOW-RS."""
        delay = self.rate.reserve(len(instances))
        if delay > 0:
            await self._sleep(delay)
        got = await self.transfer.fetch(self.source, instances, whole=whole, folder=folder)
        received = got.received
        moved = _Moved(received=got.sent, failed_at_source=list(got.failed))
        if not self.transfer.stores:
            moved.stored = got.sent
            return moved
        if self.coercion is not None:
            received, moved.coerced = await asyncio.to_thread(_coerce_all, self.coercion,
                                                              received)
        moved.bytes = sum(i.path.stat().st_size if i.path else len(i.data or b"")
                          for i in received)
        if received:
            outcome = await stow_study(self.stow, study_uid, received, chunk=self.chunk)
            moved.stored = len(outcome.stored)
            moved.refused = list(outcome.refused)
        return moved


def _coerce_all(coercion: InstanceCoercion, received: Sequence[ReceivedInstance]
                ) -> tuple[list[ReceivedInstance], int]:
    """Each instance through ``coercion``; a changed one is written back to its spool
    file (or kept in memory); the unchanged ones stay as received, byte for byte."""
    out: list[ReceivedInstance] = []
    changed = 0
    for instance in received:
        original = instance.part10()
        coerced = coercion(original)
        if coerced is original or coerced == original:
            out.append(instance)
            continue
        changed += 1
        if instance.path is not None:
            instance.path.write_bytes(coerced)
            out.append(instance)
        else:
            out.append(ReceivedInstance(instance.sop_instance_uid, instance.sop_class_uid,
                                        data=coerced))
    return out, changed


def _reasons(moved: _Moved) -> str:
    parts = []
    if moved.failed_at_source:
        parts.append(f"the source failed to send {len(moved.failed_at_source)}")
    for refusal in moved.refused or []:
        reason = f"0x{refusal.failure_reason:04X}" if refusal.failure_reason is not None \
            else "no reason"
        parts.append(f"archive refused {refusal.sop_instance_uid} "
                     f"(HTTP {refusal.http_status}, {reason})")
    return "; ".join(parts)


def _result(verified: StudyVerification, moved: _Moved, listed: Sequence[InstanceRecord],
            retried: int, seconds: float) -> dict[str, Any]:
    return {
        "instances": verified.source_count,
        "archive_instances": verified.archive_count,
        "series": len({i.series_uid for i in listed}),
        "received": moved.received,
        "stored": moved.stored,
        "coerced": moved.coerced,
        "retried": retried,
        "bytes": moved.bytes,
        "seconds": round(seconds, 3),
    }

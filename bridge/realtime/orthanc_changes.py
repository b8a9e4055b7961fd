"""Orthanc's REST API as a change source: ``/changes`` pulled with a persisted cursor.

Orthanc logs every change (``NewSeries``, ``StableStudy``, ``Deleted``...) with a sequence
number; ``GET /changes?since=N&limit=M`` answers ``{"Changes": [...], "Done": bool,
"Last": seq}``.  The cursor (``Last``) is saved as the state-store checkpoint
``orthanc-changes:<archive>`` only after the batch's studies are marked due, so a crash
replays a batch rather than losing it (marking due twice is harmless: events coalesce).
On first start the cursor begins at Orthanc's current last change: history is the
backfill's job.

Changes name Orthanc's own ids (SHA-1 based, not DICOM UIDs); the StudyInstanceUID is read
from ``/studies/{id}`` or ``/series/{id}/study``.  A deleted study can no longer be looked
up, so ids seen earlier are remembered (``RealtimeContext.orthanc_ids``); a delete of a
study never seen is left to the scheduled reconciliation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bridge.realtime.context import RealtimeContext
from bridge.realtime.events import EventKind, handle_event
from bridge.realtime.orthanc_api import LEVELS, OrthancApi

log = logging.getLogger(__name__)

#: Orthanc change types that say something about a study's content, and what they mean
CHANGE_EVENTS: dict[str, EventKind] = {
    "NewStudy": EventKind.CREATED,
    "NewSeries": EventKind.UPDATED,
    "StableStudy": EventKind.UPDATED,
    "StableSeries": EventKind.UPDATED,
    "UpdatedAttachment": EventKind.UPDATED,
    "UpdatedMetadata": EventKind.UPDATED,
    "Deleted": EventKind.DELETED,
}


@dataclass(frozen=True, slots=True)
class StudyChange:
    """A change resolved to a study: what happened to which StudyInstanceUID."""

    seq: int | None
    study_uid: str
    event: EventKind


async def resolve_change(
    rt: RealtimeContext, api: OrthancApi, change: dict[str, Any]
) -> StudyChange | None:
    """The study a change is about, or ``None`` for changes that do not concern one."""
    event = CHANGE_EVENTS.get(str(change.get("ChangeType")))
    level = str(change.get("ResourceType", ""))
    orthanc_id = str(change.get("ID", ""))
    seq = change.get("Seq")
    if event is None or level not in LEVELS or not orthanc_id:
        return None
    if event is EventKind.DELETED and level != "Study":
        event = EventKind.UPDATED  # a series or instance left: the study's counts changed
    uid = change.get("StudyInstanceUID")  # our notifier sends it; /changes does not
    if not uid and event is EventKind.DELETED:
        known = rt.orthanc_ids.get(orthanc_id)
        uid = known[1] if known else None
    if not uid:
        uid = await api.study_uid(level, orthanc_id)
    if not uid:
        log.info("Orthanc change names a resource that is gone; left to reconciliation",
                 extra={"archive": api.archive, "orthanc_id": orthanc_id})
        return None
    if level == "Study" and len(rt.orthanc_ids) < 100_000:
        rt.orthanc_ids[orthanc_id] = (api.archive, str(uid))
    return StudyChange(int(seq) if seq is not None else None, str(uid), event)


def checkpoint_name(archive: str) -> str:
    return f"orthanc-changes:{archive}"


class ChangesFeed:
    """Pulls ``/changes`` and marks the studies concerned due."""

    def __init__(self, rt: RealtimeContext, api: OrthancApi, *, interval: float, limit: int
                 ) -> None:
        self.rt = rt
        self.api = api
        self.interval = interval
        self.limit = limit
        self.cursor: int | None = None
        #: when the last poll ended and, if it failed, the error type (for /status)
        self.last_poll: datetime | None = None
        self.last_error: str | None = None
        #: changes read since start
        self.changes_seen = 0

    async def _load_cursor(self) -> int:
        store = self.rt.sync.store
        saved = await asyncio.to_thread(store.get_checkpoint, checkpoint_name(self.api.archive))
        if saved is not None:
            return int(saved)
        last = await self.api.last_seq()
        await asyncio.to_thread(store.set_checkpoint, checkpoint_name(self.api.archive),
                                str(last))
        return last

    async def poll_once(self) -> bool:
        """Process one page of changes; ``True`` when Orthanc has no more for now."""
        if self.cursor is None:
            self.cursor = await self._load_cursor()
        changes, last, done = await self.api.changes(self.cursor, self.limit)
        self.changes_seen += len(changes)
        studies: dict[str, EventKind] = {}
        for change in changes:
            resolved = await resolve_change(self.rt, self.api, change)
            if resolved is not None:
                # within one page the last event of a study wins (created then deleted...)
                studies[resolved.study_uid] = resolved.event
        for uid, event in studies.items():
            await handle_event(self.rt, archive=self.api.archive, study_uid=uid, event=event,
                               source="orthanc-changes")
        if last != self.cursor:
            await asyncio.to_thread(self.rt.sync.store.set_checkpoint,
                                    checkpoint_name(self.api.archive), str(last))
            self.cursor = last
        return done

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                done = await self.poll_once()
                self.last_error = None
            except Exception as exc:  # Orthanc down: keep the cursor, try again later
                log.warning("Orthanc changes poll failed",
                            extra={"archive": self.api.archive, "error_type": type(exc).__name__})
                self.last_error = type(exc).__name__
                done = True
            self.last_poll = datetime.now(UTC)
            if done:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.interval)

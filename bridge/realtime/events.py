"""One place turning a study event (created, updated, deleted) into work for the sync engine.

Used by the webhook and by Orthanc's changes feed.  Events only mark studies due; a delete
is confirmed against the archive by the worker (the study must really be gone, 404 on
WADO-RS metadata, before the delete policy touches anything in the EHR).
"""

from __future__ import annotations

import asyncio
import logging
from enum import StrEnum

from bridge.errors import BridgeError, StudyGone
from bridge.realtime.context import RealtimeContext
from bridge.realtime.metrics import NOTIFICATIONS
from bridge.state.enums import Reason

log = logging.getLogger(__name__)


class EventKind(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


class Outcome(StrEnum):
    QUEUED = "queued"  # marked due (now, or a follow-up for an ongoing burst)
    UNKNOWN_STUDY = "unknown-study"  # recorded and ignored


async def handle_event(
    rt: RealtimeContext,
    *,
    archive: str,
    study_uid: str,
    event: EventKind,
    source: str,
    reason: Reason = Reason.NOTIFICATION,
) -> Outcome:
    """Queue the study for the event; studies neither in the archive nor known are ignored."""
    client = rt.archive(archive)
    extra = {"study_uid": study_uid, "archive": archive, "event": event.value, "source": source}
    if event is EventKind.DELETED:
        known = await asyncio.to_thread(rt.sync.store.get_study, archive, study_uid)
        if known is None:
            log.info("delete event for a study never synced; ignored", extra=extra)
            NOTIFICATIONS.labels(source=source, event=event.value,
                                 outcome=Outcome.UNKNOWN_STUDY.value).inc()
            return Outcome.UNKNOWN_STUDY
    else:
        try:
            await client.study(study_uid)
        except StudyGone:
            log.info("event for a study the archive does not have; ignored", extra=extra)
            NOTIFICATIONS.labels(source=source, event=event.value,
                                 outcome=Outcome.UNKNOWN_STUDY.value).inc()
            return Outcome.UNKNOWN_STUDY
        except BridgeError:
            # the archive is down: queue anyway, the worker retries with backoff
            log.warning("archive unreachable while checking an event; queued anyway",
                        extra=extra)
    await rt.coalescer.touch(archive, study_uid, reason=reason)
    NOTIFICATIONS.labels(source=source, event=event.value, outcome=Outcome.QUEUED.value).inc()
    return Outcome.QUEUED

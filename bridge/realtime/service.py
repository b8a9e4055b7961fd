"""Background tasks of the real-time sources, run in the app's lifespan (serve mode)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from bridge.realtime.context import RealtimeContext
from bridge.realtime.notifications import process_inbox
from bridge.realtime.orthanc_changes import ChangesFeed
from bridge.sync.reconcile import ReconcileReport, reconcile

log = logging.getLogger(__name__)


async def reconcile_all(rt: RealtimeContext, *, fix: bool) -> list[ReconcileReport]:
    """One reconciliation of every archive over the configured StudyDate window."""
    days = rt.settings.reconcile_window_days
    end = datetime.now(UTC).date() + timedelta(days=1)
    start = end - timedelta(days=days + 1) if days else None
    reports = []
    for archive in rt.sync.archives.values():
        reports.append(await reconcile(archive=archive, fhir=rt.sync.fhir, store=rt.sync.store,
                                       start=start, end=end if start else None, fix=fix))
    if fix and any(r.drift for r in reports):
        rt.sync.work.set()
    return reports


async def scheduled_reconcile(rt: RealtimeContext, stop: asyncio.Event) -> None:
    """Low-rate reconciliation with ``--fix``, so a lost notification is repaired unnoticed."""
    interval = rt.settings.reconcile_interval
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
        if stop.is_set():
            return
        try:
            reports = await reconcile_all(rt, fix=True)
        except Exception as exc:  # a server down: try again on the next turn
            log.warning("scheduled reconciliation failed", extra={"error_type": type(exc).__name__})
            rt.last_reconcile, rt.last_reconcile_error = [], type(exc).__name__
        else:
            rt.last_reconcile, rt.last_reconcile_error = reports, None
        rt.last_reconcile_at = datetime.now(UTC)


def start_realtime(rt: RealtimeContext, stop: asyncio.Event, *, background: bool,
                   feed: ChangesFeed | None = None) -> list[asyncio.Task[None]]:
    """The coalescer and the notification processor always; with ``background`` also the
    changes feed (built by the composition root when ``realtime.orthanc_changes`` is set)
    and the scheduled reconciliation."""
    tasks = [asyncio.create_task(rt.coalescer.run(stop), name="coalescer"),
             asyncio.create_task(process_inbox(rt, stop), name="notifications")]
    if not background:
        return tasks
    if feed is not None:
        rt.changes_feed = feed  # what /status reports: the feed is running
        tasks.append(asyncio.create_task(feed.run(stop), name="orthanc-changes"))
    if rt.settings.reconcile_interval > 0:
        tasks.append(asyncio.create_task(scheduled_reconcile(rt, stop), name="reconcile"))
    return tasks

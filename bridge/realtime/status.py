"""The ``realtime`` section of ``GET /status``: what the event sources did since start.

Counts, depths, times and error *types* only: no study UIDs, patient data, URLs (they may
carry credentials) or tokens.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from bridge.errors import ConfigError
from bridge.realtime.context import RealtimeContext
from bridge.realtime.orthanc_changes import checkpoint_name


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def sources(rt: RealtimeContext) -> dict[str, bool]:
    """Which event sources are configured (the STOW proxy refuses all without credentials)."""
    auth = rt.settings.stow_auth
    return {
        "notifications": rt.settings.webhook_secret is not None,
        "stow_proxy": bool(auth.bearer_tokens or auth.basic_users),
        "orthanc_changes": rt.settings.orthanc_changes is not None,
    }


def _outcome(item: dict[str, Any]) -> str:
    return "error" if "error" in item else str(item.get("outcome", "unknown"))


async def realtime_status(rt: RealtimeContext) -> dict[str, Any] | None:
    """The section, or ``None`` when no event source is configured."""
    enabled = sources(rt)
    if not any(enabled.values()):
        return None
    stats = rt.stats
    return {
        "started_at": datetime.fromtimestamp(rt.started_at, UTC).isoformat(),
        "sources": enabled,
        "notifications": {
            "accepted_requests": stats.notifications_accepted,
            "accepted_events": stats.events_accepted,
            "refused": dict(stats.notifications_refused),
            "inbox_depth": rt.inbox.qsize(),
            "inbox_capacity": rt.inbox.maxsize,
            # of the latest processed events (at most RealtimeContext.recent's length)
            "recent_outcomes": dict(Counter(_outcome(item) for item in list(rt.recent))),
        },
        "coalescer": {
            "immediate": rt.coalescer.immediate,
            "follow_ups": rt.coalescer.follow_ups,
            "pending_follow_ups": rt.coalescer.pending,
        },
        "stow_proxy": {
            "enabled": enabled["stow_proxy"],
            "archive": _stow_archive(rt),
            "requests_by_status": dict(stats.stow_requests),
            "uploads_stored": sum(n for status, n in stats.stow_requests.items()
                                  if status in ("200", "202")),
            "studies_queued": stats.stow_studies,
        },
        "orthanc_changes": await _changes(rt),
        "last_reconcile": _reconcile(rt),
    }


def _stow_archive(rt: RealtimeContext) -> str | None:
    try:
        return rt.stow_archive().name
    except ConfigError:  # realtime.stow_archive names no configured archive
        return None


async def _changes(rt: RealtimeContext) -> dict[str, Any] | None:
    settings = rt.settings.orthanc_changes
    if settings is None:
        return None
    feed = rt.changes_feed
    # the saved cursor: what a restart (or another process) resumes from
    saved = await asyncio.to_thread(rt.sync.store.get_checkpoint,
                                    checkpoint_name(settings.archive))
    return {
        "archive": settings.archive,
        "running": feed is not None,
        "cursor": int(saved) if saved is not None else None,
        "last_poll": _iso(feed.last_poll) if feed else None,
        "last_error": feed.last_error if feed else None,
        "changes_seen": feed.changes_seen if feed else 0,
    }


def _reconcile(rt: RealtimeContext) -> dict[str, Any] | None:
    if rt.last_reconcile_at is None:
        return None
    return {
        "at": _iso(rt.last_reconcile_at),
        "error": rt.last_reconcile_error,
        "archives": [
            {
                "archive": r.archive,
                "from": r.start.isoformat() if r.start else None,
                "to": r.end.isoformat() if r.end else None,
                "archive_studies": r.archive_studies,
                "fhir_studies": r.fhir_studies,
                "in_flight": r.in_flight,
                "drift_counts": r.counts(),
            }
            for r in rt.last_reconcile
        ],
    }

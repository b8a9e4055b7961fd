"""What the real-time routes and tasks share: the sync context, the coalescer, the caches,
and the clients of the archives' Orthanc REST APIs and of the STOW archive.

A plain bundle: the composition root (:mod:`bridge.assembly`) builds every part, passes it
in, and closes the clients it built; nothing here is created on first use."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from bridge.archive.client import DicomwebClient
from bridge.config import RealtimeSettings
from bridge.errors import ConfigError
from bridge.realtime.coalesce import Coalescer
from bridge.realtime.orthanc_api import OrthancApi
from bridge.realtime.signing import ReplayCache
from bridge.realtime.stats import RealtimeStats
from bridge.realtime.stow_forward import StowForwarder
from bridge.sync.reconcile import ReconcileReport
from bridge.sync.service import SyncContext


class FeedStatus(Protocol):
    """What /status reads of a running change feed
    (:class:`bridge.realtime.orthanc_changes.ChangesFeed`)."""

    @property
    def last_poll(self) -> datetime | None: ...

    @property
    def last_error(self) -> str | None: ...

    @property
    def changes_seen(self) -> int: ...


@dataclass
class RealtimeContext:
    sync: SyncContext
    settings: RealtimeSettings
    coalescer: Coalescer
    replays: ReplayCache
    #: Orthanc public id -> (archive, StudyInstanceUID), so a "Deleted" change naming only
    #: the Orthanc id can still be resolved (Orthanc forgets the study once deleted)
    orthanc_ids: dict[str, tuple[str, str]] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)
    #: accepted notifications waiting to be processed: (event object, archive header)
    inbox: asyncio.Queue[tuple[dict[str, Any], str | None]] = field(
        default_factory=lambda: asyncio.Queue(maxsize=10_000))
    #: outcomes of the latest notifications (what was queued, what was ignored and why)
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=500))
    #: Orthanc's REST API behind each configured archive (for changes and id lookups)
    orthanc: dict[str, OrthancApi] = field(default_factory=dict)
    #: the streaming client of the STOW archive; None when ``realtime.stow_archive`` names
    #: no configured archive
    stow: StowForwarder | None = None
    #: reports of the last scheduled reconciliation (for /status and tests)
    last_reconcile: list[ReconcileReport] = field(default_factory=list)
    #: when the last scheduled reconciliation ended, and its error type if it failed
    last_reconcile_at: datetime | None = None
    last_reconcile_error: str | None = None
    #: the Orthanc /changes poller, when it runs (serve mode with realtime.orthanc_changes)
    changes_feed: FeedStatus | None = None
    stats: RealtimeStats = field(default_factory=RealtimeStats)

    def archive(self, name: str | None) -> DicomwebClient:
        """The named archive, or the first configured one."""
        if name is None:
            return next(iter(self.sync.archives.values()))
        found = self.sync.archives.get(name)
        if found is None:
            raise ConfigError(f"no archive named {name!r} is configured")
        return found

    def stow_archive(self) -> DicomwebClient:
        return self.archive(self.settings.stow_archive)

    def orthanc_api(self, archive: str) -> OrthancApi:
        """Orthanc's REST API behind the named archive (for changes and id lookups)."""
        api = self.orthanc.get(archive)
        if api is None:
            raise ConfigError(f"no archive named {archive!r} is configured")
        return api

    def stow_forwarder(self) -> StowForwarder:
        """The streaming client of the STOW archive."""
        if self.stow is None:
            self.stow_archive()  # raises the ConfigError naming the unknown archive
            raise ConfigError("no STOW archive client was built")
        return self.stow

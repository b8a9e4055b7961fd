"""What the real-time routes and tasks share: the sync context, the coalescer, the caches."""

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
    _orthanc: dict[str, OrthancApi] = field(default_factory=dict)
    _stow: StowForwarder | None = None
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
        api = self._orthanc.get(archive)
        if api is None:
            changes = self.settings.orthanc_changes
            url = changes.url if changes is not None and changes.archive == archive else None
            api = OrthancApi(self.archive(archive), url=url)
            self._orthanc[archive] = api
        return api

    def stow_forwarder(self) -> StowForwarder:
        """The streaming client of the STOW archive (created on first use)."""
        if self._stow is None:
            self._stow = StowForwarder(self.stow_archive(), timeout=self.settings.stow_timeout)
        return self._stow

    async def aclose(self) -> None:
        if self._stow is not None:
            await self._stow.aclose()
            self._stow = None
        for api in self._orthanc.values():
            await api.aclose()
        self._orthanc.clear()

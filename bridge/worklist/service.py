"""The worklist's long-running part for ``serve``: the SCP listening (worklist C-FIND and,
with a state store, MPPS), the order poller reading the EHR every ``interval`` seconds, and
the worker reporting MPPS to the EHR (``worklist.mpps`` tasks), until asked to stop.

A failed poll (the EHR down, a refused search) is logged and counted; the SCP keeps
serving the last list it had (issue 17, "the EHR down: the worklist keeps serving what it
has and shows its age").
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bridge.errors import BridgeError
from bridge.sections.base import InboundAuthSettings
from bridge.sync.tasks_worker import TaskWorker
from bridge.worklist.poller import OrderPoller
from bridge.worklist.scp import WorklistScp
from bridge.worklist.ups_book import UpsWorklist

logger = logging.getLogger(__name__)


@dataclass
class WorklistService:
    """A :class:`bridge.assembly.RoomService`: the SCP and its order poller."""

    scp: WorklistScp
    poller: OrderPoller
    interval: float
    #: reports MPPS instances to the EHR (None: no MPPS SCP)
    reporter: TaskWorker | None = None
    #: links synced studies to their orders (None: not enabled)
    linker: TaskWorker | None = None
    #: the UPS-RS worklist over the same items (None: no MPPS store to keep states in)
    ups: UpsWorklist | None = None
    #: who may call the UPS-RS routes (``worklist.ups_auth``)
    ups_auth: InboundAuthSettings = field(default_factory=InboundAuthSettings)
    #: who may POST the EHR's order notifications (``worklist.notification_auth``)
    notification_auth: InboundAuthSettings = field(default_factory=InboundAuthSettings)
    #: creates the EHR's rest-hook Subscription when absent (None: ``worklist.subscribe`` off)
    subscribe: Callable[[], Awaitable[str]] | None = None
    name: str = "worklist"
    #: set by :meth:`notify`: the loop polls now instead of at the end of its interval
    _due: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    notifications: int = 0

    def notify(self) -> None:
        """An order changed in the EHR (a FHIR R4 rest-hook Subscription notification):
        poll now.  Notifications during a poll coalesce into one poll after it; the
        notification only marks the poll due, the poll reads what changed."""
        self.notifications += 1
        self._due.set()

    def status(self, now: dt.datetime | None = None) -> dict[str, Any]:
        """What ``/status`` can show of the worklist: the list's age (seconds since the
        EHR last confirmed it; it keeps being served while the EHR is down), the last
        poll error, and the counts of orders scheduled, served and refused by field."""
        st = self.poller.status
        now = now or dt.datetime.now(dt.UTC)
        return {"age_seconds": st.age(now), "last_success": st.last_success.isoformat()
                if st.last_success else None, "last_error": st.last_error,
                "polls": st.polls, "failed_polls": st.failures, "scheduled": st.scheduled,
                "served": st.served, "refused": dict(st.refused),
                "notifications": self.notifications}

    async def poll_once(self) -> None:
        """One poll whose failure is logged, not raised."""
        try:
            await self.poller.poll()
        except BridgeError as exc:
            logger.warning("worklist poll failed; serving the last list",
                           extra={"error_type": type(exc).__name__})

    async def _wait(self, stop: asyncio.Event) -> None:
        """Until ``stop``, a notification, or the poll interval elapsed."""
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._due.wait())]
        try:
            await asyncio.wait(waits, timeout=self.interval,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*waits, return_exceptions=True)

    async def run(self, stop: asyncio.Event) -> None:
        # the first list before the first association: a modality asking at start-up
        # gets the orders, not an empty worklist
        await self.poll_once()
        if self.subscribe is not None:
            try:
                await self.subscribe()
            except BridgeError as exc:  # polling still serves; notifications are a bonus
                logger.warning("worklist subscription not created; polling only",
                               extra={"error_type": type(exc).__name__})
        await asyncio.to_thread(self.scp.start)
        logger.info("worklist SCP listening", extra={"port": self.scp.port})
        workers_stop = asyncio.Event()  # ours: the app's stop is not ours to set
        workers = [asyncio.create_task(w.run(workers_stop))
                   for w in (self.reporter, self.linker) if w is not None]
        try:
            while not stop.is_set():
                await self._wait(stop)
                if not stop.is_set():
                    self._due.clear()
                    await self.poll_once()
        finally:
            await asyncio.to_thread(self.scp.stop)
            workers_stop.set()
            await asyncio.gather(*workers)

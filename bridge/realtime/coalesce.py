"""Coalescing of study events: one immediate sync, then one follow-up after a quiet period.

Issue 5, "Coalescing": the first event of a burst makes the study due *at once*, so it
appears in the EHR within seconds with the counts it has then; later events of the burst
only push back a follow-up, which makes the study due once no event came for
``quiet_period`` seconds (or ``max_coalesce`` seconds after the burst began, so a study
receiving a continuous stream of series still gets synced).  There is no wait for the
archive's "stable study" on the critical path.

The state store already merges concurrent marks into one due row; what it cannot hold is
a *second*, later due time for a study that is due now, hence this small in-memory timer.
If the process dies with follow-ups pending, the poller's fingerprint comparison and the
scheduled reconciliation find the stale counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from bridge.state import StateStore
from bridge.state.enums import Reason
from bridge.sync.signal import WorkSignal

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (archive, study_uid)


@dataclass
class _Burst:
    first: float
    last: float
    reason: Reason


class Coalescer:
    """Marks studies due for the event sources and wakes the workers."""

    def __init__(
        self,
        store: StateStore,
        *,
        wake: WorkSignal | asyncio.Event,
        quiet_period: float,
        max_coalesce: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.wake = wake
        self.quiet_period = quiet_period
        self.max_coalesce = max_coalesce
        self._clock = clock
        self._bursts: dict[Key, _Burst] = {}
        self._changed = asyncio.Event()
        self.immediate = 0
        self.follow_ups = 0

    @property
    def pending(self) -> int:
        """Studies with a follow-up sync still to come."""
        return len(self._bursts)

    async def touch(self, archive: str, study_uid: str, *, reason: Reason) -> bool:
        """Record an event for the study; ``True`` if it was made due at once."""
        key = (archive, study_uid)
        now = self._clock()
        burst = self._bursts.get(key)
        if burst is not None:
            burst.last = now
            burst.reason = reason
            return False
        await asyncio.to_thread(self.store.mark_due, archive, study_uid, reason=reason)
        self.immediate += 1
        self.wake.set()
        if self.quiet_period > 0:
            self._bursts[key] = _Burst(first=now, last=now, reason=reason)
            self._changed.set()
        return True

    def _deadline(self, burst: _Burst) -> float:
        return min(burst.last + self.quiet_period, burst.first + self.max_coalesce)

    async def flush(self, *, force: bool = False) -> int:
        """Make due every study whose follow-up time has come (all with ``force``)."""
        now = self._clock()
        ready = [k for k, b in self._bursts.items() if force or self._deadline(b) <= now]
        for key in ready:
            burst = self._bursts.pop(key)
            await asyncio.to_thread(self.store.mark_due, key[0], key[1], reason=burst.reason)
        if ready:
            self.follow_ups += len(ready)
            self.wake.set()
        return len(ready)

    async def run(self, stop: asyncio.Event) -> None:
        """Issue follow-ups as their quiet periods end, until ``stop``."""
        while not stop.is_set():
            self._changed.clear()
            try:
                await self.flush()
            except Exception:  # the store may be briefly down: try again on the next turn
                log.exception("follow-up marking failed; retrying")
            timeout = 1.0
            if self._bursts:
                nearest = min(self._deadline(b) for b in self._bursts.values())
                timeout = max(0.01, min(timeout, nearest - self._clock()))
            waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(self._changed.wait())]
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED), timeout
                    )
            finally:
                for w in waiters:
                    w.cancel()

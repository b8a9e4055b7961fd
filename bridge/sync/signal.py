"""The one "there is work" signal of a process.

Every source that marks studies due (the poller, the coalescer of the real-time sources,
the undated sweep, the scheduled reconciliation) sets it; the drain loops clear it before
they claim and sleep on it when nothing is due, so a mark made during a claim is never
lost.  The composition root creates one and hands it to each of them.
"""

from __future__ import annotations

import asyncio


class WorkSignal(asyncio.Event):
    """Set: studies were marked due since the drain loops last looked."""


class FollowUpSignals:
    """One signal per follow-up task kind, all set when the sync queues follow-ups.

    Each room's task worker clears its own before it claims and waits on it: with one
    signal shared by every room, the room that cleared it first would leave the others
    asleep until their poll interval (``sharing.worker.poll_interval``,
    ``record.worker.poll_interval``).
    """

    def __init__(self) -> None:
        self._signals: dict[str, WorkSignal] = {}

    def of(self, kind: str) -> WorkSignal:
        """The signal the worker of ``kind`` waits on."""
        return self._signals.setdefault(kind, WorkSignal())

    def set(self) -> None:
        """Follow-up tasks were queued: wake every room's worker."""
        for signal in self._signals.values():
            signal.set()

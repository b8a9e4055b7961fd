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

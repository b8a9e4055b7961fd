"""Waiting out an archive outage during a scan, as the drain waits out one during a sync.

A backfill's QIDO scan used to stop at the first :class:`~bridge.errors.Outage` answer
(connection refused, 503): a restart of the archive of a few seconds ended the whole command
with status 1, while the drain next to it simply deferred its studies and went on.  A scan
query is now tried again with backoff (:func:`~bridge.sync.backoff.retry_delay`, honouring
Retry-After, RFC 9110 10.2.3) for as long as the outage lasts, up to ``seconds`` since that
query was first tried; only then is the error raised; so are
:class:`~bridge.errors.Retryable` ones.  Permanent errors (a 4xx) and a refused credential
(:class:`~bridge.errors.AuthError`, waiting for an administrator) are raised at once:
waiting here would not change them.

The clock and the sleep are injected, so tests advance time instead of sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from bridge.errors import Outage, Retryable
from bridge.sync.backoff import retry_delay

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Patience:
    """How long, and how, a scan query is retried while the archive is unavailable."""

    #: give up once a query has been failing this long (seconds since its first attempt)
    seconds: float = 120.0
    base: float = 0.5
    cap: float = 10.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    async def call(self, query: Callable[[], Awaitable[T]], *, archive: str) -> T:
        """``await query()``, retried on outages and :class:`Retryable` errors within the
        budget."""
        started = self.clock()
        attempt = 0
        while True:
            try:
                return await query()
            except (Outage, Retryable) as exc:
                attempt += 1
                left = self.seconds - (self.clock() - started)
                if left <= 0:
                    raise
                delay = min(left, retry_delay(attempt, base=self.base, cap=self.cap,
                                              retry_after=exc.retry_after))
                log.warning("archive query failed during the scan; waiting to retry",
                            extra={"archive": archive, "error_type": exc.kind,
                                   "attempt": attempt, "delay": round(delay, 1)})
                await self.sleep(delay)

"""A token bucket per client (the second line in front of ``GET /smart/launch``, after the
bounded pending-launch store of :mod:`smart_app.pending`).

Each client may start ``rate`` launches per minute, in bursts of as many; a browser's real
launch is one request, so only a flood is refused (429 with Retry-After, RFC 6585 4) before
any discovery request or row.  The buckets live in this process (one limit per worker, a
second line, not an exact one) and at most ``max_clients`` are remembered, least recently
seen dropped first, so the limiter itself cannot be grown without bound.  A bucket refills
completely in a minute, so one untouched for a minute is forgotten (a
:class:`bridge.cache.TtlCache` of a minute: a forgotten bucket is a full one).  The client is
the connection's address: behind a reverse proxy, run uvicorn with ``--proxy-headers`` and
``--forwarded-allow-ips`` so that is the browser's address, not the proxy's.
"""

from __future__ import annotations

import math
import threading

from bridge.cache import TtlCache
from bridge.clock import SYSTEM_CLOCK, Clock

#: seconds a bucket takes to refill from empty (``rate_per_minute`` at the minute's rate)
_REFILL = 60.0


class RateLimiter:
    """``allow(client)``: 0 when the request may go on, else the seconds to wait."""

    def __init__(self, *, rate_per_minute: int, max_clients: int = 10_000,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        if rate_per_minute < 1:
            raise ValueError("rate_per_minute must be at least 1")
        self.capacity = float(rate_per_minute)
        self._per_second = rate_per_minute / _REFILL
        self._clock = clock
        #: client -> (tokens left, when they were counted)
        self._buckets: TtlCache[str, tuple[float, float]] = TtlCache(
            ttl=_REFILL, maxsize=max_clients, clock=clock)
        self._lock = threading.Lock()

    def allow(self, client: str) -> int:
        now = self._clock.monotonic()
        with self._lock:
            tokens, seen = self._buckets.get(client) or (self.capacity, now)
            tokens = min(self.capacity, tokens + (now - seen) * self._per_second)
            wait = 0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = max(1, math.ceil((1.0 - tokens) / self._per_second))
            self._buckets.put(client, (tokens, now))
            return wait

    def __len__(self) -> int:
        return len(self._buckets)

"""Retry delays: exponential backoff with jitter, never shorter than the server asked."""

from __future__ import annotations

import random


def retry_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before attempt ``attempt + 1``.

    ``base * 2**(attempt-1)`` capped at ``cap``, with "full jitter" between 50% and 100% so
    that studies failed by one outage do not all come back in the same second; a
    Retry-After from the server (RFC 9110 10.2.3) is a floor.
    """
    r: random.Random = rng or random.Random()
    exp: float = min(cap, base * 2.0 ** max(0, attempt - 1))
    delay: float = exp * (0.5 + r.random() / 2)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay

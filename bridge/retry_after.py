"""The ``Retry-After`` response header (RFC 9110 10.2.3), read once for every HTTP client.

``Retry-After = HTTP-date / delay-seconds``: a number of seconds to wait, or the date after
which to try again.  The archive client, the FHIR client and the gateway's proxy all read
it here, so a server that answers 429/503 with a date is honoured the same way everywhere.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

#: RFC 9110 10.2.3 delay-seconds is ``1*DIGIT``; a decimal fraction is accepted too, as
#: the clients did before (some servers send "1.5")
_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait that ``value`` asks for, or ``None`` when absent or unreadable.

    A date in the past gives ``0.0``.  ``now`` (timezone-aware) is the moment the delay of
    an HTTP-date is counted from; the current time when not given.
    """
    if value is None:
        return None
    text = value.strip()
    if _SECONDS.fullmatch(text):
        seconds = float(text)
        return seconds if math.isfinite(seconds) else None
    try:
        # RFC 9110 5.6.7 HTTP-date: IMF-fixdate, or the obsolete RFC 850 / asctime forms
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 5.6.7: an HTTP-date is always GMT
        when = when.replace(tzinfo=UTC)
    delay = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, delay)


def retry_after(headers: Mapping[str, str], *, now: datetime | None = None) -> float | None:
    """:func:`parse_retry_after` of the ``Retry-After`` header in ``headers``."""
    return parse_retry_after(headers.get("Retry-After"), now=now)

"""HMAC-SHA256 signatures of notification requests, with replay protection.

The sender sends two headers::

    X-Bridge-Timestamp: <unix seconds>
    X-Bridge-Signature: sha256=<hex of HMAC-SHA256(secret, timestamp + "." + body)>

Signing the timestamp with the body binds them: a captured request cannot be replayed with
a fresh timestamp.  A timestamp outside ``tolerance`` seconds of our clock is refused, and a
signature already seen within that window is refused as a replay (the same scheme as
Stripe's and Slack's webhooks).  Comparison is constant-time (``hmac.compare_digest``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
from typing import Protocol

from bridge.cache import TtlCache
from bridge.clock import SYSTEM_CLOCK, Clock
from bridge.errors import Permanent

TIMESTAMP_HEADER = "X-Bridge-Timestamp"
SIGNATURE_HEADER = "X-Bridge-Signature"
_PREFIX = "sha256="
#: whole unix seconds in ASCII digits; 12 digits reach the year 33658
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


class SignatureError(Permanent):
    """The request is not signed, wrongly signed, stale or a replay; the message says which
    (401: the sender signs again, never the same request)."""

    kind = "signature"
    http_status: int = 401


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Bridge-Signature`` value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return _PREFIX + digest.hexdigest()


def parse_timestamp(value: str) -> int:
    """``X-Bridge-Timestamp`` as whole unix seconds; :class:`SignatureError` otherwise.

    Strict on purpose: ``float()`` takes ``nan`` and ``inf``, and every comparison with NaN
    is false, so a NaN timestamp would never be stale; ``int()`` takes signs, blanks,
    underscores and non-ASCII digits, none of which a sender produces.
    """
    if not _UNIX_SECONDS.fullmatch(value):
        raise SignatureError(f"{TIMESTAMP_HEADER} must be whole unix seconds (ASCII digits)")
    return int(value)


class ReplayedSignature(SignatureError):
    """The signature was already used within the tolerance window (by any process)."""

    kind = "replayed-signature"


class ReplayCache(Protocol):
    """Memory of the signatures accepted within the tolerance window.

    The app uses :class:`bridge.realtime.replays.StoreReplayCache`, kept in the state store
    so that processes sharing the store refuse each other's replays;
    :class:`MemoryReplayCache` is one process's memory (tests, tools).  ``first_time`` may
    do blocking I/O: async callers run :func:`verify_signature` in a thread.
    """

    def first_time(self, signature: str) -> bool:
        """Remember ``signature`` (hex); ``False`` if it was already seen within the window."""
        ...


class MemoryReplayCache:
    """Signatures seen within the tolerance window by this process only.

    Unbounded on purpose: forgetting a signature still inside its window would let it be
    replayed, so only expired ones are dropped (all of them, once more than 1024 are held).
    """

    def __init__(self, *, window: float, clock: Clock = SYSTEM_CLOCK) -> None:
        self._seen: TtlCache[str, bool] = TtlCache(ttl=replay_ttl(window), maxsize=None,
                                                   clock=clock)
        self._lock = threading.Lock()

    def first_time(self, signature: str) -> bool:
        with self._lock:
            if len(self._seen) > 1024:
                self._seen.purge()
            if self._seen.get(signature):
                return False
            self._seen.put(signature, True)
            return True


def replay_ttl(tolerance: float) -> float:
    """How long a used signature must be remembered: twice the tolerance.

    A timestamp is accepted from ``tolerance`` seconds before it to ``tolerance`` after, so
    a signature first used at the earliest moment stays valid ``2 * tolerance`` longer.
    """
    return 2 * tolerance


def check_headers(
    *, timestamp: str | None, signature: str | None, tolerance: float,
    now: float | None = None,
) -> tuple[str, str]:
    """The two header values; :class:`SignatureError` unless both are present, well formed
    and the timestamp is within ``tolerance`` of ``now``.

    Needs no body: the receiver runs it before reading one, so an unsigned or stale
    request is refused on its headers alone.
    """
    if not timestamp or not signature:
        missing = [h for h, v in ((TIMESTAMP_HEADER, timestamp), (SIGNATURE_HEADER, signature))
                   if not v]
        raise SignatureError(f"missing header {' and '.join(missing)}")
    sent_at = parse_timestamp(timestamp)
    if not signature.startswith(_PREFIX):
        raise SignatureError(f"{SIGNATURE_HEADER} must be 'sha256=<hex>'")
    current = SYSTEM_CLOCK.time() if now is None else now
    if abs(current - sent_at) > tolerance:
        raise SignatureError(
            f"timestamp is {current - sent_at:+.0f} s off (tolerance {tolerance:.0f} s)"
        )
    return timestamp, signature


def verify_signature(
    *,
    secret: bytes,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    tolerance: float,
    replays: ReplayCache,
    now: float | None = None,
) -> None:
    """Raise :class:`SignatureError` unless the request is fresh, authentic and new.

    :class:`ReplayedSignature` for a replay; :class:`bridge.state.StateUnavailable` if the
    replay memory is in a state store that does not answer.
    """
    timestamp, signature = check_headers(timestamp=timestamp, signature=signature,
                                         tolerance=tolerance, now=now)
    expected = sign(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        raise SignatureError("signature does not match the body")
    # last, so only authentic and fresh requests reach the (possibly shared) memory
    if not replays.first_time(expected.removeprefix(_PREFIX)):
        raise ReplayedSignature("replayed request (signature already used)")

"""``X-Bridge-Timestamp`` is parsed strictly as whole unix seconds (issue 12 item 13).

``float("nan")`` parses, and every comparison with NaN is false, so a correctly signed
request stamped ``nan`` (or ``inf``, ``1e3``...) never went stale: a captured request could
be replayed for ever once its signature left the replay memory.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest

from bridge.clock import ManualClock
from bridge.realtime.signing import (
    MemoryReplayCache,
    SignatureError,
    parse_timestamp,
    sign,
    verify_signature,
)

SECRET = b"0123456789abcdef0123"
NOW = 1_000_000.0


def _verify(ts: str, *, now: float = NOW) -> None:
    """A request correctly signed with ``ts``: only the timestamp's form can refuse it."""
    # signed by hand: sign() itself only takes ASCII timestamps
    digest = hmac.new(SECRET, ts.encode() + b".{}", hashlib.sha256).hexdigest()
    verify_signature(secret=SECRET, body=b"{}", timestamp=ts, signature=f"sha256={digest}",
                     tolerance=300, replays=MemoryReplayCache(window=300, clock=ManualClock(now)),
                     now=now)


@pytest.mark.parametrize("ts", [
    "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e6", "1000000.0", "1000000.5",
    "+1000000", "-1000000", " 1000000", "1000000 ", "1_000_000", "0x10", "",
    "١٠٠٠٠٠٠",  # Arabic-Indic digits: int() takes them, unix seconds are ASCII
    "9" * 40,
])
def test_a_signed_timestamp_that_is_not_whole_ascii_unix_seconds_is_refused(ts: str) -> None:
    with pytest.raises(SignatureError, match="X-Bridge-Timestamp"):
        _verify(ts)


def test_nan_is_refused_at_any_time_not_only_when_it_would_be_stale() -> None:
    for now in (0.0, NOW, 4e9):
        with pytest.raises(SignatureError):
            _verify("nan", now=now)


def test_whole_seconds_inside_the_tolerance_pass_and_outside_are_stale() -> None:
    _verify("1000000")
    _verify("1000300")
    with pytest.raises(SignatureError, match="off"):
        _verify("1000301")
    with pytest.raises(SignatureError, match="off"):
        _verify("999699")


def test_the_hand_signature_is_the_senders_signature() -> None:
    ts = "1000000"
    digest = hmac.new(SECRET, ts.encode() + b".{}", hashlib.sha256).hexdigest()
    assert sign(SECRET, ts, b"{}") == f"sha256={digest}"


def test_parse_timestamp_returns_an_int() -> None:
    assert parse_timestamp("1700000000") == 1_700_000_000
    assert isinstance(parse_timestamp("0"), int)

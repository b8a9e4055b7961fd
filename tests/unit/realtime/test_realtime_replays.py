"""Replay memory of signed notifications: one process's, and the state store's shared one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bridge.clock import ManualClock
from bridge.realtime.replays import StoreReplayCache
from bridge.realtime.signing import (
    MemoryReplayCache,
    ReplayCache,
    ReplayedSignature,
    sign,
    verify_signature,
)
from bridge.state import StateStore, StateUnavailable, open_store

SECRET = b"0123456789abcdef0123"
SIG = "ab" * 32
WINDOW = 300.0


@pytest.fixture
def clock() -> ManualClock:
    """One clock for the replay memories and the state store (``clock.now``)."""
    return ManualClock()


@pytest.fixture
def store(db_url: str, clock: ManualClock) -> Iterator[StateStore]:
    st = open_store(db_url, clock=clock.now)
    try:
        yield st
    finally:
        st.close()


@pytest.mark.parametrize("kind", ["memory", "store"])
def test_first_time_then_replay_then_reusable_once_expired(
    kind: str, store: StateStore, clock: ManualClock
) -> None:
    cache: ReplayCache = (MemoryReplayCache(window=WINDOW, clock=clock) if kind == "memory"
                          else StoreReplayCache(store, window=WINDOW, clock=clock))
    assert cache.first_time(SIG)
    assert not cache.first_time(SIG)
    # remembered for twice the window: a timestamp is good from window before to after it
    clock.advance(2 * WINDOW - 1)
    assert not cache.first_time(SIG)
    clock.advance(1)
    assert cache.first_time(SIG)
    assert not cache.first_time(SIG)


def test_a_signature_accepted_by_one_process_is_a_replay_for_another(
    db_url: str, store: StateStore, clock: ManualClock
) -> None:
    other_store = open_store(db_url, clock=clock.now)  # a second process's connection pool
    try:
        a = StoreReplayCache(store, window=WINDOW)
        b = StoreReplayCache(other_store, window=WINDOW)
        ts = "1000"
        signature = sign(SECRET, ts, b"{}")
        verify_signature(secret=SECRET, body=b"{}", timestamp=ts, signature=signature,
                         tolerance=WINDOW, replays=a, now=1000.0)
        with pytest.raises(ReplayedSignature, match="replayed"):
            verify_signature(secret=SECRET, body=b"{}", timestamp=ts, signature=signature,
                             tolerance=WINDOW, replays=b, now=1000.0)
    finally:
        other_store.close()


def test_expired_rows_are_purged_about_once_per_time_to_live(
    store: StateStore, clock: ManualClock
) -> None:
    assert store.remember_signature("01" * 32, ttl_seconds=2 * WINDOW)  # another process's
    clock.advance(1)
    cache = StoreReplayCache(store, window=WINDOW, clock=clock)
    assert cache.first_time("02" * 32)  # purges (nothing expired yet), the next in 2 windows
    clock.advance(2 * WINDOW - 1)  # 01 has expired, the next purge is one second away
    assert cache.first_time("03" * 32)  # not yet: the expired row stays
    assert store.purge_signatures() == 1
    clock.advance(2 * WINDOW)
    assert cache.first_time("04" * 32)  # purge due: 02 and 03 expired and are deleted
    assert store.purge_signatures() == 0


def test_a_failed_purge_does_not_undo_the_recorded_signature(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down() -> int:
        raise StateUnavailable("state database error: OperationalError: gone")

    monkeypatch.setattr(store, "purge_signatures", down)
    cache = StoreReplayCache(store, window=WINDOW)
    assert cache.first_time(SIG)
    assert not cache.first_time(SIG)


def test_the_store_being_down_is_not_mistaken_for_a_replay(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(signature: str, *, ttl_seconds: float) -> bool:
        raise StateUnavailable("state database error: OperationalError: gone")

    monkeypatch.setattr(store, "remember_signature", down)
    ts = "1000"
    with pytest.raises(StateUnavailable):
        verify_signature(secret=SECRET, body=b"{}", timestamp=ts,
                         signature=sign(SECRET, ts, b"{}"), tolerance=WINDOW,
                         replays=StoreReplayCache(store, window=WINDOW), now=1000.0)

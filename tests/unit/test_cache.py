"""The one cache (bridge/cache.py) and the one clock (bridge/clock.py): expiry on an injected
clock, the LRU bound, pinning, and the clock's three readings moving together."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from bridge.cache import TtlCache
from bridge.clock import SYSTEM_CLOCK, ManualClock


def test_an_entry_is_fresh_until_its_ttl_has_passed_on_the_injected_clock() -> None:
    clock = ManualClock()
    cache: TtlCache[str, int] = TtlCache(ttl=30, clock=clock)
    cache.put("a", 1)
    cache.put("b", 2, ttl=5)  # an entry's own time to live
    clock.advance(4.999)
    assert (cache.get("a"), cache.get("b")) == (1, 2)
    clock.advance(0.001)  # expired at the very instant: fresh means strictly before
    assert (cache.get("a"), cache.get("b")) == (1, None)
    assert cache.peek("a") == 1 and cache.peek("b") is None  # an expired get drops it
    clock.advance(25)
    assert cache.get("a") is None and len(cache) == 0


def test_a_ttl_of_zero_keeps_nothing_and_forgets_the_earlier_value() -> None:
    cache: TtlCache[str, int] = TtlCache(ttl=0, clock=ManualClock())
    cache.put("a", 1)
    assert cache.get("a") is None and len(cache) == 0
    cache.put("a", 1, ttl=10)
    cache.put("a", 2, ttl=-1)
    assert cache.get("a") is None and cache.peek("a") is None


def test_the_bound_drops_the_least_recently_used_first() -> None:
    cache: TtlCache[str, int] = TtlCache(ttl=60, maxsize=3, clock=ManualClock())
    for i, key in enumerate("abc"):
        cache.put(key, i)
    assert cache.get("a") == 0  # order now b, c, a
    cache.touch(["b", "missing"])  # c, a, b: c is the least recently used
    cache.put("d", 3)
    assert [cache.peek(k) for k in "abcd"] == [0, 1, None, 3]
    assert len(cache) == 3


def test_pinned_keys_are_never_evicted_and_the_bound_stretches_to_hold_them() -> None:
    cache: TtlCache[str, int] = TtlCache(ttl=60, maxsize=2, clock=ManualClock())
    cache.put("old", 0)
    with cache.pinned(["p", "q", "r"]):
        for i, key in enumerate("pqr"):
            cache.put(key, i)
        assert [cache.peek(k) for k in ("old", "p", "q", "r")] == [None, 0, 1, 2]
        with cache.pinned(["s"]):  # another holder's key, nested
            cache.put("s", 3)
        assert len(cache) == 4
    cache.put("t", 4)  # nothing pinned any more: back to the bound, oldest first
    assert [cache.peek(k) for k in "pqrst"] == [None, None, None, 3, 4]


def test_peek_reads_an_expired_value_that_get_would_refuse() -> None:
    clock = ManualClock()
    cache: TtlCache[str, str] = TtlCache(ttl=10, clock=clock)
    cache.put("k", "v")
    clock.advance(10)
    assert cache.peek("k") == "v"
    assert cache.get("k") is None


def test_purge_drops_only_the_expired_entries_of_an_unbounded_cache() -> None:
    clock = ManualClock()
    cache: TtlCache[int, bool] = TtlCache(ttl=10, maxsize=None, clock=clock)
    for i in range(1000):
        cache.put(i, True, ttl=1 + i % 2 * 100)  # even keys live 1 s, odd ones 101 s
    clock.advance(1)
    assert cache.purge() == 500
    assert len(cache) == 500 and cache.get(1) and cache.get(0) is None
    cache.discard(1)
    cache.clear()
    assert len(cache) == 0


def test_maxsize_must_be_positive() -> None:
    with pytest.raises(ValueError, match="maxsize"):
        TtlCache(ttl=1, maxsize=0)


def test_a_manual_clock_moves_its_three_readings_together_and_only_forward() -> None:
    clock = ManualClock(datetime(2025, 3, 1, 12, 0, tzinfo=UTC))
    start = (clock.monotonic(), clock.time(), clock.now())
    clock.advance(90)
    assert clock.monotonic() - start[0] == 90 and clock.time() - start[1] == 90
    assert clock.now() == datetime(2025, 3, 1, 12, 1, 30, tzinfo=UTC)
    assert clock.now().tzinfo is UTC
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(datetime(2025, 3, 1))
    real = ManualClock.from_system()
    assert abs(real.time() - time.time()) < 5


def test_the_system_clock_reads_the_process_clocks() -> None:
    assert abs(SYSTEM_CLOCK.time() - time.time()) < 5
    assert abs(SYSTEM_CLOCK.monotonic() - time.monotonic()) < 5
    assert abs(SYSTEM_CLOCK.now().timestamp() - time.time()) < 5
    assert SYSTEM_CLOCK.now().tzinfo is UTC

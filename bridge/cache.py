"""The one in-process cache of the bridge: entries that expire, in a bounded LRU.

Used wherever an answer is worth keeping for a short while: the gateway's token checks and
patient compartment lookups, the sync's Patient/ServiceRequest references, the webhook
replay memory, the SMART app's rate-limit buckets.  Time is read from an injected
:class:`~bridge.clock.Clock` (monotonic seconds), so tests advance a
:class:`~bridge.clock.ManualClock` instead of sleeping out a time to live.

Semantics, the same for every user:

* an entry is fresh from :meth:`TtlCache.put` until ``ttl`` seconds later (the cache's
  default, or the entry's own); at that instant it has expired, and :meth:`TtlCache.get`
  drops it and answers ``None``;
* at most ``maxsize`` entries are held (``None``: no bound, for memories that must never
  forget a fresh entry, such as replay protection); a ``put`` beyond the bound drops the
  least recently used entries first (``get`` and :meth:`TtlCache.touch` make an entry
  recent), never a :meth:`TtlCache.pinned` one;
* ``None`` is not a value: :meth:`TtlCache.get` answers ``None`` for "no fresh entry".

Not thread-safe: a component shared by threads holds its own lock around it; asyncio code
needs none (no ``await`` inside a call).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from bridge.clock import SYSTEM_CLOCK, Clock

__all__ = ["TtlCache"]

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Values by key, each fresh for ``ttl`` seconds, at most ``maxsize`` of them (LRU)."""

    def __init__(self, *, ttl: float, maxsize: int | None = None,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        if maxsize is not None and maxsize < 1:
            raise ValueError(f"maxsize must be at least 1 (or None), got {maxsize}")
        self.ttl = ttl
        self.maxsize = maxsize
        self._clock = clock
        #: key -> (monotonic expiry, value), least recently used first
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()
        #: keys that eviction must keep, with how many holders pin each
        self._pins: Counter[K] = Counter()

    def get(self, key: K) -> V | None:
        """The fresh value of ``key`` (now the most recently used), else ``None``."""
        item = self._data.get(key)
        if item is None:
            return None
        if item[0] <= self._clock.monotonic():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return item[1]

    def peek(self, key: K) -> V | None:
        """The value stored for ``key``, fresh or expired, without making it recent (for
        answers looked up moments ago by the same piece of work: see :meth:`pinned`)."""
        item = self._data.get(key)
        return None if item is None else item[1]

    def put(self, key: K, value: V, *, ttl: float | None = None) -> None:
        """Keep ``value`` for ``ttl`` seconds (default: the cache's); a ``ttl`` of zero or
        less keeps nothing and forgets any earlier value of ``key``."""
        life = self.ttl if ttl is None else ttl
        if life <= 0:
            self._data.pop(key, None)
            return
        self._data[key] = (self._clock.monotonic() + life, value)
        self._data.move_to_end(key)
        self._evict()

    def discard(self, key: K) -> None:
        """Forget ``key`` (nothing happens if it is not held)."""
        self._data.pop(key, None)

    def touch(self, keys: Iterable[K]) -> None:
        """Make the held ``keys`` the most recently used, fresh or not, in the given order."""
        for key in keys:
            if key in self._data:
                self._data.move_to_end(key)

    @contextmanager
    def pinned(self, keys: Collection[K]) -> Iterator[None]:
        """Within the block, eviction never drops ``keys`` (the bound stretches to hold
        them all): one piece of work looks its keys up, then reads them with :meth:`peek`
        without losing any to its own puts or to another's.  The keys are touched on
        entry; on leaving, the cache may stay above its bound until the next ``put``."""
        pins = Counter(set(keys))
        self.touch(keys)
        self._pins.update(pins)
        try:
            yield
        finally:
            self._pins.subtract(pins)
            self._pins = +self._pins  # drop the counts that reached zero

    def purge(self) -> int:
        """Drop every expired entry; how many were dropped."""
        now = self._clock.monotonic()
        expired = [k for k, (expires, _) in self._data.items() if expires <= now]
        for key in expired:
            del self._data[key]
        return len(expired)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        """Entries held, expired ones not yet dropped included."""
        return len(self._data)

    def _evict(self) -> None:
        if self.maxsize is None or len(self._data) <= self.maxsize:
            return
        excess = len(self._data) - self.maxsize
        if not self._pins:
            for _ in range(excess):
                self._data.popitem(last=False)
            return
        victims: list[K] = []
        for key in self._data:  # least recently used first
            if len(victims) == excess:
                break
            if key not in self._pins:
                victims.append(key)
        for key in victims:
            del self._data[key]

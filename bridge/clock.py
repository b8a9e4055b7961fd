"""The one clock of the bridge: every cache, timer and expiry check reads time through it.

Components take a :class:`Clock` through their constructor (default :data:`SYSTEM_CLOCK`),
so a test hands them a :class:`ManualClock` and *advances* time instead of sleeping it out
or patching module constants.  A clock answers three questions:

* :meth:`Clock.monotonic`: seconds for intervals and in-process expiry (cache entries, rate
  limits, refetch intervals); only differences mean anything, and they never go backwards
  when the wall clock is set (PEP 418);
* :meth:`Clock.time`: wall-clock Unix seconds, for what other parties or other processes
  date (a JWT's ``exp``/``iat``/``nbf``, RFC 7519 4.1.4-4.1.6; a webhook timestamp; rows
  shared through a database);
* :meth:`Clock.now`: the same instant as a timezone-aware UTC ``datetime``, the form the
  state store reads (``bridge.state.Clock`` is ``Callable[[], datetime]``: pass
  ``clock.now``, so one :class:`ManualClock` drives the store and the caches together).
"""

from __future__ import annotations

import time as _time
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    """Where a component reads the time (see the module doc for which reading is for what)."""

    def monotonic(self) -> float:
        """Seconds of a clock that never goes backwards; only differences mean anything."""
        ...

    def time(self) -> float:
        """Wall-clock seconds since the Unix epoch (UTC)."""
        ...

    def now(self) -> datetime:
        """The wall-clock time as a timezone-aware UTC datetime."""
        ...


class SystemClock:
    """The process's clocks: :func:`time.monotonic`, :func:`time.time`."""

    def monotonic(self) -> float:
        return _time.monotonic()

    def time(self) -> float:
        return _time.time()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


#: the default of every component that takes a clock
SYSTEM_CLOCK: Clock = SystemClock()

#: 2026-01-01T00:00:00Z: where a :class:`ManualClock` starts unless told otherwise
_DEFAULT_START = 1_767_225_600.0


class ManualClock:
    """A clock that moves only when told to (tests; simulations).

    Its monotonic and wall readings move together: :meth:`advance` adds the same seconds
    to both.  ``start`` is the wall time it shows first (Unix seconds or an aware
    datetime); :meth:`from_system` starts it at the real time, for tests that also meet
    tokens issued by a real server.
    """

    def __init__(self, start: float | datetime = _DEFAULT_START) -> None:
        if isinstance(start, datetime):
            if start.tzinfo is None:
                raise ValueError("a ManualClock needs a timezone-aware start")
            start = start.timestamp()
        self._wall = float(start)

    @classmethod
    def from_system(cls) -> ManualClock:
        """A manual clock showing the real time now, moved only by the test from here."""
        return cls(_time.time())

    def monotonic(self) -> float:
        return self._wall

    def time(self) -> float:
        return self._wall

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._wall, UTC)

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (never backwards: a monotonic clock cannot)."""
        if seconds < 0:
            raise ValueError(f"a clock only moves forward, not by {seconds} s")
        self._wall += seconds

    def __repr__(self) -> str:
        return f"ManualClock({self.now().isoformat()})"

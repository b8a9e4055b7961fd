"""How long to hold back before reading a legacy source: its instances-per-second limit and
the hours it may be read (``LegacySourceSettings.instances_per_second`` / ``time_windows``).

Both only *compute* a delay; the caller sleeps it (``asyncio.sleep``), so tests drive them
with a :class:`~bridge.clock.ManualClock` instead of waiting.  The third throttle,
associations at once, is :class:`~bridge.migration.client.LegacySource`'s semaphore.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bridge.clock import SYSTEM_CLOCK, Clock
from bridge.sections.migration import LegacySourceSettings

__all__ = ["InstanceRate", "seconds_until_open"]


class InstanceRate:
    """A limit of ``per_second`` instances per second with bursts of up to ``burst``
    instances, as a virtual schedule (the generic cell rate algorithm): each reservation
    of ``n`` instances is given its slot after the previous ones and told how long to
    wait for it.  ``per_second`` None: no limit, never a wait."""

    def __init__(self, per_second: float | None, *, burst: int = 1,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        if per_second is not None and per_second <= 0:
            raise ValueError("per_second must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.per_second = per_second
        self._clock = clock
        self._tolerance = (burst - 1) / per_second if per_second else 0.0
        # times are kept relative to the clock's reading at construction: a monotonic clock
        # may read in the billions, where a float's resolution is a microsecond
        self._origin = clock.monotonic()
        self._next = 0.0  # when the next instance is due

    def reserve(self, instances: int = 1) -> float:
        """Book ``instances`` and return the seconds to wait before moving them (0: now)."""
        if self.per_second is None or instances <= 0:
            return 0.0
        now = self._clock.monotonic() - self._origin
        due = max(self._next, now)
        self._next = due + instances / self.per_second
        return max(0.0, due - now - self._tolerance)


def seconds_until_open(source: LegacySourceSettings, moment: datetime) -> float:
    """Seconds from ``moment`` (the bridge's local wall time, naive or aware) until
    ``source`` may be read: 0 inside one of its time windows or when it has none."""
    local = moment.replace(tzinfo=None) if moment.tzinfo is None else \
        moment.astimezone().replace(tzinfo=None)
    if source.open_at(local.time()):
        return 0.0
    starts = []
    for window in source.time_windows:
        start = datetime.combine(local.date(), window.start)
        if start <= local:
            start += timedelta(days=1)
        starts.append(start)
    return (min(starts) - local).total_seconds()

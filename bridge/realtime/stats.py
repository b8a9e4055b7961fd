"""What one app's event sources did since it started, for ``/status``.

The Prometheus counters of :mod:`bridge.realtime.metrics` live in the process-wide
registry, shared by every app built in one process (tests build several); these belong to
one :class:`bridge.realtime.RealtimeContext`.  Mutated on the event loop only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class RealtimeStats:
    #: ``POST /notifications`` requests answered 202, and the events they carried
    notifications_accepted: int = 0
    events_accepted: int = 0
    #: refused notification requests by reason (signature, replay, body, busy...)
    notifications_refused: Counter[str] = field(default_factory=Counter)
    #: STOW-RS proxy requests by the HTTP status we answered
    stow_requests: Counter[str] = field(default_factory=Counter)
    #: studies the STOW proxy made due (from the archives' answers)
    stow_studies: int = 0

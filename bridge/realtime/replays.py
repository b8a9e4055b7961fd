"""Replay memory of signed notifications kept in the state store, shared by processes.

Several ``imaging-bridge serve`` processes behind a load balancer share one state store; a
per-process memory would let a captured notification be replayed to another process within
the tolerance window.  The store answers "first time?" atomically for all of them
(:meth:`bridge.state.StateStore.remember_signature`).
"""

from __future__ import annotations

import logging
import threading

from bridge.clock import SYSTEM_CLOCK, Clock
from bridge.realtime.signing import replay_ttl
from bridge.state import StateStore, StateUnavailable

log = logging.getLogger(__name__)


class StoreReplayCache:
    """:class:`bridge.realtime.signing.ReplayCache` in the state store (blocking I/O).

    Expired rows are purged by each process about once per time to live, after a
    signature was recorded: one indexed ``DELETE``, so the table holds at most about two
    windows' worth of notifications.  ``clock`` (monotonic) times the purges; the rows'
    expiry is the store's own clock.
    """

    def __init__(
        self, store: StateStore, *, window: float, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._store = store
        self._ttl = replay_ttl(window)
        self._clock = clock
        self._next_purge = clock.monotonic()
        self._lock = threading.Lock()

    def first_time(self, signature: str) -> bool:
        first = self._store.remember_signature(signature, ttl_seconds=self._ttl)
        self._purge_if_due()
        return first

    def _purge_if_due(self) -> None:
        now = self._clock.monotonic()
        with self._lock:  # one purge at a time per process
            if now < self._next_purge:
                return
            self._next_purge = now + self._ttl
        try:
            removed = self._store.purge_signatures()
        except StateUnavailable as exc:
            # the signature is recorded already; a missed purge only leaves rows for the next
            log.warning("purge of expired signatures failed", extra={"error_type": exc.kind})
            return
        log.debug("expired signatures purged", extra={"count": removed})

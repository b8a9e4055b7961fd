"""The priority lanes' proof (issue 19), written once and run against SQLite (unit tests)
and PostgreSQL (``tests/integration/test_state_lanes_pg.py``).

Each scenario takes a store opened with a :class:`~state_helpers.FakeClock` and the
store's ``bulk_share`` at 0.2, and asserts what it proves.
"""

from __future__ import annotations

import uuid
from collections import Counter

from bridge.state import Lane, StateStore
from tests.unit.state.state_helpers import FakeClock

#: bulk rows queued ahead of the real-time mark ("thousands", issue 19 "Proof")
BULK_BACKLOG = 3000


def uids(prefix: str, count: int) -> list[str]:
    """``count`` unique study UIDs (a fresh root per call: no two calls share one)."""
    root = f"2.25.{uuid.uuid4().int % 10**20}"
    return [f"{root}.{prefix}.{n}" for n in range(count)]


def realtime_mark_is_claimed_next_behind_a_bulk_backlog(
    store: StateStore, clock: FakeClock, archive: str
) -> None:
    """With thousands of bulk rows due (older ones, too), a study stored through the STOW
    proxy is in the very next claim, ahead of them all, however small the batch."""
    backlog = uids("bulk", BULK_BACKLOG)
    store.mark_many_due(archive, [(uid, None) for uid in backlog], reason="backfill")
    clock.advance(60)
    (stored,) = uids("stow", 1)
    store.mark_due(archive, stored, reason="stow")

    (first,) = store.claim(worker="w1", limit=1, lease_seconds=60)
    assert (first.study_uid, first.lane) == (stored, Lane.REALTIME)
    # and with no real-time work left, the backlog drains in its own order
    rest = store.claim(worker="w1", limit=10, lease_seconds=60)
    assert len({c.study_uid for c in rest} & set(backlog)) == 10
    assert {c.lane for c in rest} == {Lane.BULK}


def bulk_progresses_at_its_share_under_continuous_realtime_work(
    store: StateStore, clock: FakeClock, archive: str
) -> None:
    """Real-time work arriving faster than it is claimed never starves the bulk lane: of
    every claim, ``bulk_share`` (0.2) goes to bulk work, with batches of 10 and of 1."""
    assert store.bulk_share == 0.2
    backlog = uids("bulk", 500)
    store.mark_many_due(archive, [(uid, None) for uid in backlog], reason="backfill")
    arriving = iter(uids("rt", 2000))
    lanes: Counter[Lane] = Counter()
    bulk_claimed: list[str] = []
    for batch in [10] * 50 + [1] * 100:
        for _ in range(batch + 2):  # more real-time work arrives than a claim takes
            store.mark_due(archive, next(arriving), reason="notification")
        clock.advance(1)
        claimed = store.claim(worker="w1", limit=batch, lease_seconds=600)
        assert len(claimed) == batch
        lanes.update(c.lane for c in claimed)
        bulk_claimed += [c.study_uid for c in claimed if c.lane is Lane.BULK]
    # 50 batches of 10 -> 2 bulk each; 100 batches of 1 -> one in five
    assert lanes == {Lane.BULK: 50 * 2 + 100 // 5, Lane.REALTIME: 50 * 8 + 100 * 4 // 5}
    assert len(set(bulk_claimed) & set(backlog)) == len(bulk_claimed)  # none claimed twice
    figures = {f.lane: f for f in store.lanes(archive)}
    assert figures[Lane.BULK].depth == len(backlog)  # claimed ones are leased: still open
    assert figures[Lane.REALTIME].oldest_age is not None

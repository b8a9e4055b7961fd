"""Priority lanes of the work queue on a real PostgreSQL (issue 19): the same proof as on
SQLite (``tests/unit/state/lane_scenarios.py``), the claim's plan, concurrent claimers, and
the lane migration both ways.  Each test works in a schema of its own (``pg_schema_url``).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from bridge.state import Lane, StateStore, open_store, statements
from bridge.state.engine import create_state_engine
from bridge.state.migrate import current_revision, downgrade, upgrade
from tests.unit.state.lane_scenarios import (
    bulk_progresses_at_its_share_under_continuous_realtime_work,
    realtime_mark_is_claimed_next_behind_a_bulk_backlog,
    uids,
)
from tests.unit.state.state_helpers import HEAD, FakeClock

A = "archive-a"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(pg_schema_url: str, clock: FakeClock) -> Iterator[StateStore]:
    st = open_store(pg_schema_url, clock=clock)
    try:
        yield st
    finally:
        st.close()


def test_realtime_mark_behind_thousands_of_bulk_rows_is_claimed_next_on_postgres(
    store: StateStore, clock: FakeClock
) -> None:
    assert store.dialect == "postgresql"
    realtime_mark_is_claimed_next_behind_a_bulk_backlog(store, clock, A)


def test_bulk_work_keeps_its_share_under_continuous_realtime_work_on_postgres(
    store: StateStore, clock: FakeClock
) -> None:
    bulk_progresses_at_its_share_under_continuous_realtime_work(store, clock, A)


def test_each_lane_is_claimed_by_an_index_range_scan_skipping_locked_rows_on_postgres(
    store: StateStore, pg_schema_url: str
) -> None:
    store.mark_many_due(A, [(u, None) for u in uids("bulk", 5000)], reason="backfill")
    for uid in uids("rt", 50):
        store.mark_due(A, uid, reason="stow")
    engine = create_state_engine(pg_schema_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE bridge_study"))
            plans = {}
            for by_archive in (False, True):
                compiled = statements.claim_lease("postgresql", by_archive=by_archive).compile(
                    dialect=engine.dialect
                )
                params = {"k_lane": "realtime", "now": "2100-01-01T00:00:00+00:00", "limit": 10,
                          "k_archive": A, "worker": "w", "expires": "2100-01-01T00:00:00+00:00"}
                # EXPLAIN (no ANALYZE): the plan only, nothing is leased
                rows = conn.exec_driver_sql(f"EXPLAIN {compiled.string}",
                                            compiled.construct_params(params))
                plans[by_archive] = "\n".join(str(row[0]) for row in rows)
    finally:
        engine.dispose()
    assert "Index Scan using ix_bridge_study_lane_ready_at" in plans[False], plans[False]
    assert "Index Scan using ix_bridge_study_archive_lane_ready_at" in plans[True], plans[True]
    for plan in plans.values():
        assert "LockRows" in plan and "Sort" not in plan and "Seq Scan" not in plan, plan


def test_concurrent_claimers_share_both_lanes_without_claiming_a_study_twice_on_postgres(
    pg_schema_url: str,
) -> None:
    seed = open_store(pg_schema_url)
    bulk, realtime = uids("bulk", 400), uids("rt", 400)
    seed.mark_many_due(A, [(u, None) for u in bulk], reason="backfill")
    seed.mark_many_due(A, [(u, None) for u in realtime], reason="poll")
    seed.close()
    stores = [open_store(pg_schema_url) for _ in range(4)]
    start = threading.Barrier(4)
    claims: list[list[tuple[str, Lane]]] = [[] for _ in stores]

    def work(n: int) -> None:
        start.wait()
        while batch := stores[n].claim(worker=f"w{n}", limit=10, lease_seconds=600):
            claims[n] += [(c.study_uid, c.lane) for c in batch]

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        for st in stores:
            st.close()
    every = [claim for per_worker in claims for claim in per_worker]
    assert Counter(uid for uid, _ in every) == Counter(bulk + realtime)  # each exactly once
    lanes = dict(every)
    assert {lanes[u] for u in bulk} == {Lane.BULK}
    assert {lanes[u] for u in realtime} == {Lane.REALTIME}
    # while both lanes had work, a fifth of each claim went to bulk: the first 100 claims
    # taken (of 800) hold about 20 bulk rows, far from the 0 of a strict priority
    first = [lane for per_worker in claims for _, lane in per_worker[:25]]
    assert 10 <= first.count(Lane.BULK) <= 40


def test_downgrade_to_0004_and_upgrade_keeps_the_queue_and_its_lanes_on_postgres(
    pg_schema_url: str,
) -> None:
    store = open_store(pg_schema_url)
    stored, backfilled = uids("q", 2)
    store.mark_due(A, stored, reason="stow")
    store.mark_due(A, backfilled, reason="backfill")
    store.close()
    engine = create_state_engine(pg_schema_url)
    try:
        downgrade(engine, "0004")
        assert current_revision(engine) == "0004"
        upgrade(engine)
        assert current_revision(engine) == HEAD
    finally:
        engine.dispose()
    again = open_store(pg_schema_url)
    try:
        claimed = again.claim(worker="w1", limit=2, lease_seconds=60)
        assert [(c.study_uid, c.lane) for c in claimed] == [
            (stored, Lane.REALTIME), (backfilled, Lane.BULK)]
    finally:
        again.close()

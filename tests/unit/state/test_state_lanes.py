"""Priority lanes of the work queue (issue 19): real-time work is claimed before bulk
work, bulk work keeps its share, one row per study moves between lanes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from state_helpers import FakeClock

from bridge.state import LANE_OF_REASON, Lane, Reason, StateStore, open_store, statements
from bridge.state.engine import create_state_engine
from tests.unit.state.lane_scenarios import (
    bulk_progresses_at_its_share_under_continuous_realtime_work,
    realtime_mark_is_claimed_next_behind_a_bulk_backlog,
    uids,
)

A = "archive-a"


def lane_of(store: StateStore, uid: str) -> Lane:
    study = store.get_study(A, uid)
    assert study is not None
    return study.lane


def complete(store: StateStore, uid: str, claimed_seq: int) -> None:
    assert store.complete(A, uid, worker="w1", claimed_seq=claimed_seq, fingerprint=None,
                          content_hash="h", fhir_id="is-1", fhir_version="1", action="create")


@pytest.fixture
def strict(tmp_path: Path, clock: FakeClock) -> Iterator[StateStore]:
    """A store that keeps nothing for bulk work while real-time work waits."""
    st = open_store(f"sqlite:///{tmp_path / 'strict.db'}", clock=clock, bulk_share=0.0)
    try:
        yield st
    finally:
        st.close()


def test_realtime_mark_behind_thousands_of_bulk_rows_is_claimed_in_the_next_claim(
    store: StateStore, clock: FakeClock
) -> None:
    realtime_mark_is_claimed_next_behind_a_bulk_backlog(store, clock, A)


def test_bulk_work_keeps_its_share_while_realtime_work_arrives_continuously(
    store: StateStore, clock: FakeClock
) -> None:
    bulk_progresses_at_its_share_under_continuous_realtime_work(store, clock, A)


def test_reasons_of_realtime_sources_are_the_realtime_lane_and_every_reason_has_a_lane() -> None:
    assert set(LANE_OF_REASON) == set(Reason)
    realtime = {reason for reason, lane in LANE_OF_REASON.items() if lane is Lane.REALTIME}
    assert realtime == {Reason.STOW, Reason.NOTIFICATION, Reason.POLL}


@pytest.mark.parametrize("reason", ["stow", "notification", "poll"])
def test_realtime_mark_moves_a_study_queued_by_backfill_to_the_realtime_lane(
    store: StateStore, clock: FakeClock, reason: str
) -> None:
    older, queued = uids("bulk", 2)
    store.mark_many_due(A, [(older, None), (queued, None)], reason="backfill")
    clock.advance(5)
    store.mark_due(A, queued, reason=reason)

    assert store.counts()["due"] == 2  # still one row per study
    assert lane_of(store, queued) is Lane.REALTIME
    (first,) = store.claim(worker="w1", limit=1, lease_seconds=60)
    assert (first.study_uid, first.lane) == (queued, Lane.REALTIME)


@pytest.mark.parametrize("reason", ["backfill", "reconcile", "manual"])
def test_bulk_mark_never_demotes_a_queued_realtime_study(
    store: StateStore, clock: FakeClock, reason: str
) -> None:
    due, leased = uids("rt", 2)
    store.mark_due(A, leased, reason="stow")
    (claimed,) = store.claim(worker="w1", limit=1, lease_seconds=60)
    store.mark_due(A, due, reason="notification")

    store.mark_due(A, due, reason=reason)
    store.mark_many_due(A, [(leased, None)], reason=reason)  # arrives during the lease
    complete(store, leased, claimed.claimed_seq)  # due again: the event came mid-sync

    assert (lane_of(store, due), lane_of(store, leased)) == (Lane.REALTIME, Lane.REALTIME)


def test_finished_study_is_queued_afresh_in_the_lane_of_its_new_mark(
    store: StateStore,
) -> None:
    (uid,) = uids("done", 1)
    store.mark_due(A, uid, reason="stow")
    (claimed,) = store.claim(worker="w1", limit=1, lease_seconds=60)
    complete(store, uid, claimed.claimed_seq)

    store.mark_due(A, uid, reason="reconcile")

    assert lane_of(store, uid) is Lane.BULK


def test_resync_and_failures_retry_queue_in_the_bulk_lane_and_a_retry_keeps_its_lane(
    store: StateStore, clock: FakeClock
) -> None:
    synced, failed, retried = uids("x", 3)
    for uid in (synced, failed, retried):
        store.mark_due(A, uid, reason="stow")
    by_uid = {c.study_uid: c for c in store.claim(worker="w1", limit=3, lease_seconds=60)}
    complete(store, synced, by_uid[synced].claimed_seq)
    assert store.fail(A, failed, worker="w1", claimed_seq=by_uid[failed].claimed_seq,
                      kind="fhir-rejected", message="HTTP 422")
    assert store.retry_later(A, retried, worker="w1", claimed_seq=by_uid[retried].claimed_seq,
                             kind="fhir-busy", message="HTTP 503", delay_seconds=10)

    assert store.requeue_synced() == 1
    assert store.retry_failed(failed) == 1

    assert [lane_of(store, u) for u in (synced, failed, retried)] == [
        Lane.BULK, Lane.BULK, Lane.REALTIME]


def test_bulk_work_fills_a_claim_when_realtime_work_runs_short_and_the_other_way_round(
    store: StateStore, clock: FakeClock
) -> None:
    bulk = uids("bulk", 8)
    store.mark_many_due(A, [(u, None) for u in bulk], reason="backfill")
    realtime = uids("rt", 20)
    for uid in realtime[:3]:
        store.mark_due(A, uid, reason="stow")

    first = store.claim(worker="w1", limit=10, lease_seconds=60)
    assert [c.lane for c in first] == [Lane.REALTIME] * 3 + [Lane.BULK] * 7

    for uid in realtime[3:]:
        store.mark_due(A, uid, reason="stow")
    # 2 bulk slots of 10, but 1 bulk row is left: the slot it cannot fill goes to real time
    last = store.claim(worker="w1", limit=10, lease_seconds=60)
    assert [c.lane for c in last] == [Lane.REALTIME] * 9 + [Lane.BULK]


def test_bulk_share_zero_claims_every_realtime_study_first(
    strict: StateStore, clock: FakeClock
) -> None:
    strict.mark_many_due(A, [(u, None) for u in uids("bulk", 50)], reason="backfill")
    for uid in uids("rt", 15):
        strict.mark_due(A, uid, reason="poll")

    claimed = strict.claim(worker="w1", limit=20, lease_seconds=60)

    assert [c.lane for c in claimed] == [Lane.REALTIME] * 15 + [Lane.BULK] * 5


def test_bulk_share_outside_zero_to_one_is_refused(tmp_path: Path) -> None:
    for share in (-0.1, 1.5):
        with pytest.raises(ValueError, match="bulk_share"):
            open_store(f"sqlite:///{tmp_path / 'refused.db'}", bulk_share=share)


def test_lane_figures_give_depth_and_oldest_wait_per_lane(
    store: StateStore, clock: FakeClock
) -> None:
    store.mark_many_due(A, [(u, None) for u in uids("bulk", 4)], reason="backfill")
    clock.advance(30)
    for uid in uids("rt", 2):
        store.mark_due(A, uid, reason="stow")
    clock.advance(10)
    store.mark_due("archive-b", uids("other", 1)[0], reason="stow", delay=3600)

    figures = {f.lane: (f.depth, f.oldest_age) for f in store.lanes()}
    assert figures == {Lane.REALTIME: (3, 10.0), Lane.BULK: (4, 40.0)}
    assert {f.lane: f.depth for f in store.lanes("archive-b")} == {
        Lane.REALTIME: 1, Lane.BULK: 0}
    store.claim(worker="w1", limit=2, lease_seconds=60)  # leased rows are open, not waiting
    assert {f.lane: (f.depth, f.oldest_age) for f in store.lanes(A)} == {
        Lane.REALTIME: (2, None), Lane.BULK: (4, 40.0)}
    assert store.oldest_due_age() == 40.0


@pytest.mark.parametrize(
    ("by_archive", "index"),
    [(False, "ix_bridge_study_lane_ready_at"), (True, "ix_bridge_study_archive_lane_ready_at")],
)
def test_each_lane_is_claimed_by_one_index_range_scan_already_in_claim_order(
    store: StateStore, db_url: str, by_archive: bool, index: str
) -> None:
    store.mark_many_due(A, [(u, None) for u in uids("bulk", 500)], reason="backfill")
    engine = create_state_engine(db_url)
    try:
        compiled = statements.claim_pick("sqlite", by_archive=by_archive).compile(
            dialect=engine.dialect
        )
        values = compiled.construct_params(
            {"k_lane": "realtime", "now": "2025-01-01 00:00:00.000000", "limit": 10,
             "k_archive": A}
        )
        assert compiled.positiontup is not None
        args = tuple(values[name] for name in compiled.positiontup)
        with engine.connect() as conn:
            plan = " / ".join(
                str(row[-1])
                for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled.string}", args)
            )
    finally:
        engine.dispose()
    assert f"USING INDEX {index} (" in plan, plan
    assert "lane=?" in plan and "ready_at<?" in plan.replace("<=", "<"), plan
    assert "TEMP B-TREE" not in plan, plan


@pytest.mark.parametrize("statement", ["claim_lease", "held"])
def test_claimed_and_held_rows_are_found_by_index_not_by_a_table_scan_on_sqlite(
    store: StateStore, clock: FakeClock, db_url: str, statement: str
) -> None:
    # SQLite answers "(archive, study_uid) IN (VALUES ...)" by scanning the whole table: a
    # claim (and a batch of completions) would cost a read of every study ever seen
    store.mark_many_due(A, [(u, None) for u in uids("bulk", 500)], reason="backfill")
    query = (statements.claim_lease("sqlite", by_archive=False) if statement == "claim_lease"
             else statements.held("sqlite"))
    params = {"worker": "w", "expires": clock.now, "now": clock.now,
              "keys": [(A, "1.1"), (A, "1.2")], "uids": ["1.1", "1.2"]}
    sent: list[tuple[str, Any]] = []
    engine = create_state_engine(db_url)

    def capture(conn: Any, cursor: Any, sql: str, parameters: Any, *_: Any) -> None:
        sent.append((sql, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with engine.connect() as conn:
            trans = conn.begin()
            conn.execute(query, params)  # the SQL as sent, with its expanded lists
            trans.rollback()
            ((sql, args),) = [(q, a) for q, a in sent if "bridge_study" in q]
            plan = " / ".join(
                str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", args)
            )
    finally:
        engine.dispose()
    # found by study UID, not by status (every leased row) nor by scanning the table
    assert "study_uid=?)" in plan and "SCAN bridge_study" not in plan, plan

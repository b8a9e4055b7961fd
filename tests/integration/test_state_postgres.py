"""The state store on a real PostgreSQL: migrations, exclusive claims, several processes.

Each test works in a schema of its own (``search_path`` set through the URL), so the
migrations run from scratch every time and tests sharing the session's server never see
each other's rows.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlmodel import SQLModel

from bridge.state import (
    AuditAction,
    Completion,
    StateStore,
    Status,
    StudyWarning,
    open_store,
)
from bridge.state.engine import create_state_engine
from bridge.state.migrate import VERSION_TABLE, current_revision, upgrade
from tests.support.settings import pg_schema
from tests.unit.state.state_helpers import (
    SEED_NOW,
    FakeClock,
    check_seeded_data_after_upgrade,
    seed_revision_0001,
)
from tests.unit.state.state_workers import drain, open_and_report

SPAWN = multiprocessing.get_context("spawn")
HEAD = "0007"


@pytest.fixture
def pg_url(postgres: Any) -> Iterator[str]:
    """A URL whose connections work in a fresh, empty schema (dropped afterwards)."""
    with pg_schema(postgres, "-clock_timeout=10s") as url:
        yield url


@pytest.fixture
def store(pg_url: str) -> Iterator[StateStore]:
    st = open_store(pg_url)
    try:
        yield st
    finally:
        st.close()


def run_processes(target: Any, arg_sets: list[tuple[Any, ...]], start: Any) -> None:
    procs = [SPAWN.Process(target=target, args=args) for args in arg_sets]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0] * len(procs)


def test_new_postgres_store_is_at_head_and_matches_the_models(
    store: StateStore, pg_url: str
) -> None:
    assert store.dialect == "postgresql"
    engine = create_state_engine(pg_url)
    try:
        assert current_revision(engine) == HEAD
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "version_table": VERSION_TABLE}
            )
            diff = compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()
    assert [d for d in diff if "bridge_" in repr(d)] == []


def test_upgrade_from_the_first_revision_keeps_the_data_on_postgres(pg_url: str) -> None:
    engine = create_state_engine(pg_url)
    try:
        upgrade(engine, "0001")
        seed_revision_0001(engine, "archive-a")
    finally:
        engine.dispose()

    store = open_store(pg_url, clock=lambda: SEED_NOW)
    try:
        check_seeded_data_after_upgrade(store, "archive-a")
    finally:
        store.close()


def test_bulk_marking_and_fingerprints_on_postgres(store: StateStore) -> None:
    items = [(f"2.25.{n}", f"fp-{n}" if n % 2 else None) for n in range(3000)]

    assert store.mark_many_due("a", [*items, ("2.25.0", "late")], reason="backfill") == 3000
    store.mark_many_due("a", [("2.25.1", None)], reason="poll")  # keeps fp-1

    found = store.fingerprints("a", [uid for uid, _ in items] + ["2.25.unknown"])
    assert len(found) == 3000
    assert (found["2.25.0"], found["2.25.1"], found["2.25.2"]) == ("late", "fp-1", None)
    assert store.counts("a")["due"] == 3000
    study = store.get_study("a", "2.25.1")
    assert study is not None and study.due_seq == 2


def test_two_worker_processes_drain_2000_rows_without_claiming_one_twice(
    store: StateStore, pg_url: str, tmp_path: Path
) -> None:
    uids = [f"2.25.{uuid.uuid4().int}" for _ in range(2000)]
    store.mark_many_due("archive-a", [(uid, None) for uid in uids], reason="backfill")
    start = SPAWN.Event()
    outs = [tmp_path / "w1.json", tmp_path / "w2.json"]

    run_processes(
        drain,
        [(pg_url, f"w{n + 1}", "archive-a", 25, start, str(out)) for n, out in enumerate(outs)],
        start,
    )

    records = [r for out in outs for r in json.loads(out.read_text())]
    held: dict[str, list[tuple[float, float, str]]] = {}
    for uid, worker, claimed_at, released_at, _ok in records:
        held.setdefault(uid, []).append((claimed_at, released_at, worker))
    for uid, spans in held.items():  # no study held by two workers at once
        spans.sort()
        for (_, end, _w), (begin, _, _w2) in itertools.pairwise(spans):
            assert end <= begin, f"{uid} held twice at once: {spans}"
    assert set(held) == set(uids)  # none left behind
    assert max(len(spans) for spans in held.values()) == 1  # leases never expired
    assert all(r[4] for r in records)
    per_worker = Counter(r[1] for r in records)
    assert per_worker["w1"] > 0 and per_worker["w2"] > 0
    assert store.counts("archive-a")["synced"] == 2000
    assert store.queue_depth("archive-a") == 0


def test_claim_skips_rows_locked_by_a_concurrent_claim_instead_of_waiting(
    store: StateStore, pg_url: str
) -> None:
    store.mark_many_due("archive-a", [(f"2.25.{n}", None) for n in range(20)], reason="poll")
    other = create_engine(pg_url)
    try:
        with other.connect() as conn:
            # another claimer, mid-transaction, holding the 5 oldest rows
            locked = {
                uid
                for (uid,) in conn.execute(
                    text(
                        "SELECT study_uid FROM bridge_study ORDER BY ready_at, study_uid"
                        " LIMIT 5 FOR UPDATE"
                    )
                )
            }
            result: list[Any] = []
            worker = threading.Thread(
                target=lambda: result.append(store.claim(worker="w1", limit=20, lease_seconds=60))
            )
            started = time.perf_counter()
            worker.start()
            worker.join(timeout=5)
            elapsed = time.perf_counter() - started
            assert not worker.is_alive(), "claim waited for the other claimer's locks"
            claimed = {c.study_uid for c in result[0]}
            assert len(claimed) == 15 and not claimed & locked
            assert elapsed < 2.0
            conn.rollback()
    finally:
        other.dispose()
    rest = store.claim(worker="w2", limit=20, lease_seconds=60)
    assert {c.study_uid for c in rest} == locked


def test_one_signature_presented_at_once_through_many_pools_is_new_exactly_once(
    pg_url: str,
) -> None:
    # as processes behind a load balancer: one engine (pool) each, all racing one INSERT
    stores = [open_store(pg_url) for _ in range(4)]
    signature = "5a" * 32
    start = threading.Barrier(24)
    results: list[bool] = []

    def attempt(n: int) -> None:
        start.wait()
        results.append(stores[n % 4].remember_signature(signature, ttl_seconds=600))

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(24)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        for st in stores:
            st.close()
    assert sorted(results) == [False] * 23 + [True]


def test_an_expired_signature_is_reusable_and_purged_on_postgres(pg_url: str) -> None:
    clock = FakeClock()
    store = open_store(pg_url, clock=clock)
    try:
        assert store.remember_signature("01" * 32, ttl_seconds=60)
        assert store.remember_signature("02" * 32, ttl_seconds=600)
        assert not store.remember_signature("01" * 32, ttl_seconds=60)
        clock.advance(60)
        assert store.remember_signature("01" * 32, ttl_seconds=60)  # expired: reused
        assert not store.remember_signature("01" * 32, ttl_seconds=60)
        clock.advance(60)
        assert store.purge_signatures() == 1
        assert not store.remember_signature("02" * 32, ttl_seconds=600)
    finally:
        store.close()


def test_outcomes_and_leases_on_postgres(pg_url: str) -> None:
    clock = FakeClock()
    store = open_store(pg_url, clock=clock)
    try:
        store.mark_many_due("a", [("1.1", "fp"), ("1.2", None), ("1.3", None)], reason="poll")
        one, two, three = store.claim(worker="w1", limit=3, lease_seconds=30)
        # an event during the lease: the completion leaves the study due
        store.mark_due("a", "1.1", reason="notification")
        assert store.complete_many(
            [Completion("a", "1.1", one.claimed_seq, AuditAction.CREATE, fhir_id="is-1")],
            worker="w1",
        ) == [True]
        assert store.get_study("a", "1.1").status is Status.DUE  # type: ignore[union-attr]
        # a permanent failure keeps the OperationOutcome (jsonb)
        outcome = {"resourceType": "OperationOutcome", "issue": [{"code": "invalid"}]}
        assert store.fail(
            "a",
            "1.2",
            worker="w1",
            claimed_seq=two.claimed_seq,
            kind="fhir-rejected",
            message="422",
            operation_outcome=outcome,
        )
        assert store.failures(archive="a")[0].operation_outcome == outcome
        assert store.retry_failed("1.2", archive="a") == 1
        # an expired lease is taken over; the late worker's outcome is refused
        assert store.renew_lease("a", "1.3", worker="w1", lease_seconds=30)
        clock.advance(31)
        taken = store.claim(worker="w2", limit=5, lease_seconds=30, archive="a")
        assert {(c.study_uid, c.taken_over) for c in taken} == {
            ("1.1", False),
            ("1.2", False),
            ("1.3", True),
        }
        assert not store.complete(
            "a",
            "1.3",
            worker="w1",
            claimed_seq=three.claimed_seq,
            fingerprint=None,
            content_hash="h",
            fhir_id="x",
            fhir_version="1",
            action="create",
        )
        by_uid = {c.study_uid: c for c in taken}
        assert store.retry_later(
            "a",
            "1.3",
            worker="w2",
            claimed_seq=by_uid["1.3"].claimed_seq,
            kind="patient-not-found",
            message="-",
            delay_seconds=60,
            waiting=True,
        )
        assert store.complete(
            "a",
            "1.1",
            worker="w2",
            claimed_seq=by_uid["1.1"].claimed_seq,
            fingerprint="fp2",
            content_hash="h",
            fhir_id=None,
            fhir_version="2",
            action="update",
            status_code=200,
        )
        assert store.mark_deleted("a", "1.2", worker="w2", claimed_seq=by_uid["1.2"].claimed_seq)
        assert store.counts("a") == {
            "due": 0,
            "leased": 0,
            "synced": 1,
            "waiting": 1,
            "failed": 0,
            "deleted": 1,
        }
        synced = store.get_study("a", "1.1")
        assert synced is not None
        assert (synced.fhir_id, synced.fhir_version, synced.fingerprint) == ("is-1", "2", "fp2")
        assert [type(e).__name__ for e in store.study_history("1.1", archive="a")] == [
            "AuditView",
            "AuditView",
        ]
        store.set_checkpoint("poll:a", "x")
        store.set_checkpoint("poll:a", "y")
        assert store.get_checkpoint("poll:a") == "y"
    finally:
        store.close()


def test_mapping_warnings_are_replaced_counted_and_listed_on_postgres(pg_url: str) -> None:
    clock = FakeClock()
    store = open_store(pg_url, clock=clock)
    body = StudyWarning(code="unknown-body-part", tag="(0018,0015) BodyPartExamined",
                        message="unknown body part", where="series 1.1.9", value="ELBOWX")
    date = StudyWarning(code="invalid-date", tag="(0008,0020) StudyDate", message="bad DA")
    try:
        store.mark_many_due("a", [("1.1", None), ("1.2", None), ("1.3", None)], reason="poll")
        seqs = {c.study_uid: c.claimed_seq
                for c in store.claim(worker="w1", limit=3, lease_seconds=30)}
        wanted = {"1.1": (body, date), "1.2": (date,), "1.3": ()}
        done = [Completion("a", uid, seqs[uid], AuditAction.CREATE, warnings=warnings)
                for uid, warnings in wanted.items()]
        assert store.complete_many(done, worker="w1") == [True, True, True]
        assert store.warned_study_count() == 2
        assert store.warning_counts() == {"invalid-date": 2, "unknown-body-part": 1}
        listed = store.studies_with_warnings(code="unknown-body-part")
        assert [(s.study_uid, s.status, s.warnings, s.codes, s.at) for s in listed] == [
            ("1.1", Status.SYNCED, 2, ("invalid-date", "unknown-body-part"), clock.now)]

        clock.advance(5)  # the next mapping of 1.1 has none: cleared, in one completion
        store.mark_due("a", "1.1", reason="manual")
        (again,) = store.claim(worker="w1", limit=1, lease_seconds=30)
        assert store.complete("a", "1.1", worker="w1", claimed_seq=again.claimed_seq,
                              fingerprint=None, content_hash="h2", fhir_id=None,
                              fhir_version="2", action="update", warnings=[])
        assert store.study_warnings("1.1") == []
        assert [s.study_uid for s in store.studies_with_warnings()] == ["1.2"]
    finally:
        store.close()


def test_processes_opening_a_new_postgres_store_at_once_all_succeed(
    pg_url: str, tmp_path: Path
) -> None:
    start = SPAWN.Event()
    outs = [tmp_path / f"open{n}.json" for n in range(3)]

    run_processes(open_and_report, [(pg_url, start, str(out)) for out in outs], start)

    assert [json.loads(out.read_text()) for out in outs] == [HEAD] * 3

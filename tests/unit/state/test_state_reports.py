"""Figures, checkpoints, clocks, SQLite set-up, threads and error translation."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from state_helpers import FakeClock

from bridge.errors import Retryable
from bridge.state import StateStore, StateUnavailable, Status, open_store
from bridge.state.engine import normalize_url

A = "archive-a"


def test_counts_and_queue_depth_per_archive(store: StateStore) -> None:
    store.mark_many_due(A, [("1.1", None), ("1.2", None), ("1.3", None)], reason="poll")
    store.mark_due("archive-b", "2.1", reason="poll")
    (c,) = store.claim(worker="w1", limit=1, lease_seconds=60, archive=A)
    store.fail(A, c.study_uid, worker="w1", claimed_seq=c.claimed_seq, kind="x", message="y")
    store.claim(worker="w1", limit=1, lease_seconds=60, archive=A)

    assert store.counts() == {
        "due": 2,
        "leased": 1,
        "synced": 0,
        "waiting": 0,
        "failed": 1,
        "deleted": 0,
    }
    assert store.counts(A) == {
        "due": 1,
        "leased": 1,
        "synced": 0,
        "waiting": 0,
        "failed": 1,
        "deleted": 0,
    }
    assert store.queue_depth() == 3
    assert store.queue_depth("archive-b") == 1


def test_oldest_due_age_measures_the_lag_of_ready_unclaimed_studies(
    store: StateStore, clock: FakeClock
) -> None:
    assert store.oldest_due_age() is None
    store.mark_due(A, "old", reason="poll")
    clock.advance(30)
    store.mark_due(A, "new", reason="poll")
    store.mark_due(A, "later", reason="stow", delay=600)
    clock.advance(60)

    assert store.oldest_due_age() == pytest.approx(90.0)
    store.claim(worker="w1", limit=1, lease_seconds=60)  # takes "old"
    assert store.oldest_due_age() == pytest.approx(60.0)
    assert store.oldest_due_age("archive-b") is None


def test_checkpoints_survive_reopening_the_store(db_url: str, clock: FakeClock) -> None:
    first = open_store(db_url, clock=clock)
    first.set_checkpoint("backfill:archive-a", '{"window": "2019-01-01/2019-01-31"}')
    first.set_checkpoint("poll:archive-a", "old")
    first.set_checkpoint("poll:archive-a", "20250301T120000")
    first.close()

    second = open_store(db_url, clock=clock)
    try:
        assert second.get_checkpoint("backfill:archive-a") == '{"window": "2019-01-01/2019-01-31"}'
        assert second.get_checkpoint("poll:archive-a") == "20250301T120000"
        assert second.get_checkpoint("never-set") is None
        assert second.delete_checkpoint("poll:archive-a") is True
        assert second.delete_checkpoint("poll:archive-a") is False
        assert second.get_checkpoint("poll:archive-a") is None
    finally:
        second.close()


def test_queue_survives_reopening_the_store(db_url: str, clock: FakeClock) -> None:
    first = open_store(db_url, clock=clock)
    first.mark_due(A, "1.1", reason="poll", fingerprint="fp")
    first.close()

    second = open_store(db_url, clock=clock)
    try:
        (c,) = second.claim(worker="w1", limit=5, lease_seconds=60)
        assert (c.study_uid, c.fingerprint) == ("1.1", "fp")
    finally:
        second.close()


def test_times_are_stored_and_returned_as_aware_utc(db_url: str) -> None:
    cest = timezone(timedelta(hours=2))
    local_noon = datetime(2025, 6, 1, 12, 0, tzinfo=cest)
    store = open_store(db_url, clock=lambda: local_noon)
    try:
        store.mark_due(A, "1.1", reason="poll")
        study = store.get_study(A, "1.1")
        assert study is not None
        assert study.first_seen_at == local_noon
        assert study.first_seen_at.tzinfo is UTC
        assert study.first_seen_at.hour == 10
    finally:
        store.close()


def test_a_naive_clock_is_refused(db_url: str) -> None:
    store = open_store(db_url, clock=lambda: datetime(2025, 1, 1))
    try:
        with pytest.raises(ValueError, match="timezone-aware"):
            store.mark_due(A, "1.1", reason="poll")
    finally:
        store.close()


def test_sqlite_store_uses_wal_journal(store: StateStore, tmp_path: Path) -> None:
    store.mark_due(A, "1.1", reason="poll")
    with sqlite3.connect(tmp_path / "state.db") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_database_lock_held_too_long_raises_state_unavailable(db_url: str, tmp_path: Path) -> None:
    store = open_store(db_url, busy_timeout=0.2)
    raw = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    try:
        raw.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        with pytest.raises(StateUnavailable) as caught:
            store.mark_due(A, "1.1", reason="poll")
        assert isinstance(caught.value, Retryable)
        assert caught.value.kind == "state-unavailable"
        assert "locked" in caught.value.message
        assert store.ping() is True  # reads still work under WAL
        raw.execute("ROLLBACK")
        store.mark_due(A, "1.1", reason="poll")  # and writes once the lock is gone
        assert store.counts()["due"] == 1
    finally:
        raw.close()
        store.close()


def test_threads_sharing_one_store_never_claim_the_same_study(store: StateStore) -> None:
    uids = [f"1.{n}" for n in range(400)]
    store.mark_many_due(A, [(uid, None) for uid in uids], reason="backfill")
    claimed: dict[str, list[str]] = {f"t{n}": [] for n in range(6)}
    errors: list[BaseException] = []
    start = threading.Barrier(len(claimed))

    def work(name: str) -> None:
        try:
            start.wait()
            while batch := store.claim(worker=name, limit=7, lease_seconds=300):
                claimed[name].extend(c.study_uid for c in batch)
                for c in batch:
                    store.complete(
                        A,
                        c.study_uid,
                        worker=name,
                        claimed_seq=c.claimed_seq,
                        fingerprint=None,
                        content_hash="h",
                        fhir_id=None,
                        fhir_version=None,
                        action="create",
                    )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(name,)) for name in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    every = [uid for batch in claimed.values() for uid in batch]
    assert sorted(every) == sorted(uids)  # each exactly once, none left behind
    assert store.counts()["synced"] == len(uids)
    assert sum(1 for batch in claimed.values() if batch) > 1


def test_url_handling() -> None:
    assert normalize_url("postgresql://u:p@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("sqlite:///x/state.db").database == "x/state.db"
    for bad in ("sqlite://", "sqlite:///:memory:", "mysql://u@h/db"):
        with pytest.raises(ValueError):
            normalize_url(bad)


def test_status_enum_matches_the_schema_check_constraint(store: StateStore) -> None:
    assert set(store.counts()) == {s.value for s in Status}

"""Marking studies due, coalescing events, claiming and leases (issue 4, "State store")."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from state_helpers import FakeClock

from bridge.state import Reason, StateStore, Status

A = "archive-a"


def claim_all(store: StateStore, worker: str = "w1", lease: float = 60.0) -> list[str]:
    return [c.study_uid for c in store.claim(worker=worker, limit=1000, lease_seconds=lease)]


def test_ten_events_for_one_study_coalesce_into_one_due_row(store: StateStore) -> None:
    reasons = [Reason.POLL, Reason.NOTIFICATION, Reason.STOW, "poll", "backfill"] * 2
    for reason in reasons:
        store.mark_due(A, "1.2.3", reason=reason)

    assert store.counts() == {
        "due": 1,
        "leased": 0,
        "synced": 0,
        "waiting": 0,
        "failed": 0,
        "deleted": 0,
    }
    study = store.get_study(A, "1.2.3")
    assert study is not None
    assert study.due_seq == 10
    assert study.reason is Reason.BACKFILL  # the latest event's reason
    assert claim_all(store) == ["1.2.3"]


def test_same_uid_in_two_archives_is_two_studies(store: StateStore) -> None:
    store.mark_due(A, "1.2.3", reason="poll")
    store.mark_due("archive-b", "1.2.3", reason="poll")

    claimed = store.claim(worker="w1", limit=10, lease_seconds=60)

    assert sorted(c.archive for c in claimed) == ["archive-a", "archive-b"]


def test_delayed_study_is_claimed_only_once_its_time_has_come(
    store: StateStore, clock: FakeClock
) -> None:
    store.mark_due(A, "1.2.3", reason="stow", delay=30)

    assert claim_all(store) == []
    clock.advance(29)
    assert claim_all(store) == []
    clock.advance(1)
    assert claim_all(store) == ["1.2.3"]


def test_earliest_due_time_wins_when_events_coalesce(store: StateStore, clock: FakeClock) -> None:
    store.mark_due(A, "late-then-early", reason="stow", delay=60)
    store.mark_due(A, "late-then-early", reason="poll")
    store.mark_due(A, "early-then-late", reason="poll")
    store.mark_due(A, "early-then-late", reason="stow", delay=60)

    assert sorted(claim_all(store)) == ["early-then-late", "late-then-early"]
    study = store.get_study(A, "early-then-late")
    assert study is not None and study.status is Status.LEASED


def test_claim_takes_oldest_due_first_and_honours_limit_and_archive(
    store: StateStore, clock: FakeClock
) -> None:
    for n in range(5):
        store.mark_due(A, f"1.{n}", reason="poll")
        clock.advance(1)
    store.mark_due("archive-b", "2.0", reason="poll")
    clock.advance(1)

    first = store.claim(worker="w1", limit=2, lease_seconds=60)
    other = store.claim(worker="w1", limit=10, lease_seconds=60, archive="archive-b")
    rest = store.claim(worker="w1", limit=10, lease_seconds=60)

    assert [c.study_uid for c in first] == ["1.0", "1.1"]
    assert [c.study_uid for c in other] == ["2.0"]
    assert [c.study_uid for c in rest] == ["1.2", "1.3", "1.4"]


def test_claim_sets_lease_and_counts_attempts(store: StateStore, clock: FakeClock) -> None:
    store.mark_due(A, "1.2.3", reason="poll", fingerprint="fp-1")

    (claimed,) = store.claim(worker="w1", limit=10, lease_seconds=45)

    assert claimed.attempts == 1
    assert claimed.claimed_seq == 1
    assert claimed.fingerprint == "fp-1"
    assert claimed.reason is Reason.POLL
    assert claimed.lease_expires_at == clock.now + timedelta(seconds=45)
    assert not claimed.taken_over
    study = store.get_study(A, "1.2.3")
    assert study is not None
    assert (study.status, study.lease_owner) == (Status.LEASED, "w1")


def test_leased_study_is_not_claimed_again_before_its_lease_expires(
    store: StateStore, clock: FakeClock
) -> None:
    store.mark_due(A, "1.2.3", reason="poll")
    assert claim_all(store, "w1", lease=30) == ["1.2.3"]

    clock.advance(29)
    store.mark_due(A, "1.2.3", reason="notification")  # an event does not free the lease

    assert claim_all(store, "w2") == []


def test_expired_lease_is_taken_over_by_another_worker(store: StateStore, clock: FakeClock) -> None:
    store.mark_due(A, "1.2.3", reason="poll")
    (first,) = store.claim(worker="w1", limit=10, lease_seconds=30)
    clock.advance(31)

    (second,) = store.claim(worker="w2", limit=10, lease_seconds=30)

    assert second.study_uid == "1.2.3"
    assert second.taken_over
    assert second.attempts == 2
    study = store.get_study(A, "1.2.3")
    assert study is not None and study.lease_owner == "w2"
    # the first worker wakes up late: its lease is gone, nothing is recorded for it
    late = store.complete(
        A,
        "1.2.3",
        worker="w1",
        claimed_seq=first.claimed_seq,
        fingerprint="fp",
        content_hash="h1",
        fhir_id="is-1",
        fhir_version="1",
        action="create",
    )
    assert late is False
    assert store.study_history("1.2.3") == []
    done = store.complete(
        A,
        "1.2.3",
        worker="w2",
        claimed_seq=second.claimed_seq,
        fingerprint="fp",
        content_hash="h2",
        fhir_id="is-1",
        fhir_version="1",
        action="create",
    )
    assert done is True
    study = store.get_study(A, "1.2.3")
    assert study is not None
    assert (study.status, study.content_hash) == (Status.SYNCED, "h2")


def test_renewed_lease_is_not_taken_over(store: StateStore, clock: FakeClock) -> None:
    store.mark_due(A, "1.2.3", reason="poll")
    claim_all(store, "w1", lease=30)
    clock.advance(20)

    assert store.renew_lease(A, "1.2.3", worker="w1", lease_seconds=30) is True
    assert store.renew_lease(A, "1.2.3", worker="w2", lease_seconds=30) is False
    clock.advance(20)  # 40 s after the claim, 20 s after the renewal

    assert claim_all(store, "w2") == []
    clock.advance(11)
    assert claim_all(store, "w2") == ["1.2.3"]


def test_fingerprints_returns_stored_values_and_omits_unknown_studies(store: StateStore) -> None:
    store.mark_many_due(A, [("1.1", "fp-1"), ("1.2", None)], reason="poll")
    store.mark_due(A, "1.1", reason="notification")  # no fingerprint: keep the stored one

    found = store.fingerprints(A, ["1.1", "1.2", "1.3"])

    assert found == {"1.1": "fp-1", "1.2": None}
    assert store.fingerprints("archive-b", ["1.1"]) == {}


def test_fingerprints_reads_more_uids_than_one_in_list(store: StateStore) -> None:
    uids = [f"2.25.{n}" for n in range(1234)]
    store.mark_many_due(A, [(uid, f"fp-{uid}") for uid in uids], reason="backfill")

    found = store.fingerprints(A, [*uids, "2.25.unknown"])

    assert found == {uid: f"fp-{uid}" for uid in uids}


def test_mark_many_due_merges_duplicates_and_coalesces_with_existing_rows(
    store: StateStore,
) -> None:
    store.mark_due(A, "1.1", reason="poll", fingerprint="old")

    count = store.mark_many_due(
        A, [("1.1", "new"), ("1.2", "a"), ("1.2", None), ("1.3", None)], reason="backfill"
    )

    assert count == 3
    assert store.fingerprints(A, ["1.1", "1.2", "1.3"]) == {"1.1": "new", "1.2": "a", "1.3": None}
    study = store.get_study(A, "1.1")
    assert study is not None
    assert (study.due_seq, study.reason) == (2, Reason.BACKFILL)
    assert store.counts()["due"] == 3


def test_mark_many_due_writes_10k_studies_well_under_a_second(store: StateStore) -> None:
    items = [(f"1.2.826.0.1.3680043.8.498.{n}", f"fp-{n}") for n in range(10_000)]

    started = time.perf_counter()
    store.mark_many_due(A, items, reason="backfill")
    first = time.perf_counter() - started
    started = time.perf_counter()
    store.mark_many_due(A, items, reason="poll")  # every row now an update
    second = time.perf_counter() - started

    assert store.counts()["due"] == 10_000
    assert first < 1.0, f"insert of 10k took {first:.2f} s"
    assert second < 1.0, f"update of 10k took {second:.2f} s"


def test_synced_study_becomes_due_again_on_a_new_event(store: StateStore) -> None:
    store.mark_due(A, "1.2.3", reason="poll", fingerprint="fp-1")
    (c,) = store.claim(worker="w1", limit=1, lease_seconds=60)
    store.complete(
        A,
        "1.2.3",
        worker="w1",
        claimed_seq=c.claimed_seq,
        fingerprint="fp-1",
        content_hash="h",
        fhir_id="is-1",
        fhir_version="1",
        action="create",
    )

    store.mark_due(A, "1.2.3", reason="poll", fingerprint="fp-2")

    study = store.get_study(A, "1.2.3")
    assert study is not None
    assert (study.status, study.attempts, study.fingerprint) == (Status.DUE, 0, "fp-2")
    (again,) = store.claim(worker="w1", limit=1, lease_seconds=60)
    # the last confirmed outcome travels with the claim (skip unchanged, If-Match)
    assert (again.content_hash, again.fhir_id, again.fhir_version) == ("h", "is-1", "1")


def test_bad_arguments_are_refused(store: StateStore) -> None:
    with pytest.raises(ValueError):
        store.mark_due(A, "1.2.3", reason="because")
    with pytest.raises(ValueError):
        store.mark_due(A, "1.2.3", reason="poll", delay=-1)
    with pytest.raises(ValueError):
        store.claim(worker="w1", limit=0, lease_seconds=60)
    with pytest.raises(ValueError):
        store.claim(worker="w1", limit=1, lease_seconds=0)
    assert store.counts()["due"] == 0

"""Recording outcomes: complete, retry later, fail, retry failed, delete, audit."""

from __future__ import annotations

import pytest
from state_helpers import FakeClock

from bridge.state import (
    AuditAction,
    AuditView,
    ClaimedStudy,
    Completion,
    FailureView,
    Reason,
    StateStore,
    Status,
)

A = "archive-a"
OUTCOME = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "invalid", "diagnostics": "bad modality"}],
}


def claim_one(store: StateStore, uid: str, worker: str = "w1") -> ClaimedStudy:
    store.mark_due(A, uid, reason="poll", fingerprint=f"fp-{uid}")
    (claimed,) = store.claim(worker=worker, limit=1, lease_seconds=60, archive=A)
    assert claimed.study_uid == uid
    return claimed


def complete(store: StateStore, c: ClaimedStudy, worker: str = "w1", **kw: object) -> bool:
    args: dict[str, object] = {
        "worker": worker,
        "claimed_seq": c.claimed_seq,
        "fingerprint": c.fingerprint,
        "content_hash": "hash-1",
        "fhir_id": "is-1",
        "fhir_version": "1",
        "action": "create",
    }
    args.update(kw)
    return store.complete(c.archive, c.study_uid, **args)  # type: ignore[arg-type]


def status(store: StateStore, uid: str) -> Status:
    study = store.get_study(A, uid)
    assert study is not None
    return study.status


def test_complete_marks_synced_resets_attempts_and_audits(
    store: StateStore, clock: FakeClock
) -> None:
    c = claim_one(store, "1.1")

    assert complete(store, c, status_code=201) is True

    study = store.get_study(A, "1.1")
    assert study is not None
    assert study.status is Status.SYNCED
    assert (study.content_hash, study.fhir_id, study.fhir_version) == ("hash-1", "is-1", "1")
    assert (study.attempts, study.lease_owner, study.next_attempt_at) == (0, None, None)
    assert study.synced_at == clock.now
    (audit,) = store.study_history("1.1")
    assert isinstance(audit, AuditView)
    assert (audit.action, audit.fhir_type, audit.fhir_id, audit.status_code) == (
        AuditAction.CREATE,
        "ImagingStudy",
        "is-1",
        201,
    )
    assert store.claim(worker="w1", limit=10, lease_seconds=60) == []


def test_event_during_lease_makes_the_study_due_again_after_complete(store: StateStore) -> None:
    c = claim_one(store, "1.1")
    store.mark_due(A, "1.1", reason="notification", fingerprint="fp-newer")

    assert complete(store, c, fingerprint="fp-older") is True

    study = store.get_study(A, "1.1")
    assert study is not None
    assert study.status is Status.DUE
    # what the FHIR server confirmed is kept, but not the stale fingerprint
    assert (study.content_hash, study.fhir_id, study.fingerprint) == ("hash-1", "is-1", "fp-newer")
    (again,) = store.claim(worker="w2", limit=1, lease_seconds=60)
    assert again.claimed_seq == c.claimed_seq + 1
    assert complete(store, again, worker="w2", action="update") is True
    assert status(store, "1.1") is Status.SYNCED


def test_delayed_event_during_lease_keeps_its_delay_after_complete(
    store: StateStore, clock: FakeClock
) -> None:
    c = claim_one(store, "1.1")
    store.mark_due(A, "1.1", reason="stow", delay=30)  # debounce: more instances coming

    complete(store, c)

    assert store.claim(worker="w1", limit=1, lease_seconds=60) == []
    clock.advance(30)
    assert [x.study_uid for x in store.claim(worker="w1", limit=1, lease_seconds=60)] == ["1.1"]


def test_complete_with_a_lost_lease_returns_false_and_records_nothing(store: StateStore) -> None:
    c = claim_one(store, "1.1")

    assert complete(store, c, worker="someone-else") is False
    assert complete(store, c, claimed_seq=c.claimed_seq + 7) is False  # not this claim

    study = store.get_study(A, "1.1")
    assert study is not None
    assert (study.status, study.content_hash, study.lease_owner) == (Status.LEASED, None, "w1")
    assert store.study_history("1.1") == []


def test_complete_none_values_keep_the_stored_outcome(store: StateStore) -> None:
    complete(store, claim_one(store, "1.1"))
    store.mark_due(A, "1.1", reason="reconcile")
    (c,) = store.claim(worker="w1", limit=1, lease_seconds=60)

    complete(store, c, content_hash=None, fhir_id=None, fhir_version=None, action="skip-unchanged")

    study = store.get_study(A, "1.1")
    assert study is not None
    assert (study.content_hash, study.fhir_id, study.fhir_version) == ("hash-1", "is-1", "1")
    actions = [e.action for e in store.study_history("1.1") if isinstance(e, AuditView)]
    assert actions == [AuditAction.CREATE, AuditAction.SKIP_UNCHANGED]


def test_complete_many_records_held_leases_and_refuses_lost_ones(
    store: StateStore, clock: FakeClock
) -> None:
    store.mark_many_due(A, [(f"1.{n}", None) for n in range(3)], reason="backfill")
    claimed = store.claim(worker="w1", limit=3, lease_seconds=10)
    clock.advance(11)
    (stolen,) = store.claim(worker="w2", limit=1, lease_seconds=60)  # oldest: 1.0
    store.mark_due(A, "1.2", reason="notification")

    done = store.complete_many(
        [
            Completion(c.archive, c.study_uid, c.claimed_seq, AuditAction.UPDATE, fhir_id=f"id-{n}")
            for n, c in enumerate(claimed)
        ],
        worker="w1",
    )

    lost = [c.study_uid == stolen.study_uid for c in claimed]
    assert done == [not x for x in lost]
    assert status(store, stolen.study_uid) is Status.LEASED
    assert status(store, "1.1") is Status.SYNCED
    assert status(store, "1.2") is Status.DUE  # event during the lease
    assert len(store.study_history(stolen.study_uid)) == 0


def test_unknown_audit_action_is_refused_before_anything_is_written(store: StateStore) -> None:
    c = claim_one(store, "1.1")

    with pytest.raises(ValueError):
        complete(store, c, action="upsert")

    assert status(store, "1.1") is Status.LEASED


def test_retry_later_backs_off_keeps_attempts_and_records_the_error(
    store: StateStore, clock: FakeClock
) -> None:
    c = claim_one(store, "1.1")

    assert (
        store.retry_later(
            A,
            "1.1",
            worker="w1",
            claimed_seq=c.claimed_seq,
            kind="fhir-unavailable",
            message="503 from FHIR",
            delay_seconds=120,
        )
        is True
    )

    study = store.get_study(A, "1.1")
    assert study is not None
    assert (study.status, study.reason, study.last_error_kind, study.last_error) == (
        Status.DUE,
        Reason.RETRY,
        "fhir-unavailable",
        "503 from FHIR",
    )
    assert study.lease_owner is None
    assert store.claim(worker="w1", limit=1, lease_seconds=60) == []
    clock.advance(120)
    (again,) = store.claim(worker="w1", limit=1, lease_seconds=60)
    assert again.attempts == 2
    (failure,) = store.failure_history("1.1")
    assert (failure.kind, failure.attempt, failure.permanent) == ("fhir-unavailable", 1, False)
    assert store.failures() == []  # retryable: not a dead letter
    complete(store, again)
    study = store.get_study(A, "1.1")
    assert study is not None and (study.last_error, study.attempts) == (None, 0)


def test_retry_later_waiting_parks_the_study_with_status_waiting(
    store: StateStore, clock: FakeClock
) -> None:
    c = claim_one(store, "1.1")

    store.retry_later(
        A,
        "1.1",
        worker="w1",
        claimed_seq=c.claimed_seq,
        kind="patient-not-found",
        message="no Patient with MRN",
        delay_seconds=600,
        waiting=True,
    )

    assert status(store, "1.1") is Status.WAITING
    assert store.counts()["waiting"] == 1
    clock.advance(600)
    assert [x.study_uid for x in store.claim(worker="w1", limit=1, lease_seconds=60)] == ["1.1"]


def test_a_new_event_wakes_a_waiting_study_at_once(store: StateStore) -> None:
    c = claim_one(store, "1.1")
    store.retry_later(
        A,
        "1.1",
        worker="w1",
        claimed_seq=c.claimed_seq,
        kind="patient-not-found",
        message="-",
        delay_seconds=600,
        waiting=True,
    )

    store.mark_due(A, "1.1", reason="notification")

    assert status(store, "1.1") is Status.DUE
    assert len(store.claim(worker="w1", limit=1, lease_seconds=60)) == 1


def test_fail_records_a_dead_letter_and_never_blocks_other_studies(store: StateStore) -> None:
    store.mark_many_due(A, [("1.1", None), ("1.2", None)], reason="poll")
    bad, good = store.claim(worker="w1", limit=2, lease_seconds=60)

    assert (
        store.fail(
            A,
            bad.study_uid,
            worker="w1",
            claimed_seq=bad.claimed_seq,
            kind="fhir-rejected",
            message="HTTP 422",
            operation_outcome=OUTCOME,
        )
        is True
    )
    assert complete(store, good) is True

    assert status(store, bad.study_uid) is Status.FAILED
    assert status(store, good.study_uid) is Status.SYNCED
    (failure,) = store.failures()
    assert (failure.study_uid, failure.kind, failure.message, failure.permanent) == (
        bad.study_uid,
        "fhir-rejected",
        "HTTP 422",
        True,
    )
    assert failure.operation_outcome == OUTCOME
    assert store.failures(archive="archive-b") == []
    assert store.claim(worker="w1", limit=10, lease_seconds=60) == []


def test_failures_lists_each_failed_study_once_with_its_latest_failure(
    store: StateStore, clock: FakeClock
) -> None:
    for message in ("first", "second"):
        c = claim_one(store, "1.1")
        store.fail(
            A, "1.1", worker="w1", claimed_seq=c.claimed_seq, kind="dicom-data", message=message
        )
        clock.advance(1)

    (failure,) = store.failures()
    assert failure.message == "second"
    assert [f.message for f in store.failure_history("1.1")] == ["first", "second"]


def test_fail_after_an_event_during_the_lease_makes_the_study_due(store: StateStore) -> None:
    c = claim_one(store, "1.1")
    store.mark_due(A, "1.1", reason="poll", fingerprint="fixed-data")

    store.fail(
        A,
        "1.1",
        worker="w1",
        claimed_seq=c.claimed_seq,
        kind="dicom-data",
        message="missing StudyInstanceUID",
    )

    assert status(store, "1.1") is Status.DUE
    assert len(store.failure_history("1.1")) == 1


def test_failed_study_becomes_due_again_on_a_new_event_with_attempts_reset(
    store: StateStore,
) -> None:
    c = claim_one(store, "1.1")
    store.fail(A, "1.1", worker="w1", claimed_seq=c.claimed_seq, kind="x", message="y")

    store.mark_due(A, "1.1", reason="poll", fingerprint="changed")

    study = store.get_study(A, "1.1")
    assert study is not None
    assert (study.status, study.attempts) == (Status.DUE, 0)


def test_fail_or_retry_with_a_lost_lease_records_nothing(store: StateStore) -> None:
    c = claim_one(store, "1.1")

    assert (
        store.fail(A, "1.1", worker="w2", claimed_seq=c.claimed_seq, kind="x", message="y") is False
    )
    assert (
        store.retry_later(
            A, "1.1", worker="w2", claimed_seq=c.claimed_seq, kind="x", message="y", delay_seconds=1
        )
        is False
    )
    assert store.failure_history("1.1") == []
    assert status(store, "1.1") is Status.LEASED


def test_retry_failed_requeues_one_study_or_all(store: StateStore) -> None:
    for uid in ("1.1", "1.2", "1.3"):
        c = claim_one(store, uid)
        store.fail(A, uid, worker="w1", claimed_seq=c.claimed_seq, kind="x", message="y")

    with pytest.raises(ValueError):
        store.retry_failed()
    assert store.retry_failed("1.2") == 1
    assert status(store, "1.2") is Status.DUE
    study = store.get_study(A, "1.2")
    assert study is not None and study.reason is Reason.MANUAL
    assert store.retry_failed("1.2") == 0  # no longer failed
    assert store.retry_failed(all=True) == 2
    assert store.counts()["failed"] == 0
    assert len(store.claim(worker="w1", limit=10, lease_seconds=60)) == 3


def test_mark_deleted_clears_the_fingerprint_and_audits(store: StateStore) -> None:
    c = claim_one(store, "1.1")
    complete(store, c)

    assert (
        store.mark_deleted(
            A, "1.1", action="mark-entered-in-error", fhir_version="2", status_code=200
        )
        is True
    )

    study = store.get_study(A, "1.1")
    assert study is not None
    assert (study.status, study.fingerprint, study.fhir_version) == (Status.DELETED, None, "2")
    last = store.study_history("1.1")[-1]
    assert isinstance(last, AuditView)
    assert (last.action, last.fhir_id) == (AuditAction.MARK_ENTERED_IN_ERROR, "is-1")
    # the study is sent to the archive again: the poller sees no fingerprint and marks it
    assert store.fingerprints(A, ["1.1"]) == {"1.1": None}
    store.mark_due(A, "1.1", reason="poll", fingerprint="fp")
    assert status(store, "1.1") is Status.DUE


def test_mark_deleted_as_an_outcome_needs_the_lease(store: StateStore) -> None:
    c = claim_one(store, "1.1")

    assert store.mark_deleted(A, "1.1", worker="w2", claimed_seq=c.claimed_seq) is False
    assert store.mark_deleted(A, "1.1", worker="w1", claimed_seq=c.claimed_seq) is True
    assert status(store, "1.1") is Status.DELETED


def test_mark_deleted_of_an_unknown_study_keeps_a_record(store: StateStore) -> None:
    assert store.mark_deleted(A, "9.9", fhir_id="orphan-1") is True

    assert status(store, "9.9") is Status.DELETED
    with pytest.raises(ValueError):
        store.mark_deleted(A, "9.9", action="update")


def test_study_history_merges_writes_and_failures_in_time_order(
    store: StateStore, clock: FakeClock
) -> None:
    c = claim_one(store, "1.1")
    store.retry_later(
        A,
        "1.1",
        worker="w1",
        claimed_seq=c.claimed_seq,
        kind="fhir-unavailable",
        message="timeout",
        delay_seconds=5,
    )
    clock.advance(5)
    (c,) = store.claim(worker="w1", limit=1, lease_seconds=60)
    clock.advance(1)
    store.record_audit(
        A,
        "1.1",
        action="create",
        fhir_type="Patient",
        fhir_id="p-1",
        fhir_version="1",
        status_code=201,
    )
    clock.advance(1)
    complete(store, c)

    history = store.study_history("1.1")

    assert [type(e) for e in history] == [FailureView, AuditView, AuditView]
    assert [getattr(e, "fhir_type", None) for e in history] == [None, "Patient", "ImagingStudy"]
    assert [e.at for e in history] == sorted(e.at for e in history)


def test_audit_of_a_skipped_write_names_the_current_resource_version(store: StateStore) -> None:
    complete(store, claim_one(store, "1.1"), fhir_version="3")
    store.mark_due(A, "1.1", reason="poll")
    (single,) = store.claim(worker="w1", limit=1, lease_seconds=60)
    complete(store, single, fhir_id=None, fhir_version=None, action="skip-unchanged")
    store.mark_due(A, "1.1", reason="poll")
    (batched,) = store.claim(worker="w1", limit=1, lease_seconds=60)
    store.complete_many(
        [Completion(A, "1.1", batched.claimed_seq, AuditAction.SKIP_UNCHANGED)], worker="w1"
    )

    audits = [e for e in store.study_history("1.1") if isinstance(e, AuditView)]
    assert [(a.action, a.fhir_id, a.fhir_version) for a in audits] == [
        (AuditAction.CREATE, "is-1", "3"),
        (AuditAction.SKIP_UNCHANGED, "is-1", "3"),
        (AuditAction.SKIP_UNCHANGED, "is-1", "3"),
    ]


def test_fail_after_a_delayed_event_keeps_the_event_delay(
    store: StateStore, clock: FakeClock
) -> None:
    c = claim_one(store, "1.1")
    store.mark_due(A, "1.1", reason="stow", delay=30)

    store.fail(A, "1.1", worker="w1", claimed_seq=c.claimed_seq, kind="dicom-data", message="x")

    assert store.claim(worker="w1", limit=1, lease_seconds=60) == []
    clock.advance(30)
    assert len(store.claim(worker="w1", limit=1, lease_seconds=60)) == 1


def test_requeue_synced_touches_only_synced_studies_and_force_forgets_the_hash(
    store: StateStore,
) -> None:
    for uid in ("1.1", "1.2", "1.3", "1.4"):
        complete(store, claim_one(store, uid))
    c = claim_one(store, "1.5")
    store.fail(A, "1.5", worker="w1", claimed_seq=c.claimed_seq, kind="x", message="y")
    store.mark_due("archive-b", "1.1", reason="poll")
    leased = claim_one(store, "1.6")

    assert store.requeue_synced(["1.1", "1.5", "1.6", "9.9"]) == 1  # only the synced one
    study = store.get_study(A, "1.1")
    assert study is not None and study.status is Status.DUE and study.reason is Reason.RESYNC
    assert study.content_hash == "hash-1"  # kept: an unchanged resource is not written
    assert status(store, "1.5") is Status.FAILED and status(store, "1.6") is Status.LEASED
    assert store.requeue_synced(archive="archive-b") == 0
    assert store.requeue_synced(force=True) == 3  # 1.2 - 1.4
    forced = store.get_study(A, "1.3")
    assert forced is not None and forced.content_hash is None
    assert complete(store, leased)  # the leased row's worker is undisturbed

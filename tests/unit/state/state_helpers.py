"""Helpers shared by the state store's unit tests (importable as ``state_helpers``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, MetaData, insert

from bridge.state import StateStore, Status


class FakeClock:
    """A clock that only moves when told to (``advance``)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


#: the head revision of the state store's migrations
HEAD = "0007"

#: the moment the revision-0001 rows below are written relative to
SEED_NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
SEED_OUTCOME = {"resourceType": "OperationOutcome", "issue": [{"severity": "error"}]}


def seed_revision_0001(engine: Engine, archive: str) -> None:
    """Write rows of every kind into a database whose schema is at revision 0001.

    Written through tables reflected from the database (not our models, which describe
    the head revision), so the data is what a revision-0001 bridge would have left.
    """
    meta = MetaData()
    meta.reflect(engine)
    assert "ready_at" not in meta.tables["bridge_study"].c  # really revision 0001
    now = SEED_NOW
    base: dict[str, Any] = {
        "archive": archive,
        "reason": "poll",
        "attempts": 0,
        "due_seq": 1,
        "claimed_seq": 0,
        "first_seen_at": now - timedelta(days=1),
        "updated_at": now - timedelta(minutes=1),
        **dict.fromkeys(
            [
                "fingerprint",
                "content_hash",
                "fhir_id",
                "fhir_version",
                "next_attempt_at",
                "last_error_kind",
                "last_error",
                "lease_owner",
                "lease_expires_at",
                "synced_at",
            ]
        ),
    }
    studies = [
        {
            **base,
            "study_uid": "due-1",
            "status": "due",
            "fingerprint": "fp-due",
            "next_attempt_at": now - timedelta(seconds=60),
        },
        {
            **base,
            "study_uid": "backfilled-1",
            "status": "due",
            "reason": "backfill",
            "next_attempt_at": now - timedelta(seconds=120),
        },
        {
            **base,
            "study_uid": "leased-1",
            "status": "leased",
            "attempts": 1,
            "due_seq": 3,
            "claimed_seq": 3,
            "lease_owner": "old-worker",
            "lease_expires_at": now - timedelta(seconds=10),
            "next_attempt_at": now - timedelta(seconds=600),
        },
        {
            **base,
            "study_uid": "waiting-1",
            "status": "waiting",
            "next_attempt_at": now + timedelta(seconds=300),
            "last_error_kind": "patient-not-found",
            "last_error": "no such MRN",
        },
        {
            **base,
            "study_uid": "synced-1",
            "status": "synced",
            "fingerprint": "fp-synced",
            "content_hash": "sha256:abc",
            "fhir_id": "is-77",
            "fhir_version": "4",
            "synced_at": now - timedelta(hours=1),
        },
        {
            **base,
            "study_uid": "failed-1",
            "status": "failed",
            "attempts": 1,
            "last_error_kind": "fhir-rejected",
            "last_error": "HTTP 422",
        },
    ]
    with engine.begin() as conn:
        conn.execute(insert(meta.tables["bridge_study"]), studies)
        conn.execute(
            insert(meta.tables["bridge_failure"]),
            [
                {
                    "archive": archive,
                    "study_uid": "failed-1",
                    "at": now - timedelta(hours=2),
                    "kind": "fhir-rejected",
                    "message": "HTTP 422",
                    "operation_outcome": SEED_OUTCOME,
                    "attempt": 1,
                    "permanent": True,
                }
            ],
        )
        conn.execute(
            insert(meta.tables["bridge_audit"]),
            [
                {
                    "archive": archive,
                    "study_uid": "synced-1",
                    "at": now - timedelta(hours=1),
                    "action": "update",
                    "fhir_type": "ImagingStudy",
                    "fhir_id": "is-77",
                    "fhir_version": "4",
                    "status_code": 200,
                }
            ],
        )
        conn.execute(
            insert(meta.tables["bridge_checkpoint"]),
            [{"name": f"backfill:{archive}", "value": "2019-06", "updated_at": now}],
        )


def check_seeded_data_after_upgrade(store: StateStore, archive: str) -> None:
    """What :func:`seed_revision_0001` wrote, read back through the head-revision store."""
    synced = store.get_study(archive, "synced-1")
    assert synced is not None
    assert synced.status is Status.SYNCED
    assert (synced.fingerprint, synced.content_hash, synced.fhir_id, synced.fhir_version) == (
        "fp-synced",
        "sha256:abc",
        "is-77",
        "4",
    )
    assert synced.synced_at == SEED_NOW - timedelta(hours=1)
    waiting = store.get_study(archive, "waiting-1")
    assert waiting is not None and waiting.last_error == "no such MRN"
    assert store.get_checkpoint(f"backfill:{archive}") == "2019-06"
    (failure,) = store.failures(archive=archive)
    assert (failure.study_uid, failure.operation_outcome) == ("failed-1", SEED_OUTCOME)
    (audit,) = store.study_history("synced-1", archive=archive)
    assert audit.at == SEED_NOW - timedelta(hours=1)
    assert store.oldest_due_age(archive) == 120.0
    # revision 0005 put the queued rows of real-time reasons in the real-time lane, the
    # others in the bulk lane
    lanes = {uid: store.get_study(archive, uid) for uid in ("waiting-1", "synced-1")}
    assert {uid: v.lane.value for uid, v in lanes.items() if v is not None} == {
        "waiting-1": "realtime", "synced-1": "bulk"}
    # revision 0002 computed ready_at: the due rows and the expired lease are claimable,
    # oldest due time first in each lane; the waiting row only after its time
    claimed = store.claim(worker="new-worker", limit=10, lease_seconds=60, archive=archive)
    assert [(c.study_uid, c.taken_over, c.lane.value) for c in claimed] == [
        ("due-1", False, "realtime"),
        ("leased-1", True, "realtime"),
        ("backfilled-1", False, "bulk"),
    ]
    assert claimed[1].attempts == 2
    assert claimed[0].fingerprint == "fp-due"
    # revision 0003 added the shared replay memory of signed notifications
    assert store.remember_signature("0" * 64, ttl_seconds=60)
    assert not store.remember_signature("0" * 64, ttl_seconds=60)
    # revision 0004 added the mapping warnings: none yet for studies synced before it
    assert store.warned_study_count(archive) == 0
    assert store.study_warnings("synced-1", archive=archive) == []

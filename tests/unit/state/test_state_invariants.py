"""Random sequences of queue operations, checked against the queue's invariants.

* ``ready_at`` (what the claim query reads) is set exactly for claimable rows: the due
  time of due/waiting rows, the lease expiry of leased rows, NULL for the others.
* No event is ever lost: whenever an outcome leaves a study synced or failed, the claim
  it answers was made after the study's last event; otherwise the study is due again.
* Lanes (issue 19): a queued study is in the real-time lane exactly when a real-time
  event (here ``poll``) came since it was last queued afresh; bulk events (``backfill``,
  ``failures retry``) never move it out, outcomes keep its lane.
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest
from state_helpers import FakeClock

from bridge.state import ClaimedStudy, StateStore, Status

A = "archive-a"
UIDS = [f"1.{n}" for n in range(10)]


def check_lanes(db: Path, realtime: set[str]) -> None:
    with sqlite3.connect(db) as raw:
        rows = raw.execute(
            "SELECT study_uid, lane FROM bridge_study WHERE status IN ('due', 'waiting', 'leased')"
        ).fetchall()
    assert {uid for uid, lane in rows if lane == "realtime"} == {
        uid for uid, _ in rows if uid in realtime}, rows


def queued(store: StateStore, uid: str) -> bool:
    study = store.get_study(A, uid)
    return study is not None and study.status in (Status.DUE, Status.WAITING, Status.LEASED)


def check_ready_at(db: Path) -> None:
    with sqlite3.connect(db) as raw:
        rows = raw.execute(
            "SELECT study_uid, status, ready_at, next_attempt_at, lease_expires_at"
            " FROM bridge_study"
        ).fetchall()
    for uid, status, ready_at, next_at, lease_expires in rows:
        if status in ("due", "waiting"):
            assert ready_at is not None and ready_at == next_at, (uid, status)
        elif status == "leased":
            assert ready_at is not None and ready_at == lease_expires, (uid, status)
        else:
            assert ready_at is None, (uid, status)


@pytest.mark.parametrize("seed", range(5))
def test_random_operations_keep_the_queue_invariants(
    store: StateStore, clock: FakeClock, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    last_event: dict[str, int] = {}
    claims: list[tuple[ClaimedStudy, str, int]] = []  # (claim, worker, tick of the claim)

    def outcome_respects_events(claim: ClaimedStudy, claimed_at: int) -> None:
        study = store.get_study(A, claim.study_uid)
        assert study is not None
        if study.status in (Status.SYNCED, Status.FAILED):
            assert claimed_at > last_event[claim.study_uid], "an event was lost"
        else:
            assert study.status is Status.DUE
            assert last_event[claim.study_uid] > claimed_at

    deleted: set[str] = set()
    #: studies with a real-time event since they were last queued afresh (the lanes' model)
    realtime: set[str] = set()
    for tick in range(1, 401):
        op = rng.choice(
            [
                "mark",
                "mark",
                "many",
                "claim",
                "claim",
                "complete",
                "complete",
                "retry",
                "fail",
                "renew",
                "delete",
                "retry_failed",
            ]
        )
        uid = rng.choice(UIDS)
        if op == "mark":
            store.mark_due(
                A,
                uid,
                reason="poll",
                delay=rng.choice([0, 0, 10]),
                fingerprint=rng.choice([None, f"fp{tick}"]),
            )
            last_event[uid] = tick
            realtime.add(uid)
        elif op == "many":
            chosen = rng.sample(UIDS, 4)
            realtime.difference_update(u for u in chosen if not queued(store, u))
            store.mark_many_due(A, [(u, None) for u in chosen], reason="backfill")
            last_event.update(dict.fromkeys(chosen, tick))
        elif op == "claim":
            worker = rng.choice(["w1", "w2"])
            for c in store.claim(
                worker=worker, limit=rng.randint(1, 4), lease_seconds=rng.choice([5, 60])
            ):
                claims.append((c, worker, tick))
        elif op in ("complete", "retry", "fail", "renew") and claims:
            claim, worker, claimed_at = claims.pop(rng.randrange(len(claims)))
            if op == "complete":
                if store.complete(
                    A,
                    claim.study_uid,
                    worker=worker,
                    claimed_seq=claim.claimed_seq,
                    fingerprint=None,
                    content_hash=f"h{tick}",
                    fhir_id="id",
                    fhir_version="1",
                    action="update",
                ):
                    outcome_respects_events(claim, claimed_at)
            elif op == "fail":
                if store.fail(
                    A,
                    claim.study_uid,
                    worker=worker,
                    claimed_seq=claim.claimed_seq,
                    kind="dicom-data",
                    message="bad",
                ):
                    outcome_respects_events(claim, claimed_at)
            elif op == "retry":
                if store.retry_later(
                    A,
                    claim.study_uid,
                    worker=worker,
                    claimed_seq=claim.claimed_seq,
                    kind="fhir-unavailable",
                    message="503",
                    delay_seconds=rng.choice([0, 20]),
                    waiting=rng.random() < 0.3,
                ):
                    assert store.get_study(A, claim.study_uid).status in (  # type: ignore[union-attr]
                        Status.DUE,
                        Status.WAITING,
                    )
            elif store.renew_lease(A, claim.study_uid, worker=worker, lease_seconds=60):
                claims.append((claim, worker, claimed_at))
        elif op == "delete":
            store.mark_deleted(A, uid)
            deleted.add(uid)
            realtime.discard(uid)
        elif op == "retry_failed":
            for study_uid in [f.study_uid for f in store.failures(limit=1000)]:
                last_event[study_uid] = tick
                realtime.discard(study_uid)
            store.retry_failed(all=True)
        clock.advance(rng.choice([0, 1, 3, 10]))
        check_ready_at(tmp_path / "state.db")
        check_lanes(tmp_path / "state.db", realtime)
        assert sum(f.depth for f in store.lanes()) == store.queue_depth()

    # finally nothing is stuck: with time passing, every open study can be claimed
    clock.advance(3600)
    open_studies = store.queue_depth()
    drained = 0
    while batch := store.claim(worker="final", limit=100, lease_seconds=60):
        drained += len(batch)
        for c in batch:
            assert store.complete(
                A,
                c.study_uid,
                worker="final",
                claimed_seq=c.claimed_seq,
                fingerprint=None,
                content_hash="h",
                fhir_id="id",
                fhir_version="1",
                action="update",
            )
    assert drained == open_studies
    assert store.queue_depth() == 0
    counts = store.counts()
    assert counts["synced"] + counts["failed"] + counts["deleted"] == len(set(last_event) | deleted)

"""The warnings of each study's latest mapping: replaced with every outcome of an attempt that
mapped the study, kept when the outcome carries none, cleared on delete; counted by code."""

from __future__ import annotations

from datetime import timedelta

from state_helpers import FakeClock

from bridge.state import ClaimedStudy, Completion, StateStore, Status, StudyWarning

A, B = "archive-a", "archive-b"

BODY = StudyWarning(code="unknown-body-part", tag="(0018,0015) BodyPartExamined",
                    message="unknown body part", where="series 1.1.1", value="ELBOWX")
DATE = StudyWarning(code="invalid-date", tag="(0008,0020) StudyDate",
                    message="not a valid date (DA, PS3.5 6.2)")
ZONE = StudyWarning(code="no-timezone", tag="(0008,0201) TimezoneOffsetFromUTC",
                    message="absent and the mapping sets no timezone")


def claim(store: StateStore, uid: str, archive: str = A) -> ClaimedStudy:
    store.mark_due(archive, uid, reason="poll")
    (claimed,) = store.claim(worker="w1", limit=1, lease_seconds=60, archive=archive)
    assert claimed.study_uid == uid
    return claimed


def complete(store: StateStore, c: ClaimedStudy, warnings: list[StudyWarning] | None,
             worker: str = "w1") -> bool:
    return store.complete(c.archive, c.study_uid, worker=worker, claimed_seq=c.claimed_seq,
                          fingerprint=None, content_hash="h", fhir_id="is-1", fhir_version="1",
                          action="create", warnings=warnings)


def stored(store: StateStore, uid: str) -> list[StudyWarning]:
    return [StudyWarning(code=w.code, tag=w.tag, message=w.message, where=w.where,
                         value=w.value) for w in store.study_warnings(uid)]


def test_a_completion_replaces_the_warnings_and_none_keeps_them(
    store: StateStore, clock: FakeClock
) -> None:
    assert complete(store, claim(store, "1.1"), [BODY, DATE])
    assert stored(store, "1.1") == [BODY, DATE]  # in the order the mapping gave them
    (first,) = {w.at for w in store.study_warnings("1.1")}
    assert first == clock.now

    clock.advance(60)
    assert complete(store, claim(store, "1.1"), None)  # e.g. a write made elsewhere
    assert stored(store, "1.1") == [BODY, DATE]

    assert complete(store, claim(store, "1.1"), [ZONE])
    assert stored(store, "1.1") == [ZONE]
    assert {w.at for w in store.study_warnings("1.1")} == {clock.now}

    assert complete(store, claim(store, "1.1"), [])  # the mapping was fixed
    assert store.study_warnings("1.1") == []
    assert store.warned_study_count() == 0


def test_a_lost_lease_records_no_warnings(store: StateStore, clock: FakeClock) -> None:
    c = claim(store, "1.1")
    clock.advance(61)  # the lease expires and another worker takes the study
    store.claim(worker="w2", limit=1, lease_seconds=60)
    assert not complete(store, c, [BODY])
    assert not store.retry_later(A, "1.1", worker="w1", claimed_seq=c.claimed_seq,
                                 kind="fhir-unavailable", message="503", delay_seconds=5,
                                 warnings=[BODY])
    assert store.study_warnings("1.1") == []


def test_retry_and_failure_of_a_mapped_study_record_its_warnings(store: StateStore) -> None:
    c = claim(store, "1.1")
    assert store.retry_later(A, "1.1", worker="w1", claimed_seq=c.claimed_seq,
                             kind="fhir-unavailable", message="503", delay_seconds=0,
                             warnings=[BODY])
    assert stored(store, "1.1") == [BODY]

    c = claim(store, "1.1")
    assert store.fail(A, "1.1", worker="w1", claimed_seq=c.claimed_seq, kind="fhir-rejected",
                      message="422", warnings=[DATE])
    assert stored(store, "1.1") == [DATE]
    view = store.get_study(A, "1.1")
    assert view is not None and view.status is Status.FAILED

    c = claim(store, "1.1")  # not mapped this time (the archive was down): warnings kept
    assert store.retry_later(A, "1.1", worker="w1", claimed_seq=c.claimed_seq,
                             kind="archive-unavailable", message="down", delay_seconds=0)
    assert stored(store, "1.1") == [DATE]


def test_complete_many_replaces_the_warnings_of_the_recorded_studies_only(
    store: StateStore,
) -> None:
    store.mark_many_due(A, [("1.1", None), ("1.2", None), ("1.3", None)], reason="poll")
    claims = {c.study_uid: c for c in store.claim(worker="w1", limit=3, lease_seconds=60)}
    assert complete(store, claims["1.3"], [ZONE])  # recorded on its own first
    done = [
        Completion(archive=A, study_uid=uid, claimed_seq=claims[uid].claimed_seq,
                   action="create", warnings=warnings)
        for uid, warnings in (("1.1", (BODY,)), ("1.2", ()), ("1.3", (DATE,)))
    ]
    assert store.complete_many(done, worker="w1") == [True, True, False]
    assert stored(store, "1.1") == [BODY]
    assert stored(store, "1.2") == []
    assert stored(store, "1.3") == [ZONE]  # that lease was gone: nothing recorded


def test_warnings_are_counted_per_code_and_listed_newest_first(
    store: StateStore, clock: FakeClock
) -> None:
    assert complete(store, claim(store, "1.1"), [BODY, DATE])
    clock.advance(10)
    assert complete(store, claim(store, "1.2"), [BODY, ZONE])
    clock.advance(10)
    assert complete(store, claim(store, "2.1", archive=B), [DATE])
    assert complete(store, claim(store, "1.3"), [])

    assert store.warned_study_count() == 3
    assert store.warned_study_count(A) == 2
    assert store.warning_counts() == {"unknown-body-part": 2, "invalid-date": 2,
                                      "no-timezone": 1}
    assert store.warning_counts(archive=B) == {"invalid-date": 1}

    listed = store.studies_with_warnings()
    assert [(s.archive, s.study_uid) for s in listed] == [(B, "2.1"), (A, "1.2"), (A, "1.1")]
    first = listed[2]
    assert (first.status, first.warnings, first.codes) == (
        Status.SYNCED, 2, ("invalid-date", "unknown-body-part"))
    assert first.at == clock.now - timedelta(seconds=20)

    by_code = store.studies_with_warnings(code="unknown-body-part")
    assert [s.study_uid for s in by_code] == ["1.2", "1.1"]
    assert by_code[0].codes == ("no-timezone", "unknown-body-part")  # all its codes
    assert [s.study_uid for s in store.studies_with_warnings(limit=1)] == ["2.1"]
    assert store.studies_with_warnings(code="invalid-date", archive=A)[0].study_uid == "1.1"


def test_a_deleted_study_loses_its_warnings(store: StateStore) -> None:
    assert complete(store, claim(store, "1.1"), [BODY])
    assert complete(store, claim(store, "1.2"), [BODY])
    assert store.mark_deleted(A, "1.1", action="delete")
    assert store.study_warnings("1.1") == []
    assert stored(store, "1.2") == [BODY]

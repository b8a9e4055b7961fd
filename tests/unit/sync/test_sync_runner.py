"""The sync runner's decisions, against in-process fakes of the archive and the FHIR server:
which error is retried and which recorded, per batch entry; Retry-After; patients not yet
in the EHR; unchanged content not written again (issue 4, "Errors" and "FHIR side")."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest

from bridge.archive.client import DicomwebClient
from bridge.config import ArchiveSettings
from bridge.errors import ArchiveUnavailable
from bridge.state import AuditView, Status
from bridge.sync.runner import DrainStats
from tests.unit.sync.fakes import (
    ARCHIVE,
    OUTCOME_422,
    FakeArchive,
    FakeFhir,
    Rig,
    studies,
)

PATIENT_ID = "00100020"
STUDY_DESCRIPTION = "00081030"


def _known(fhir: FakeFhir, *studies_: object) -> None:
    for s in studies_:
        t = s.truth  # type: ignore[attr-defined]
        fhir.patients.add(f"{t.patient_system}|{t.patient_id}")


def _status(rig: Rig, uid: str) -> Status:
    view = rig.store.get_study(ARCHIVE, uid)
    assert view is not None
    return view.status


async def test_batch_entry_errors_are_classified_entry_by_entry(
    rig: Rig, archive: FakeArchive, fhir: FakeFhir
) -> None:
    ok, rejected, busy = studies(3)
    for s in (ok, rejected, busy):
        archive.add(s)
    _known(fhir, ok, rejected, busy)
    fhir.reject.add(rejected.study_uid)
    fhir.entry_busy.add(busy.study_uid)
    rig.mark(ok.study_uid, rejected.study_uid, busy.study_uid)

    stats = DrainStats()
    assert await rig.runner.run_once(stats) == 3
    assert stats.batches == 1 and len(fhir.writes) == 3  # one batch, three entries
    assert (stats.synced, stats.failed, stats.retried) == (1, 1, 1)

    assert _status(rig, ok.study_uid) == Status.SYNCED
    # a 4xx entry is permanent: dead letter, with the server's OperationOutcome kept
    assert _status(rig, rejected.study_uid) == Status.FAILED
    [failure] = rig.store.failure_history(rejected.study_uid)
    assert failure.permanent and failure.kind == "fhir-rejected"
    assert failure.operation_outcome == OUTCOME_422
    assert "bad dateTime" in failure.message
    # a 5xx entry is retryable: due again later, not failed
    assert _status(rig, busy.study_uid) == Status.DUE
    [deferred] = rig.store.failure_history(busy.study_uid)
    assert not deferred.permanent and deferred.kind == "fhir-unavailable"


async def test_retry_after_of_a_429_is_a_floor_on_the_delay(
    rig: Rig, archive: FakeArchive, fhir: FakeFhir
) -> None:
    [s] = studies(1)
    archive.add(s)
    _known(fhir, s)
    fhir.busy.append(httpx.Response(429, headers={"Retry-After": "120"}))
    rig.mark(s.study_uid)

    stats = await rig.runner.drain()
    assert (stats.retried, stats.synced, stats.failed) == (1, 0, 0)
    view = rig.store.get_study(ARCHIVE, s.study_uid)
    assert view is not None and view.status == Status.DUE
    assert view.next_attempt_at is not None
    # backoff alone would be ~0.5 s; the server asked for two minutes
    assert view.next_attempt_at - rig.clock.now >= timedelta(seconds=120)
    rig.clock.advance(119)
    assert await rig.runner.run_once() == 0
    rig.clock.advance(2)
    stats = await rig.runner.drain()
    assert stats.synced == 1 and _status(rig, s.study_uid) == Status.SYNCED


async def test_a_failing_study_never_blocks_the_others_of_its_batch(
    rig: Rig, archive: FakeArchive, fhir: FakeFhir
) -> None:
    gone, no_patient_id, down, *good = studies(6)
    for s in (gone, no_patient_id, down, *good):
        archive.add(s)
    _known(fhir, *good)
    archive.gone.add(gone.study_uid)
    archive.down.add(down.study_uid)
    for instance in archive.instances[no_patient_id.study_uid]:
        instance.pop(PATIENT_ID, None)
    rig.mark(gone.study_uid, no_patient_id.study_uid, down.study_uid,
             *(s.study_uid for s in good))

    stats = await rig.runner.drain()
    assert stats.synced == len(good)
    assert sorted(fhir.writes) == sorted(s.study_uid for s in good)
    for s in good:
        assert _status(rig, s.study_uid) == Status.SYNCED
    assert _status(rig, gone.study_uid) == Status.FAILED
    assert _status(rig, no_patient_id.study_uid) == Status.FAILED
    assert rig.store.failure_history(no_patient_id.study_uid)[-1].kind == "dicom-data"
    assert _status(rig, down.study_uid) == Status.DUE  # archive 503: retried later


async def test_study_of_a_patient_not_in_the_ehr_waits_and_is_never_dead_lettered(
    rig_factory: Callable[..., Rig], archive: FakeArchive, fhir: FakeFhir
) -> None:
    rig = rig_factory(patient_retry_interval=600.0, max_attempts=2)
    [s] = studies(1)
    archive.add(s)
    rig.mark(s.study_uid)

    for _ in range(4):  # more rounds than max_attempts
        stats = await rig.runner.drain()
        assert (stats.retried, stats.failed) == (1, 0)
        view = rig.store.get_study(ARCHIVE, s.study_uid)
        assert view is not None and view.status == Status.WAITING
        assert view.last_error_kind == "patient-not-found"
        assert view.next_attempt_at == rig.clock.now + timedelta(seconds=600)
        rig.clock.advance(600)
    assert fhir.writes == []  # no ImagingStudy without its subject

    # the EHR registers the patient; a worker (fresh cache) links the study on its next try
    _known(fhir, s)
    later = rig_factory()
    later.clock.now = rig.clock.now
    stats = await later.runner.drain()
    assert stats.synced == 1 and _status(later, s.study_uid) == Status.SYNCED
    subject = fhir.stored[s.study_uid]["subject"]["reference"]
    assert subject == f"Patient/p-{s.truth.patient_id}"


async def test_unchanged_content_is_not_written_again_and_a_change_is(
    rig: Rig, archive: FakeArchive, fhir: FakeFhir
) -> None:
    [s] = studies(1)
    archive.add(s)
    _known(fhir, s)
    rig.mark(s.study_uid)
    assert (await rig.runner.drain()).synced == 1

    rig.mark(s.study_uid)  # an event, but the archive holds the same study
    stats = await rig.runner.drain()
    assert (stats.unchanged, stats.synced) == (1, 0)
    assert fhir.writes == [s.study_uid]

    for instance in archive.instances[s.study_uid]:
        instance[STUDY_DESCRIPTION] = {"vr": "LO", "Value": ["Re-read, addendum"]}
    rig.mark(s.study_uid)
    stats = await rig.runner.drain()
    assert stats.synced == 1
    assert fhir.writes == [s.study_uid, s.study_uid]
    assert fhir.stored[s.study_uid]["meta"]["versionId"] == "2"
    actions = [e.action for e in rig.store.study_history(s.study_uid)
               if isinstance(e, AuditView)]
    assert actions == ["create", "skip-unchanged", "update"]


async def test_concurrent_batches_create_the_archive_endpoint_once(
    rig: Rig, archive: FakeArchive, fhir: FakeFhir
) -> None:
    resource = {"resourceType": "Endpoint",
                "identifier": [{"system": "urn:imaging-bridge:endpoint", "value": ARCHIVE}]}
    refs = await asyncio.gather(*(rig.runner.resolver.endpoint(ARCHIVE, copy.deepcopy(resource))
                                  for _ in range(4)))
    assert refs == ["Endpoint/ep-1"] * 4
    assert fhir.endpoint_posts == 1


@pytest.mark.parametrize("drops", [1, 2])
async def test_archive_get_is_sent_again_once_when_a_kept_alive_connection_was_dropped(
    drops: int,
) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls <= drops:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return httpx.Response(200, json=[])

    client = DicomwebClient(ArchiveSettings(name=ARCHIVE, base_url="http://archive.test/dw"),
                            transport=httpx.MockTransport(handler))
    try:
        if drops == 1:
            assert await client.search_studies({"StudyDate": "20250101-20250102"}) == []
        else:  # dropped twice: the archive really is in trouble
            with pytest.raises(ArchiveUnavailable):
                await client.search_studies({"StudyDate": "20250101-20250102"})
    finally:
        await client.aclose()
    assert calls == 2


async def test_a_fhir_outage_longer_than_max_attempts_dead_letters_nothing(
    rig_factory: Callable[..., Rig], archive: FakeArchive, fhir: FakeFhir
) -> None:
    rig = rig_factory(max_attempts=2, backoff_base=1.0, backoff_max=5.0)
    [s] = studies(1)
    archive.add(s)
    _known(fhir, s)
    rig.mark(s.study_uid)
    for _ in range(5):  # the server answers 503 to more attempts than max_attempts allows
        fhir.busy.append(httpx.Response(503))
        stats = await rig.runner.drain()
        assert (stats.retried, stats.failed) == (1, 0)
        assert _status(rig, s.study_uid) == Status.DUE
        rig.clock.advance(10)
    stats = await rig.runner.drain()  # the server is back
    assert stats.synced == 1 and _status(rig, s.study_uid) == Status.SYNCED


async def test_a_conflict_on_every_attempt_is_dead_lettered_after_max_attempts(
    rig_factory: Callable[..., Rig], archive: FakeArchive, fhir: FakeFhir
) -> None:
    rig = rig_factory(max_attempts=2, backoff_base=1.0, backoff_max=5.0)
    [s] = studies(1)
    archive.add(s)
    _known(fhir, s)
    rig.mark(s.study_uid)
    for _ in range(2):
        fhir.busy.append(httpx.Response(409))
        await rig.runner.drain()
        rig.clock.advance(10)
    assert _status(rig, s.study_uid) == Status.FAILED
    assert rig.store.failure_history(s.study_uid)[-1].kind == "conflict"

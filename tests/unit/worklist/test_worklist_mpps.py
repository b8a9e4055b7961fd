"""MPPS (PS3.4 F.7): the state machine's transitions and DIMSE statuses, the keeper over
an in-memory store and the state store (rows survive reopening; each write queues the
report task in the same transaction), and the Procedure a step becomes."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from bridge.state import open_store
from bridge.worklist.mpps import (
    COMPLETED,
    DISCONTINUED,
    IN_PROGRESS,
    MppsError,
    MppsRecord,
    apply_set,
    create_record,
)
from bridge.worklist.mpps_store import MPPS_REPORT, InMemoryMppsStore, MppsKeeper
from bridge.worklist.progress import procedure_of

UID = "1.2.826.0.1.3680043.8.498.1"


def _create(status: str = IN_PROGRESS, *, ssa: bool = True) -> Dataset:
    ds = Dataset()
    ds.PerformedProcedureStepStatus = status
    ds.PerformedProcedureStepStartDate = "20261208"
    ds.PerformedProcedureStepStartTime = "093000"
    if ssa:
        item = Dataset()
        item.AccessionNumber = "ACC1"
        item.StudyInstanceUID = "2.25.1"
        item.RequestedProcedureID = "ACC1"
        item.ScheduledProcedureStepID = "ACC1"
        ds.ScheduledStepAttributesSequence = [item]
    return ds


def _set(status: str, **values: str) -> Dataset:
    ds = Dataset()
    ds.PerformedProcedureStepStatus = status
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def _refusal(call: object) -> MppsError:
    assert callable(call)
    with pytest.raises(MppsError) as caught:
        call()
    return caught.value


def test_an_n_create_must_be_in_progress_naming_the_status_attribute() -> None:
    err = _refusal(lambda: create_record(UID, _create(COMPLETED)))
    assert (err.status, err.keyword) == (0x0106, "PerformedProcedureStepStatus")


def test_an_n_create_without_scheduled_step_attributes_is_a_missing_attribute() -> None:
    err = _refusal(lambda: create_record(UID, _create(ssa=False)))
    assert (err.status, err.keyword) == (0x0120, "ScheduledStepAttributesSequence")


def test_an_n_set_of_an_unknown_instance_is_no_such_instance() -> None:
    err = _refusal(lambda: apply_set(None, UID, _set(COMPLETED)))
    assert err.status == 0x0112


@pytest.mark.parametrize("final", [COMPLETED, DISCONTINUED])
def test_a_final_step_may_no_longer_be_updated(final: str) -> None:
    done = apply_set(create_record(UID, _create()), UID, _set(final))
    assert done.status == final and done.version == 2
    err = _refusal(lambda: apply_set(done, UID, _set(IN_PROGRESS)))
    assert (err.status, err.error_id, err.keyword) == (0x0110, 0xA710,
                                                       "PerformedProcedureStepStatus")


def test_an_n_set_cannot_change_the_scheduled_step_attributes_or_invent_a_status() -> None:
    record = create_record(UID, _create())
    err = _refusal(lambda: apply_set(record, UID, _create()))
    assert (err.status, err.keyword) == (0x0106, "ScheduledStepAttributesSequence")
    err = _refusal(lambda: apply_set(record, UID, _set("PAUSED")))
    assert (err.status, err.keyword) == (0x0106, "PerformedProcedureStepStatus")


def test_an_n_set_without_a_status_keeps_the_step_in_progress_and_adds_its_values() -> None:
    record = apply_set(create_record(UID, _create()), UID,
                       _set("", PerformedProcedureStepDescription="CT chest"))
    assert record.status == IN_PROGRESS
    assert record.dataset().PerformedProcedureStepDescription == "CT chest"
    assert record.references[0]["AccessionNumber"] == "ACC1"


def test_the_keeper_refuses_a_duplicate_and_queues_a_report_per_write() -> None:
    store = InMemoryMppsStore()
    keeper = MppsKeeper(store)
    keeper.create(UID, _create())
    assert _refusal(lambda: keeper.create(UID, _create())).status == 0x0111
    keeper.set(UID, _set(COMPLETED))
    assert store.queued == [(MPPS_REPORT, UID), (MPPS_REPORT, UID)]


def test_a_write_over_a_version_that_moved_is_refused() -> None:
    store = InMemoryMppsStore()
    keeper = MppsKeeper(store)
    keeper.create(UID, _create())
    stale = keeper.record(UID)
    keeper.set(UID, _set("", PerformedProcedureStepDescription="first"))
    assert stale is not None
    later = apply_set(stale, UID, _set(COMPLETED))  # computed from the old version
    assert not store.update_mpps(UID, status=later.status, attributes=later.attributes,
                                 version=later.version)


def test_an_open_step_survives_reopening_the_state_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with open_store(url) as store:
        MppsKeeper(store).create(UID, _create())
        assert store.task(MPPS_REPORT, UID) is not None  # queued with the row
    with open_store(url) as store:
        keeper = MppsKeeper(store)
        record = keeper.record(UID)
        assert record is not None and record.status == IN_PROGRESS
        keeper.set(UID, _set(COMPLETED))
        assert _refusal(lambda: keeper.set(UID, _set(DISCONTINUED))).error_id == 0xA710
        assert _refusal(lambda: keeper.create(UID, _create())).status == 0x0111
        stored = store.mpps(UID)
        assert stored is not None and stored.status == COMPLETED and stored.version == 2


ORDER = {"resourceType": "ServiceRequest", "id": "sr-9", "status": "active",
         "subject": {"reference": "Patient/p-9"}, "code": {"text": "CT chest"}}


def test_the_procedure_follows_the_step_basedon_the_order() -> None:
    started = create_record(UID, _create())
    proc = procedure_of(started, ORDER, timezone="Europe/Berlin")
    assert proc["status"] == "in-progress"
    assert proc["basedOn"] == [{"reference": "ServiceRequest/sr-9"}]
    assert proc["subject"] == {"reference": "Patient/p-9"}
    assert proc["identifier"] == [{"system": "urn:dicom:uid", "value": f"urn:oid:{UID}"}]
    assert proc["performedPeriod"] == {"start": "2026-12-08T09:30:00+01:00"}
    assert "partOf" not in proc

    done = apply_set(started, UID, _set(COMPLETED, PerformedProcedureStepEndDate="20261208",
                                        PerformedProcedureStepEndTime="094500"))
    proc = procedure_of(done, ORDER, timezone="Europe/Berlin")
    assert proc["status"] == "completed"
    assert proc["performedPeriod"]["end"] == "2026-12-08T09:45:00+01:00"


def test_a_discontinued_step_is_stopped_with_its_reason() -> None:
    reason = Dataset()
    reason.CodeValue = "110514"
    reason.CodingSchemeDesignator = "DCM"
    reason.CodeMeaning = "Incorrect worklist entry selected"
    mod = _set(DISCONTINUED)
    mod.PerformedProcedureStepDiscontinuationReasonCodeSequence = [reason]
    stopped = apply_set(create_record(UID, _create()), UID, mod)
    proc = procedure_of(stopped, ORDER, timezone="UTC")
    assert proc["status"] == "stopped"
    assert proc["statusReason"]["coding"] == [{
        "system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110514",
        "display": "Incorrect worklist entry selected"}]


@pytest.mark.parametrize("refused", [
    lambda: create_record(UID, _create(DISCONTINUED)),
    lambda: create_record(UID, _create(ssa=False)),
    lambda: apply_set(None, UID, _set(COMPLETED)),
    lambda: apply_set(apply_set(create_record(UID, _create()), UID, _set(DISCONTINUED)), UID,
                      _set(COMPLETED)),
    lambda: apply_set(create_record(UID, _create()), UID, _create()),
    lambda: apply_set(create_record(UID, _create()), UID, _set("PAUSED-FOR-A-LONG-TIME-NOW")),
])
def test_each_refusal_fits_the_error_comment_whole(refused: object) -> None:
    err = _refusal(refused)
    assert len(str(err)) <= 64 and str(err).startswith(err.keyword)  # LO, keyword first


def test_records_are_plain_values() -> None:
    record = MppsRecord(UID, IN_PROGRESS, _create().to_json_dict())
    assert record.dataset().PerformedProcedureStepStatus == IN_PROGRESS

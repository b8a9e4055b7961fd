"""UPS-RS over the worklist's items (PS3.4 CC, PS3.18 11): the workitem of an item, the
state table, Search matching, and the states kept as MPPS steps (what the EHR is told)."""

from __future__ import annotations

import datetime as dt

import pytest
from pydicom.dataset import Dataset

from bridge.worklist.mapper import map_order
from bridge.worklist.mpps_store import MPPS_REPORT, InMemoryMppsStore, MppsKeeper
from bridge.worklist.source import InMemoryWorklist
from bridge.worklist.ups import (
    CANCELED,
    COMPLETED,
    IN_PROGRESS,
    SCHEDULED,
    UpsError,
    transition,
    workitem_of,
    workitem_uid,
)
from bridge.worklist.ups_book import UpsWorklist
from tests.unit.worklist.worklist_helpers import ct_order, site_mapping

TXN = "2.25.42"


def _item() -> Dataset:
    order, patient = ct_order()
    return map_order(order, patient, site_mapping())


def _book() -> tuple[UpsWorklist, InMemoryMppsStore, str]:
    item = _item()
    store = InMemoryMppsStore()
    book = UpsWorklist(source=InMemoryWorklist([item]), keeper=MppsKeeper(store),
                       timezone="Europe/Berlin",
                       clock=lambda: dt.datetime(2026, 12, 8, 9, 0, tzinfo=dt.UTC))
    return book, store, workitem_uid(str(item.StudyInstanceUID))


def _request(state: str, txn: str | None = TXN) -> Dataset:
    ds = Dataset()
    ds.ProcedureStepState = state
    if txn:
        ds.TransactionUID = txn
    return ds


def test_a_workitem_carries_the_items_patient_request_and_schedule() -> None:
    item = _item()
    wi = workitem_of(item)
    assert wi.SOPInstanceUID == workitem_uid(str(item.StudyInstanceUID))
    assert len(wi.SOPInstanceUID) <= 64
    assert wi.ProcedureStepState == SCHEDULED
    assert wi.PatientID == item.PatientID
    [request] = wi.ReferencedRequestSequence
    assert request.AccessionNumber == item.AccessionNumber
    assert request.StudyInstanceUID == item.StudyInstanceUID
    sps = item.ScheduledProcedureStepSequence[0]
    assert wi.ScheduledProcedureStepStartDateTime.startswith(sps.ScheduledProcedureStepStartDate)
    assert wi.ScheduledStationClassCodeSequence[0].CodeValue == sps.Modality


@pytest.mark.parametrize(("current", "requested", "kept", "txn", "status", "keyword"), [
    (SCHEDULED, SCHEDULED, None, TXN, 400, "ProcedureStepState"),
    (SCHEDULED, COMPLETED, None, TXN, 409, "ProcedureStepState"),
    (SCHEDULED, IN_PROGRESS, None, None, 400, "TransactionUID"),
    (SCHEDULED, "DONE", None, TXN, 400, "ProcedureStepState"),
    (IN_PROGRESS, IN_PROGRESS, TXN, TXN, 409, "ProcedureStepState"),
    (IN_PROGRESS, COMPLETED, TXN, "2.25.9", 409, "TransactionUID"),
    (COMPLETED, CANCELED, TXN, TXN, 409, "ProcedureStepState"),
])
def test_state_changes_refused_name_the_attribute(current: str, requested: str,
                                                  kept: str | None, txn: str | None,
                                                  status: int, keyword: str) -> None:
    with pytest.raises(UpsError) as err:
        transition(current, requested, kept_txn=kept, txn=txn)
    assert (err.value.http_status, err.value.keyword) == (status, keyword)


def test_the_same_final_state_again_is_a_warning_not_a_change() -> None:
    move = transition(CANCELED, CANCELED, kept_txn=TXN, txn=None)
    assert move.to is None and "already CANCELED" in move.warning


def test_in_progress_then_canceled_are_mpps_steps_reported_to_the_ehr() -> None:
    book, store, uid = _book()
    assert book.change_state(uid, _request(IN_PROGRESS)) == (IN_PROGRESS, "")
    step = store.mpps(uid)
    assert step is not None and step.status == "IN PROGRESS"
    assert book.change_state(uid, _request(CANCELED)) == (CANCELED, "")
    step = store.mpps(uid)
    assert step is not None and step.status == "DISCONTINUED"
    assert store.queued == [(MPPS_REPORT, uid), (MPPS_REPORT, uid)]
    [wi] = book.search([("ProcedureStepState", CANCELED)])
    assert "00081195" not in wi  # the Transaction UID is never returned


def test_search_matches_like_qido_and_refuses_unknown_keys() -> None:
    book, _, uid = _book()
    item = _item()
    assert [w["00080018"]["Value"][0] for w in book.search(
        [("ReferencedRequestSequence.AccessionNumber", str(item.AccessionNumber)),
         ("ScheduledProcedureStepStartDateTime", "20000101-")])] == [uid]
    assert book.search([("0040A370.00080050", "nope")]) == []
    assert book.search([("ScheduledProcedureStepStartDateTime", "-20000101")]) == []
    with pytest.raises(UpsError) as err:
        book.search([("NoSuchKeyword", "1")])
    assert err.value.keyword == "NoSuchKeyword"


def test_update_needs_the_transaction_uid_and_an_in_progress_workitem() -> None:
    book, _, uid = _book()
    label = Dataset()
    label.ProcedureStepLabel = "x"
    with pytest.raises(UpsError) as err:
        book.update(uid, txn=TXN, modification=label)
    assert err.value.http_status == 409  # SCHEDULED: the EHR's order
    book.change_state(uid, _request(IN_PROGRESS))
    with pytest.raises(UpsError):
        book.update(uid, txn=None, modification=label)
    book.update(uid, txn=TXN, modification=label)
    assert book.retrieve(uid)["00741204"]["Value"] == ["x"]
    state = Dataset()
    state.ProcedureStepState = COMPLETED
    with pytest.raises(UpsError) as err:
        book.update(uid, txn=TXN, modification=state)
    assert (err.value.http_status, err.value.keyword) == (400, "ProcedureStepState")

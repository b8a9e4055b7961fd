"""Unified Procedure Step (PS3.4 Annex CC) over the worklist's items, pure (no I/O, no clock).

A workitem is the UPS view of one scheduled Modality Worklist item (the same order): its
SOP Instance UID is derived from the item's Study Instance UID (the same order gives the
same workitem), its attributes from the item (PS3.4 Table CC.2.5-3):

=========================================  ===============================================
workitem attribute                         from the worklist item
=========================================  ===============================================
SOP Class UID                              UPS Push (1.2.840.10008.5.1.4.34.6.1)
Procedure Step State                       SCHEDULED, or the performer's state (below)
Scheduled Procedure Step Start DateTime    SPS Start Date + Time
Procedure Step Label                       SPS Description, else Requested Procedure Desc.
Scheduled Station Class Code Sequence      SPS Modality as a DCM code (``CT``)
Scheduled Station Name Code Sequence       SPS Station AE Title (scheme ``99BRIDGE_AE``)
Scheduled Workitem Code Sequence           SPS Scheduled Protocol Code Sequence
Patient's Name, ID, issuer, birth, sex     the same attributes
Referenced Request Sequence                Study Instance UID, Accession Number (+ issuer),
                                           Requested Procedure ID / Description / Code,
                                           Placer / Filler order numbers
=========================================  ===============================================

State changes (PS3.4 CC.1.1 Table CC.1.1-2, CC.2.1.3; the HTTP statuses of PS3.18 11.7.3):

==========================  =============  =====================================  ======
current state               requested      result                                 HTTP
==========================  =============  =====================================  ======
any                         SCHEDULED      refused (C303: only by creation)       400
SCHEDULED                   IN PROGRESS    IN PROGRESS, Transaction UID kept       200
SCHEDULED                   COMPLETED /    refused (C310: not IN PROGRESS)         409
                            CANCELED
IN PROGRESS                 IN PROGRESS    refused (C302: already IN PROGRESS)     409
IN PROGRESS                 COMPLETED /    done when the Transaction UID is the    200
                            CANCELED       one kept (C301 otherwise)               (409)
COMPLETED / CANCELED        the same       nothing changes, a warning (B306/B304)  200
COMPLETED / CANCELED        another        refused (C300: no longer updatable)     409
==========================  =============  =====================================  ======

A missing Transaction UID where one is needed is 400.  Every refusal names the attribute
(the ``Warning`` header of the HTTP answer, PS3.18 8.2.1 / 11.7.3).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydicom.dataset import Dataset

from bridge.errors import Permanent

#: Unified Procedure Step - Push SOP Class (PS3.4 CC.3.1, PS3.6 Annex A)
UPS_PUSH_SOP_CLASS: Final = "1.2.840.10008.5.1.4.34.6.1"

SCHEDULED: Final = "SCHEDULED"
IN_PROGRESS: Final = "IN PROGRESS"
COMPLETED: Final = "COMPLETED"
CANCELED: Final = "CANCELED"
STATES: Final = (SCHEDULED, IN_PROGRESS, COMPLETED, CANCELED)
FINAL: Final = (COMPLETED, CANCELED)

#: the coding scheme of station AE titles as codes (a local scheme, PS3.3 8.2: "99")
STATION_AE_SCHEME: Final = "99BRIDGE_AE"
#: keys a client may not set by Update Workitem (PS3.4 CC.2.6.1: the state and the
#: Transaction UID change only by Change State; the identity never)
NOT_UPDATABLE: Final = frozenset({"SOPClassUID", "SOPInstanceUID", "ProcedureStepState",
                                  "TransactionUID", "ScheduledStepAttributesSequence",
                                  "PerformedProcedureStepStatus"})
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
_WORKITEM_NAMESPACE: Final = uuid.UUID("0b7a3c1e-5e57-4f7c-9d63-0f1f2a5e9c17")


class UpsError(Permanent):
    """A UPS request refused: ``http_status`` to answer, ``keyword`` the attribute at
    fault, ``code`` the PS3.4 status (Cxxx failure, Bxxx warning)."""

    kind = "ups"

    def __init__(self, message: str, *, http_status: int, keyword: str,
                 code: str = "") -> None:
        super().__init__(f"{keyword}: {message}")
        self.http_status = http_status
        self.keyword = keyword
        self.code = code


@dataclass(frozen=True)
class Transition:
    """What a valid Change State request does: ``to`` the new state (None: nothing
    changes, ``warning`` says why)."""

    to: str | None
    warning: str = ""


def workitem_uid(study_uid: str) -> str:
    """The workitem's SOP Instance UID for the item whose Study Instance UID is
    ``study_uid`` (PS3.5 B.2: a UUID-derived ``2.25.`` UID, 44 characters at most)."""
    return f"2.25.{uuid.uuid5(_WORKITEM_NAMESPACE, study_uid).int}"


def is_uid(value: str) -> bool:
    """PS3.5 9.1: digits and dots, at most 64 characters."""
    return len(value) <= 64 and _UID.fullmatch(value) is not None


def _copy(src: Dataset, dst: Dataset, keywords: tuple[str, ...]) -> None:
    for kw in keywords:
        if kw in src and src[kw].value not in (None, "", []):
            dst[kw] = src[kw]


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, scheme, meaning
    return code


def workitem_of(item: Dataset, *, state: str = SCHEDULED) -> Dataset:
    """The UPS workitem of one worklist ``item`` (see the module's table)."""
    wi = Dataset()
    _copy(item, wi, ("SpecificCharacterSet",))
    wi.SOPClassUID = UPS_PUSH_SOP_CLASS
    study_uid = str(item.get("StudyInstanceUID", ""))
    wi.SOPInstanceUID = workitem_uid(study_uid)
    wi.ProcedureStepState = state
    wi.ScheduledProcedureStepPriority = "MEDIUM"
    wi.InputReadinessState = "READY"
    sps = (item.get("ScheduledProcedureStepSequence") or [Dataset()])[0]
    wi.ProcedureStepLabel = str(sps.get("ScheduledProcedureStepDescription", "")
                                or item.get("RequestedProcedureDescription", "") or "order")[:64]
    wi.WorklistLabel = str(sps.get("ScheduledStationAETitle", "") or "")
    date = str(sps.get("ScheduledProcedureStepStartDate", "") or "")
    time = str(sps.get("ScheduledProcedureStepStartTime", "") or "")
    wi.ScheduledProcedureStepStartDateTime = date + time if date else ""
    modality = str(sps.get("Modality", "") or "")
    if modality:
        wi.ScheduledStationClassCodeSequence = [_code(modality, "DCM", modality)]
    station = str(sps.get("ScheduledStationAETitle", "") or "")
    if station:
        wi.ScheduledStationNameCodeSequence = [_code(station, STATION_AE_SCHEME, station)]
    if sps.get("ScheduledProtocolCodeSequence"):
        wi.ScheduledWorkitemCodeSequence = sps.ScheduledProtocolCodeSequence
    _copy(item, wi, ("PatientName", "PatientID", "IssuerOfPatientID",
                     "IssuerOfPatientIDQualifiersSequence", "PatientBirthDate", "PatientSex"))
    request = Dataset()
    _copy(item, request, ("StudyInstanceUID", "AccessionNumber",
                          "IssuerOfAccessionNumberSequence", "RequestedProcedureID",
                          "RequestedProcedureDescription", "RequestedProcedureCodeSequence",
                          "PlacerOrderNumberImagingServiceRequest",
                          "FillerOrderNumberImagingServiceRequest"))
    wi.ReferencedRequestSequence = [request]
    return wi


def transition(current: str, requested: str, *, kept_txn: str | None,
               txn: str | None) -> Transition:
    """Check a Change State request (the module's table); raise :class:`UpsError`."""
    if requested not in STATES:
        raise UpsError(f"not a state: {requested[:16]!r}", http_status=400,
                       keyword="ProcedureStepState")
    if requested == SCHEDULED:
        raise UpsError("a workitem is SCHEDULED only by its creation", http_status=400,
                       keyword="ProcedureStepState", code="C303")
    if current in FINAL:
        if requested == current:
            code = "B306" if current == COMPLETED else "B304"
            return Transition(None, f"the workitem is already {current} ({code})")
        raise UpsError(f"the workitem is {current} and may no longer be updated",
                       http_status=409, keyword="ProcedureStepState", code="C300")
    if not txn:
        raise UpsError("required to change the state (PS3.4 CC.2.1.3)", http_status=400,
                       keyword="TransactionUID")
    if not is_uid(txn):
        raise UpsError("not a UID", http_status=400, keyword="TransactionUID")
    if current == SCHEDULED:
        if requested != IN_PROGRESS:
            raise UpsError(f"the workitem is not IN PROGRESS: no {requested}",
                           http_status=409, keyword="ProcedureStepState", code="C310")
        return Transition(IN_PROGRESS)
    if requested == IN_PROGRESS:
        raise UpsError("the workitem is already IN PROGRESS", http_status=409,
                       keyword="ProcedureStepState", code="C302")
    if txn != kept_txn:
        raise UpsError("not the workitem's Transaction UID", http_status=409,
                       keyword="TransactionUID", code="C301")
    return Transition(requested)


def check_update(current: str, *, kept_txn: str | None, txn: str | None,
                 modification: Dataset) -> None:
    """Check an Update Workitem request (PS3.4 CC.2.6, PS3.18 11.6.3); raise
    :class:`UpsError`.  A SCHEDULED workitem is the EHR's order: it changes there."""
    for elem in modification:
        if elem.keyword in NOT_UPDATABLE:
            raise UpsError("not updatable by Update Workitem (PS3.4 CC.2.6.1)",
                           http_status=400, keyword=elem.keyword)
    if current in FINAL:
        raise UpsError(f"the workitem is {current} and may no longer be updated",
                       http_status=409, keyword="ProcedureStepState", code="C300")
    if current == SCHEDULED:
        raise UpsError("a SCHEDULED workitem is the EHR's order: change the ServiceRequest",
                       http_status=409, keyword="ProcedureStepState")
    if not txn:
        raise UpsError("required to update an IN PROGRESS workitem", http_status=400,
                       keyword="TransactionUID")
    if txn != kept_txn:
        raise UpsError("not the workitem's Transaction UID", http_status=409,
                       keyword="TransactionUID", code="C301")


def step_of(workitem: Dataset, *, txn: str, now: dt.datetime) -> Dataset:
    """The performed step a workitem going IN PROGRESS becomes: the attributes an MPPS
    N-CREATE would carry (PS3.4 F.7.2.1), so the same store and the same FHIR report
    (:mod:`bridge.worklist.progress`) serve both, with the Transaction UID kept."""
    step = Dataset()
    step.PerformedProcedureStepStatus = "IN PROGRESS"
    step.ProcedureStepState = IN_PROGRESS
    step.TransactionUID = txn
    step.SOPClassUID = UPS_PUSH_SOP_CLASS
    step.PerformedProcedureStepStartDate = now.strftime("%Y%m%d")
    step.PerformedProcedureStepStartTime = now.strftime("%H%M%S")
    ref = Dataset()
    request = (workitem.get("ReferencedRequestSequence") or [Dataset()])[0]
    ref.AccessionNumber = str(request.get("AccessionNumber", "") or "")
    ref.StudyInstanceUID = str(request.get("StudyInstanceUID", "") or "")
    ref.RequestedProcedureID = str(request.get("RequestedProcedureID", "") or "")
    ref.ScheduledProcedureStepID = ""
    step.ScheduledStepAttributesSequence = [ref]
    return step


def final_of(state: str, *, now: dt.datetime) -> Dataset:
    """The N-SET-like modification of a step ending COMPLETED or CANCELED (an MPPS
    DISCONTINUED: the EHR's Procedure ``stopped``, the order left active)."""
    mod = Dataset()
    mod.PerformedProcedureStepStatus = "COMPLETED" if state == COMPLETED else "DISCONTINUED"
    mod.ProcedureStepState = state
    mod.PerformedProcedureStepEndDate = now.strftime("%Y%m%d")
    mod.PerformedProcedureStepEndTime = now.strftime("%H%M%S")
    return mod


#: attributes of the kept step that belong to the MPPS view, not to the workitem
_STEP_ONLY: Final = frozenset({"PerformedProcedureStepStatus", "ScheduledStepAttributesSequence",
                               "PerformedProcedureStepStartDate",
                               "PerformedProcedureStepStartTime",
                               "PerformedProcedureStepEndDate", "PerformedProcedureStepEndTime",
                               "TransactionUID"})


def merged(workitem: Dataset | None, uid: str, step: Mapping[str, Any] | None) -> Dataset:
    """The workitem as a performer sees it: the item's attributes, then what the performer
    set (its state, Update Workitem's attributes); never the Transaction UID (PS3.18
    11.5.3: a Retrieve does not return it)."""
    wi = Dataset() if workitem is None else workitem
    if workitem is None:
        wi.SOPClassUID = UPS_PUSH_SOP_CLASS
        wi.SOPInstanceUID = uid
    if step is not None:
        for elem in Dataset.from_json(dict(step)):
            if elem.keyword not in _STEP_ONLY:
                wi[elem.tag] = elem
    return wi

"""Modality Performed Procedure Step (PS3.4 Annex F, SOP Class 1.2.840.10008.3.1.2.3.3):
the state machine of one MPPS instance, pure (no I/O, no clock).

The modality creates the instance (N-CREATE) with status ``IN PROGRESS`` and sets it
(N-SET) to ``COMPLETED`` or ``DISCONTINUED``; both are final (PS3.4 F.7.2.2.2: "the
Performed Procedure Step Object may no longer be updated").  Each refusal carries the DIMSE
status to answer and the attribute at fault:

==========================================  ======  ==========================================
refusal                                      status  PS3.4 / PS3.7
==========================================  ======  ==========================================
N-CREATE of an existing instance             0x0111  Duplicate SOP Instance (PS3.7 C)
N-CREATE not ``IN PROGRESS``                 0x0106  Invalid attribute value (F.7.2.1.2)
N-CREATE without Scheduled Step Attributes   0x0120  Missing attribute (F.7.2.1.2)
N-SET of an unknown instance                 0x0112  No such SOP Instance (F.7.2.2.2)
N-SET of a COMPLETED / DISCONTINUED one      0x0110  Processing failure, Error ID 0xA710
                                                     "may no longer be updated" (F.7.2.2.2)
N-SET to a status other than the three       0x0106  Invalid attribute value
N-SET of Scheduled Step Attributes Sequence  0x0106  not allowed in N-SET (Table F.7.2-1)
==========================================  ======  ==========================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydicom.dataset import Dataset

from bridge.errors import Permanent

#: Modality Performed Procedure Step SOP Class (PS3.4 F.7.1, PS3.6 Annex A)
MPPS_SOP_CLASS: Final = "1.2.840.10008.3.1.2.3.3"

IN_PROGRESS: Final = "IN PROGRESS"
COMPLETED: Final = "COMPLETED"
DISCONTINUED: Final = "DISCONTINUED"
STATUSES: Final = (IN_PROGRESS, COMPLETED, DISCONTINUED)
FINAL: Final = (COMPLETED, DISCONTINUED)

PROCESSING_FAILURE: Final = 0x0110
DUPLICATE_INSTANCE: Final = 0x0111
NO_SUCH_INSTANCE: Final = 0x0112
INVALID_VALUE: Final = 0x0106
MISSING_ATTRIBUTE: Final = 0x0120
#: Error ID of an N-SET on a final instance (PS3.4 F.7.2.2.2)
NO_LONGER_UPDATABLE: Final = 0xA710

Json = dict[str, Any]


class MppsError(Permanent):
    """An N-CREATE / N-SET the SCP refuses: ``status`` to answer, ``keyword`` at fault.
    Messages are short: with the keyword in front they are the Error Comment (0000,0902),
    64 characters at most (VR LO)."""

    kind = "mpps"

    def __init__(self, message: str, *, status: int, keyword: str,
                 error_id: int | None = None) -> None:
        super().__init__(f"{keyword}: {message}")
        self.status = status
        self.keyword = keyword
        self.error_id = error_id


@dataclass(frozen=True)
class MppsRecord:
    """One MPPS instance: its status and every attribute set so far (DICOM JSON, PS3.18
    F.2), ``version`` counting the writes (the store updates only the version it read)."""

    sop_instance_uid: str
    status: str
    attributes: Mapping[str, Any]
    version: int = 1

    def dataset(self) -> Dataset:
        return Dataset.from_json(dict(self.attributes))

    @property
    def references(self) -> list[dict[str, str]]:
        """What the modality performed, per Scheduled Step Attributes Sequence item
        (0040,0270): AccessionNumber, StudyInstanceUID, RequestedProcedureID,
        ScheduledProcedureStepID (empty when the modality left them empty)."""
        ds = self.dataset()
        return [{k: str(item.get(k, "") or "") for k in (
            "AccessionNumber", "StudyInstanceUID", "RequestedProcedureID",
            "ScheduledProcedureStepID")} for item in ds.get("ScheduledStepAttributesSequence", [])]


def _status_of(ds: Dataset) -> str:
    return str(ds.get("PerformedProcedureStepStatus", "") or "").strip()


def create_record(sop_instance_uid: str, attributes: Dataset) -> MppsRecord:
    """The instance an N-CREATE makes (PS3.4 F.7.2.1): status ``IN PROGRESS`` and the
    Scheduled Step Attributes Sequence that ties it to the worklist item are required."""
    status = _status_of(attributes)
    if status != IN_PROGRESS:
        raise MppsError(f"not IN PROGRESS: {status[:12]!r}",
                        status=INVALID_VALUE, keyword="PerformedProcedureStepStatus")
    if not attributes.get("ScheduledStepAttributesSequence"):
        raise MppsError("missing in N-CREATE",
                        status=MISSING_ATTRIBUTE, keyword="ScheduledStepAttributesSequence")
    return MppsRecord(sop_instance_uid, status, attributes.to_json_dict())


def apply_set(record: MppsRecord | None, sop_instance_uid: str,
              modification: Dataset) -> MppsRecord:
    """The instance after an N-SET (PS3.4 F.7.2.2): the modification's attributes replace
    the record's; a final instance cannot change."""
    if record is None:
        raise MppsError("no such MPPS instance", status=NO_SUCH_INSTANCE,
                        keyword="RequestedSOPInstanceUID")
    if record.status in FINAL:
        raise MppsError(f"is final ({record.status}): no update",
                        status=PROCESSING_FAILURE, keyword="PerformedProcedureStepStatus",
                        error_id=NO_LONGER_UPDATABLE)
    if "ScheduledStepAttributesSequence" in modification:
        raise MppsError("not allowed in N-SET",
                        status=INVALID_VALUE, keyword="ScheduledStepAttributesSequence")
    status = _status_of(modification) or record.status
    if status not in STATUSES:
        raise MppsError(f"not a status: {status[:12]!r}",
                        status=INVALID_VALUE, keyword="PerformedProcedureStepStatus")
    merged = record.dataset()
    for elem in modification:
        merged[elem.tag] = elem
    return MppsRecord(sop_instance_uid, status, merged.to_json_dict(), record.version + 1)

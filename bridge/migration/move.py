"""C-MOVE of a study (or some of its instances) from a legacy source to a destination AE
(PS3.4 C.4.2), blocking (pynetdicom).

Unlike C-GET, the instances do not come back on our association: the source opens its own
association to the *move destination* (an AE title it must know, with host and port, in
its own configuration) and sends them there as C-STORE sub-operations.  The destination is
the archive's DICOM AE (*direct* mode) or the bridge's receiver
(:mod:`bridge.migration.receiver`, *through the bridge*).  We only read the responses:
pending ones count the sub-operations (remaining, completed, failed, warning;
PS3.4 C.4.2.1.6-9), the final one gives the status and the Failed SOP Instance UID List
(0008,0058).  The source answers the final response once its sub-operations are done.

Statuses (PS3.4 C.4.2.1.5): 0xA701/0xA702 (out of resources) are
:class:`LegacyUnavailable` (an outage: wait and retry); 0xA801 (move destination unknown)
is :class:`LegacyRefused` (the source's configuration must name the destination: an
administrator's work, no study is failed for it); another Failure with nothing moved is
:class:`LegacyRetrieveFailed`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from bridge.migration.association import _associate, _release, _where
from bridge.migration.errors import (
    LegacyAborted,
    LegacyRefused,
    LegacyRetrieveFailed,
    LegacyUnavailable,
)
from bridge.migration.retrieve import CANCELLED, PENDING, SUCCESS, WARNING, _uid_list
from bridge.sections.migration import LegacySourceSettings

__all__ = ["STUDY_ROOT_MOVE", "MoveOutcome", "move_instances", "move_study"]

log = logging.getLogger(__name__)

#: Study Root Query/Retrieve Information Model - MOVE (PS3.4 C.6.2.1)
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
#: Refused: Out of Resources - unable to calculate number of matches / perform sub-operations
OUT_OF_RESOURCES = (0xA701, 0xA702)
#: Refused: Move Destination unknown
DESTINATION_UNKNOWN = 0xA801


@dataclass(slots=True)
class MoveOutcome:
    """What the source said of one C-MOVE: its final status, the sub-operation counts of
    its last response, and the instances it could not send."""

    status: int = SUCCESS
    completed: int = 0
    failed: int = 0
    warning: int = 0
    failed_uids: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.status == SUCCESS and not self.failed


def move_study(source: LegacySourceSettings, study_uid: str, *, destination: str
               ) -> MoveOutcome:
    """C-MOVE of study ``study_uid`` to the AE title ``destination``."""
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study_uid
    return _move(source, query, f"study {study_uid}", destination)


def move_instances(source: LegacySourceSettings, study_uid: str, series_uid: str,
                   sop_instance_uids: Sequence[str], *, destination: str) -> MoveOutcome:
    """C-MOVE of some instances of one series, at IMAGE level with a list of SOP Instance
    UIDs (PS3.4 C.4.2.2.1, C.6.2.2.2)."""
    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    query.StudyInstanceUID = study_uid
    query.SeriesInstanceUID = series_uid
    query.SOPInstanceUID = list(sop_instance_uids)
    return _move(source, query, f"{len(sop_instance_uids)} instances of study {study_uid}",
                 destination)


def _count(status: Dataset, keyword: str) -> int:
    value = status.get(keyword)
    return int(value) if value not in (None, "") else 0


def _move(source: LegacySourceSettings, query: Dataset, what: str,
          destination: str) -> MoveOutcome:
    where = _where(source)
    outcome = MoveOutcome()
    assoc = _associate(source, STUDY_ROOT_MOVE)
    final: int | None = None
    try:
        for status, identifier in assoc.send_c_move(query, destination, STUDY_ROOT_MOVE):
            if "Status" not in status:
                raise LegacyAborted(f"{where} aborted or did not answer a C-MOVE of {what} "
                                    f"after {outcome.completed} sub-operations")
            code = int(status.Status)
            outcome.completed = _count(status, "NumberOfCompletedSuboperations")
            outcome.failed = _count(status, "NumberOfFailedSuboperations")
            outcome.warning = _count(status, "NumberOfWarningSuboperations")
            if code in (PENDING, 0xFF01):
                continue
            final = code
            outcome.failed_uids = _uid_list(identifier)
    finally:
        _release(assoc)
    if final is None:
        raise LegacyAborted(f"{where} ended a C-MOVE of {what} without a final response")
    outcome.status = final
    if final == DESTINATION_UNKNOWN:
        raise LegacyRefused(f"{where} does not know the move destination {destination!r}: "
                            "add it (AE title, host, port) to the source's configuration")
    if final in OUT_OF_RESOURCES:
        raise LegacyUnavailable(f"{where} is out of resources for a C-MOVE of {what} "
                                f"(status 0x{final:04X})")
    if final not in (SUCCESS, WARNING, CANCELLED) and not outcome.completed \
            and not outcome.failed_uids:
        raise LegacyRetrieveFailed(f"{where} answered a C-MOVE of {what} with failure "
                                   f"status 0x{final:04X}", status=final)
    log.debug("legacy C-MOVE done", extra={
        "source": source.name, "completed": outcome.completed, "failed": outcome.failed,
        "status": f"0x{final:04X}"})
    return outcome

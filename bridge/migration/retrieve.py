"""C-GET of one study from a legacy source (PS3.4 C.4.3), blocking (pynetdicom).

The source sends the study's instances back as C-STORE sub-operations on *our*
association, so the association proposes each storage SOP class of the study in the SCP
role (PS3.4 C.4.3.1, role selection PS3.7 D.3.3.4).  Each received instance is kept as its
Part-10 bytes exactly as they arrived (``Event.encoded_dataset``: nothing is decoded or
re-encoded), in memory or in a spool directory.  Sub-operations the source reports as
failed (Failed SOP Instance UID List (0008,0058), PS3.4 C.4.3.1.3.1) are named in the
result, they do not fail the study; an aborted association is :class:`LegacyAborted`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset
from pynetdicom import DEFAULT_TRANSFER_SYNTAXES, StoragePresentationContexts, evt
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.events import Event

from bridge.migration.association import _associate, _release, _where
from bridge.migration.errors import LegacyAborted, LegacyRetrieveFailed
from bridge.sections.migration import LegacySourceSettings

__all__ = ["STUDY_ROOT_GET", "ReceivedInstance", "StudyRetrieval", "get_instances",
           "get_study"]

log = logging.getLogger(__name__)

#: Study Root Query/Retrieve Information Model - GET (PS3.4 C.6.2.1)
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"

# C-GET statuses (PS3.4 C.4.3.1.4)
SUCCESS = 0x0000
PENDING = 0xFF00
#: "Sub-operations Complete - One or more Failures or Warnings"
WARNING = 0xB000
CANCELLED = 0xFE00
#: presentation contexts one association can propose (odd IDs 1-255, PS3.8 9.3.2.2)
MAX_CONTEXTS = 128
#: C-STORE "Out of Resources" (PS3.4 B.2.3): we could not keep a received instance
OUT_OF_RESOURCES = 0xA700


@dataclass(frozen=True, slots=True)
class ReceivedInstance:
    """One instance the source sent: its UIDs and its Part-10 bytes (held in ``data``, or
    written to ``path`` when retrieved into a spool directory)."""

    sop_instance_uid: str
    sop_class_uid: str
    data: bytes | None = None
    path: Path | None = None

    def part10(self) -> bytes:
        """The instance as a Part-10 file (PS3.10 7.1), as received."""
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()


@dataclass(slots=True)
class StudyRetrieval:
    """What one C-GET of a study brought: the instances received, and the SOP Instance UIDs
    of the sub-operations the source reported as failed or with a warning."""

    study_uid: str
    received: list[ReceivedInstance] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: the C-GET's final status (0x0000 success, 0xB000 some failed, 0xFE00 cancelled)
    status: int = SUCCESS

    @property
    def complete(self) -> bool:
        return self.status == SUCCESS and not self.failed


def _uid_list(identifier: Dataset | None) -> list[str]:
    value = identifier.get("FailedSOPInstanceUIDList") if identifier is not None else None
    if not value:
        return []
    return [str(v) for v in value] if not isinstance(value, str) else value.split("\\")


def get_study(source: LegacySourceSettings, study_uid: str, *, sop_classes: Sequence[str],
              spool: Path | None = None) -> StudyRetrieval:
    """C-GET of study ``study_uid``; ``sop_classes``: the storage SOP classes of its
    instances (from the source's instance-level C-FIND), each proposed in the SCP role.
    ``spool``: a directory to write the instances to, instead of keeping them in memory."""
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study_uid
    return _retrieve(source, query, f"study {study_uid}", sop_classes=sop_classes,
                     spool=spool)


def get_instances(source: LegacySourceSettings, study_uid: str, series_uid: str,
                  sop_instance_uids: Sequence[str], *, sop_classes: Sequence[str],
                  spool: Path | None = None) -> StudyRetrieval:
    """C-GET of some instances of one series at IMAGE level: the unique keys of the
    levels above, and a list of SOP Instance UIDs as the IMAGE level's unique key
    (PS3.4 C.4.3.2.1, C.6.2.2.2: list of UID matching), e.g. the instances a verification
    found missing."""
    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    query.StudyInstanceUID = study_uid
    query.SeriesInstanceUID = series_uid
    query.SOPInstanceUID = list(sop_instance_uids)
    return _retrieve(source, query, f"{len(sop_instance_uids)} instances of study "
                     f"{study_uid}", sop_classes=sop_classes, spool=spool)


def _retrieve(source: LegacySourceSettings, query: Dataset, what: str, *,
              sop_classes: Sequence[str], spool: Path | None) -> StudyRetrieval:
    study_uid = str(query.StudyInstanceUID)
    result = StudyRetrieval(study_uid)

    def on_store(event: Event) -> int:
        # PS3.4 C.4.3.3: each sub-operation is a C-STORE on this association
        request = event.request
        assert isinstance(request, C_STORE)
        sop_uid = str(request.AffectedSOPInstanceUID)
        data = event.encoded_dataset()
        try:
            if spool is None:
                kept = ReceivedInstance(sop_uid, str(request.AffectedSOPClassUID), data=data)
            else:
                path = spool / f"{sop_uid}.dcm"
                path.write_bytes(data)
                kept = ReceivedInstance(sop_uid, str(request.AffectedSOPClassUID), path=path)
        except OSError:
            log.warning("C-GET instance not kept", extra={"source": source.name,
                                                           "study_uid": study_uid})
            return OUT_OF_RESOURCES
        result.received.append(kept)
        return SUCCESS

    # a source that returned no SOP Class UIDs: every storage class that fits beside the
    # GET context in the 128 presentation contexts of an association (PS3.8 9.3.2.2)
    classes = sorted(set(sop_classes)) or [
        str(c.abstract_syntax) for c in StoragePresentationContexts[:MAX_CONTEXTS - 1]]
    roles = [(uid, DEFAULT_TRANSFER_SYNTAXES) for uid in classes]
    assoc = _associate(source, STUDY_ROOT_GET, scp_roles=roles,
                       handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        final: int | None = None
        for status, identifier in assoc.send_c_get(query, STUDY_ROOT_GET):
            if "Status" not in status:
                raise LegacyAborted(
                    f"{_where(source)} aborted or did not answer a C-GET of {what} "
                    f"after {len(result.received)} instances")
            code = int(status.Status)
            if code == PENDING:
                continue
            final = code
            if code in (WARNING, CANCELLED) or (code & 0xF000) in (0xA000, 0xC000):
                uids = _uid_list(identifier)
                if code == WARNING and not int(status.get("NumberOfFailedSuboperations", 0)
                                               or 0):
                    result.warnings.extend(uids)
                else:
                    result.failed.extend(uids)
    finally:
        _release(assoc)
    if final is None:
        raise LegacyAborted(f"{_where(source)} ended a C-GET of {what} "
                            "without a final response")
    result.status = final
    if final not in (SUCCESS, WARNING, CANCELLED) and not result.received \
            and not result.failed:
        raise LegacyRetrieveFailed(
            f"{_where(source)} answered a C-GET of {what} with failure status "
            f"0x{final:04X}", status=final)
    log.debug("legacy C-GET done", extra={
        "source": source.name, "study_uid": study_uid, "received": len(result.received),
        "failed": len(result.failed), "status": f"0x{final:04X}"})
    return result

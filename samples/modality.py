"""A modality simulator for the Scheduled Workflow (IHE RAD SWF.b): a pynetdicom SCU that
queries the Modality Worklist (RAD-5, C-FIND), reports the procedure step (RAD-6/RAD-7,
MPPS N-CREATE / N-SET) and "acquires" a study carrying the worklist item's identifiers
(Patient, AccessionNumber, Study Instance UID, Request Attributes Sequence) to store in
the archive (RAD-8, STOW-RS here).

It is a test and demonstration client of the bridge's worklist, independent of its code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE

from samples.part10 import write_part10

MWL_FIND = "1.2.840.10008.5.1.4.31"
MPPS = "1.2.840.10008.3.1.2.3.3"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
#: the worklist keys a modality asks for (PS3.4 K.6.1.2, IHE RAD TF-2 4.5)
RETURN_KEYS = ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate",
               "PatientSex", "AccessionNumber", "StudyInstanceUID", "RequestedProcedureID",
               "RequestedProcedureDescription", "ReferringPhysicianName")
#: the issuers of the patient ID and the accession (PS3.3 10.14), copied into the images
ISSUER_KEYS = ("IssuerOfPatientIDQualifiersSequence", "IssuerOfAccessionNumberSequence")
STEP_KEYS = ("ScheduledStationAETitle", "ScheduledProcedureStepStartDate",
             "ScheduledProcedureStepStartTime", "Modality", "ScheduledProcedureStepID",
             "ScheduledProcedureStepDescription")


@dataclass(frozen=True)
class Answer:
    """A DIMSE-N answer: its status, Error ID and Error Comment (if any)."""

    status: int
    error_id: int | None = None
    comment: str = ""


class Modality:
    """One modality (``ae_title``) talking to the worklist/MPPS SCP ``scp_ae`` at
    ``host:port``; one association per call."""

    def __init__(self, *, ae_title: str, host: str, port: int, scp_ae: str) -> None:
        self.ae_title = ae_title
        self._address = (host, port)
        self._scp_ae = scp_ae

    def _associate(self, *contexts: str) -> object:
        ae = AE(ae_title=self.ae_title)
        for context in contexts:
            ae.add_requested_context(context)
        assoc = ae.associate(*self._address, ae_title=self._scp_ae)
        if not assoc.is_established:
            raise ConnectionError(f"association with {self._scp_ae} refused")
        return assoc

    def worklist(self, **query: str) -> list[Dataset]:
        """The items matching ``query`` (top-level keys; ``Modality`` and
        ``ScheduledStationAETitle`` go in the Scheduled Procedure Step item)."""
        identifier = Dataset()
        for key in RETURN_KEYS:
            setattr(identifier, key, query.get(key, ""))
        step = Dataset()
        for key in STEP_KEYS:
            setattr(step, key, query.get(key, ""))
        identifier.ScheduledProcedureStepSequence = [step]
        for key in ISSUER_KEYS:  # asked empty: returned whole (universal matching)
            setattr(identifier, key, [])
        assoc = self._associate(MWL_FIND)
        items: list[Dataset] = []
        try:
            for status, found in assoc.send_c_find(identifier, MWL_FIND):  # type: ignore[attr-defined]
                if status and status.Status in (0xFF00, 0xFF01) and found is not None:
                    items.append(found)
        finally:
            assoc.release()  # type: ignore[attr-defined]
        return items

    def _n(self, call: str, *args: object) -> tuple[Answer, Dataset | None]:
        assoc = self._associate(MPPS)
        try:
            status, attrs = getattr(assoc, call)(*args)
        finally:
            assoc.release()  # type: ignore[attr-defined]
        if not status:
            raise ConnectionError("no MPPS answer")
        error_id = status.get("ErrorID")
        return Answer(int(status.Status), int(error_id) if error_id is not None else None,
                      str(status.get("ErrorComment", ""))), attrs

    def start(self, item: Dataset, *, uid: str | None = None,
              when: dt.datetime | None = None) -> tuple[str, Answer]:
        """N-CREATE an IN PROGRESS step performing ``item`` (PS3.3 C.4.13-C.4.15)."""
        uid = uid or str(generate_uid(prefix=None))
        when = when or dt.datetime.now()
        step = item.ScheduledProcedureStepSequence[0]
        ds = Dataset()
        ssa = Dataset()
        for key in ("AccessionNumber", "StudyInstanceUID", "RequestedProcedureID",
                    "RequestedProcedureDescription"):
            setattr(ssa, key, item.get(key, ""))
        ssa.ScheduledProcedureStepID = step.get("ScheduledProcedureStepID", "")
        ssa.ScheduledProcedureStepDescription = step.get("ScheduledProcedureStepDescription",
                                                         "")
        ds.ScheduledStepAttributesSequence = [ssa]
        for key in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex"):
            setattr(ds, key, item.get(key, ""))
        ds.PerformedStationAETitle = self.ae_title
        ds.PerformedProcedureStepID = f"PPS{when:%H%M%S}"
        ds.PerformedProcedureStepStartDate = f"{when:%Y%m%d}"
        ds.PerformedProcedureStepStartTime = f"{when:%H%M%S}"
        ds.PerformedProcedureStepStatus = "IN PROGRESS"
        ds.Modality = step.get("Modality", "")
        ds.StudyID = "1"
        ds.PerformedSeriesSequence = []
        answer, _ = self._n("send_n_create", ds, MPPS, uid)
        return uid, answer

    def finish(self, uid: str, status: str = "COMPLETED", *,
               reason: tuple[str, str, str] | None = None,
               when: dt.datetime | None = None) -> Answer:
        """N-SET the step to ``status``; ``reason`` (code, scheme, meaning) for a
        DISCONTINUED one (Performed Procedure Step Discontinuation Reason, CID 9300)."""
        when = when or dt.datetime.now()
        ds = Dataset()
        ds.PerformedProcedureStepStatus = status
        ds.PerformedProcedureStepEndDate = f"{when:%Y%m%d}"
        ds.PerformedProcedureStepEndTime = f"{when:%H%M%S}"
        if reason is not None:
            code = Dataset()
            code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = reason
            ds.PerformedProcedureStepDiscontinuationReasonCodeSequence = [code]
        answer, _ = self._n("send_n_set", ds, MPPS, uid)
        return answer


def acquire(item: Dataset, *, instances: int = 2) -> list[Dataset]:
    """A small CT study with the worklist item's identifiers (IHE RAD TF-2 4.8: Patient,
    AccessionNumber, Study Instance UID and the Request Attributes Sequence copied)."""
    series_uid = str(generate_uid(prefix=None))
    out: list[Dataset] = []
    for n in range(1, instances + 1):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        sop_uid = generate_uid(prefix=None)
        ds.file_meta.MediaStorageSOPClassUID = UID(CT_IMAGE)
        ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
        ds.SOPClassUID, ds.SOPInstanceUID = CT_IMAGE, sop_uid
        for key in ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate",
                    "PatientSex", "AccessionNumber", "StudyInstanceUID",
                    "ReferringPhysicianName"):
            setattr(ds, key, item.get(key, ""))
        for key in ISSUER_KEYS:
            if key in item:
                setattr(ds, key, item[key].value)
        step = item.ScheduledProcedureStepSequence[0]
        request = Dataset()
        request.RequestedProcedureID = item.get("RequestedProcedureID", "")
        request.ScheduledProcedureStepID = step.get("ScheduledProcedureStepID", "")
        request.AccessionNumber = item.get("AccessionNumber", "")
        if "IssuerOfAccessionNumberSequence" in item:
            request.IssuerOfAccessionNumberSequence = item.IssuerOfAccessionNumberSequence
        ds.RequestAttributesSequence = [request]
        ds.StudyDate = ds.SeriesDate = dt.date.today().strftime("%Y%m%d")
        ds.StudyTime = "093000"
        ds.StudyID = "1"
        ds.StudyDescription = item.get("RequestedProcedureDescription", "")
        ds.Modality = step.get("Modality", "CT")
        ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = series_uid, 1, n
        ds.Rows = ds.Columns = 8
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.PixelData = bytes(8 * 8 * 2)
        out.append(ds)
    return out


def stow(instances: Sequence[Dataset], *, dicomweb_url: str,
         auth: tuple[str, str] | None = None,
         headers: Mapping[str, str] | None = None) -> int:
    """STOW-RS the instances (PS3.18 10.5); the HTTP status."""
    boundary = "modality-simulator-boundary"
    body = b"".join(b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n"
                    + write_part10(ds) + b"\r\n" for ds in instances)
    body += b"--" + boundary.encode() + b"--\r\n"
    response = httpx.post(
        f"{dicomweb_url}/studies", content=body, auth=auth, timeout=60,
        headers={**(headers or {}), "Accept": "application/dicom+json",
                 "Content-Type": f'multipart/related; type="application/dicom"; '
                                 f"boundary={boundary}"})
    response.raise_for_status()
    return response.status_code

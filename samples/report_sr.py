"""Deterministic Basic Text SR reports for the generated studies (PS3.16 TID 2000-like).

The root CONTAINER is titled with LOINC 18748-4 "Diagnostic imaging study" (CID 7000) and holds
a Findings container (121070) with one TEXT Finding (121071) per sentence and an Impressions
container (121072) with the Impression (121073).  The SR Document General module (PS3.3
C.17.2) carries the Completion Flag, the Verification Flag and, when verified, the Verifying
Observer Sequence (name, organisation, date-time).  Texts, flags and times are a pure
function of ``(study, seed)``; the patient and study identifiers are the generated study's.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from samples.sr_content import code, container, sr_document, text_item, uid
from samples.truth import StudyTruth

__all__ = ["BASIC_TEXT_SR_SOP_CLASS_UID", "ReportTruth", "text_report_sr"]

#: Basic Text SR Storage (PS3.4 B.5)
BASIC_TEXT_SR_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.88.11"

_FINDINGS = (
    "No focal consolidation or pleural effusion.",
    "Heart size within normal limits.",
    "No acute osseous abnormality.",
    "Small simple cyst unchanged from prior examination.",
    "Mild degenerative changes.",
    "No free fluid.",
)
_READERS = ("Okafor^Ada^^Dr", "Lindqvist^Erik^^Dr", "Moreau^Claire^^Dr")
_IMPRESSIONS = (
    "No acute abnormality.",
    "Stable appearance compared with prior study.",
    "Findings as above; follow-up in 12 months suggested.",
)


@dataclass(frozen=True)
class ReportTruth:
    """What a generated report says."""

    sop_uid: str
    study_uid: str
    completion: str
    verification: str
    verifier: str | None
    findings: tuple[str, ...]
    impression: str


def text_report_sr(
    truth: StudyTruth, *, seed: int = 0, verified: bool | None = None
) -> tuple[Dataset, ReportTruth]:
    """A Basic Text SR report of ``truth``'s study and its ground truth.

    :param verified: force the verification state; by default ~85% of reports are complete
        and verified, the rest partial (preliminary) and unverified.
    """
    rng = random.Random(f"ifb-report|{seed}|{truth.study_uid}")
    sop_uid, series_uid = uid(rng), uid(rng)
    is_verified = rng.random() < 0.85 if verified is None else verified
    findings = tuple(rng.sample(_FINDINGS, rng.randint(1, 3)))
    impression = rng.choice(_IMPRESSIONS)
    hour = int(truth.study_time[:2]) if truth.study_time else 9
    content_time = f"{min(hour + 2, 23):02d}{rng.randrange(60):02d}00"
    content = [
        container("CONTAINS", code("121070", "DCM", "Findings"),
                  [text_item("CONTAINS", code("121071", "DCM", "Finding"), f)
                   for f in findings]),
        container("CONTAINS", code("121072", "DCM", "Impressions"),
                  [text_item("CONTAINS", code("121073", "DCM", "Impression"), impression)]),
    ]
    ds = sr_document(
        truth, sop_class_uid=BASIC_TEXT_SR_SOP_CLASS_UID, sop_uid=sop_uid,
        series_uid=series_uid, template="2000",
        title=code("18748-4", "LN", "Diagnostic imaging study"), content=content,
        content_date=truth.study_date, content_time=content_time,
    )
    # SR Document General module (PS3.3 C.17.2)
    ds.CompletionFlag = "COMPLETE" if is_verified else "PARTIAL"
    ds.VerificationFlag = "VERIFIED" if is_verified else "UNVERIFIED"
    verifier = None
    if is_verified:
        verifier = rng.choice(_READERS)
        observer = Dataset()
        observer.VerifyingObserverName = verifier
        observer.VerifyingOrganization = truth.institution
        observer.VerificationDateTime = f"{truth.study_date}{content_time}"
        observer.VerifyingObserverIdentificationCodeSequence = Sequence([])
        ds.VerifyingObserverSequence = Sequence([observer])
    evidence = Dataset()
    evidence.StudyInstanceUID = truth.study_uid
    evidence.ReferencedSeriesSequence = Sequence([])
    ds.CurrentRequestedProcedureEvidenceSequence = Sequence([evidence])
    ds.PerformedProcedureCodeSequence = Sequence([
        code(c.code, c.scheme, c.meaning) for c in truth.procedure_codes
    ])
    return ds, ReportTruth(sop_uid, truth.study_uid, ds.CompletionFlag, ds.VerificationFlag,
                           verifier, findings, impression)

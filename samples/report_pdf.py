"""Deterministic Encapsulated PDF reports for the generated studies (PS3.3 A.45.1, C.24.2).

The PDF is a minimal single-page PDF 1.4 document written here (no PDF library) with the
report's findings and impression as text; the DICOM instance carries it in Encapsulated
Document (0042,0011), with MIME Type application/pdf, Document Title, a CID 7020-style
Concept Name and the study's patient and study identifiers.  A pure function of
``(study, seed)`` like :mod:`samples.report_sr`, whose texts it reuses.
"""

from __future__ import annotations

import random

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from samples.report_sr import ReportTruth, text_report_sr
from samples.sr_content import code, study_instance, uid
from samples.truth import StudyTruth

__all__ = ["ENCAPSULATED_PDF_SOP_CLASS_UID", "minimal_pdf", "pdf_report"]

#: Encapsulated PDF Storage (PS3.4 B.5)
ENCAPSULATED_PDF_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.104.1"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def minimal_pdf(lines: list[str]) -> bytes:
    """A one-page PDF showing ``lines`` (ASCII) in Helvetica, with a correct xref table."""
    stream = "BT /F1 11 Tf 72 720 Td 14 TL " + " ".join(
        f"({_escape(line)}) '" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        "/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream",
    ]
    out = b"%PDF-1.4\n"
    offsets: list[int] = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("ascii")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode("ascii")
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode("ascii")
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n"
            f"startxref\n{xref}\n%%EOF\n").encode("ascii")
    return out


def pdf_report(truth: StudyTruth, *, seed: int = 0) -> tuple[Dataset, ReportTruth, bytes]:
    """An Encapsulated PDF report of ``truth``'s study, its ground truth and the PDF bytes."""
    _, text = text_report_sr(truth, seed=seed, verified=True)
    rng = random.Random(f"ifb-report-pdf|{seed}|{truth.study_uid}")
    sop_uid, series_uid = uid(rng), uid(rng)
    document = minimal_pdf(["Radiology report", "Findings:", *text.findings,
                            "Impression:", text.impression])
    hour = int(truth.study_time[:2]) if truth.study_time else 9
    ds = study_instance(
        truth, sop_class_uid=ENCAPSULATED_PDF_SOP_CLASS_UID, sop_uid=sop_uid,
        series_uid=series_uid, modality="DOC", series_number=901,
        content_date=truth.study_date,
        content_time=f"{min(hour + 3, 23):02d}{rng.randrange(60):02d}00",
    )
    ds.ConversionType = "WSD"
    ds.BurnedInAnnotation = "YES"
    ds.DocumentTitle = "Radiology report"
    ds.ConceptNameCodeSequence = Sequence([code("18748-4", "LN", "Diagnostic imaging study")])
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    # OB values have even length (PS3.5 6.2): pad, and record the real length (C.24.2)
    ds.EncapsulatedDocumentLength = len(document)
    ds.EncapsulatedDocument = document + (b"\0" if len(document) % 2 else b"")
    return ds, ReportTruth(sop_uid, truth.study_uid, "COMPLETE", "VERIFIED", None,
                           text.findings, text.impression), document

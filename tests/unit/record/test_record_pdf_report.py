"""Encapsulated PDF reports: the sample PDF is well formed, and the mapping carries its exact
bytes (padding trimmed) from InlineBinary or from the caller, else warns."""

from __future__ import annotations

import base64
import re

from record_golden_cases import PATIENT_REF, STUDY_REF, _study, assert_valid

from bridge.record.pdf_report import map_pdf_report
from samples.report_pdf import pdf_report

DOCUMENT = "00420011"


def test_sample_pdf_has_a_consistent_cross_reference_table() -> None:
    _, truth, document = pdf_report(_study("CT").truth, seed=2)
    assert document.startswith(b"%PDF-1.4\n") and document.endswith(b"%%EOF\n")
    xref = int(re.search(rb"startxref\n(\d+)\n", document).group(1))  # type: ignore[union-attr]
    assert document[xref:].startswith(b"xref\n")
    offsets = [int(m) for m in re.findall(rb"(\d{10}) 00000 n", document)]
    for number, offset in enumerate(offsets, start=1):
        assert document[offset:].startswith(f"{number} 0 obj".encode())
    assert truth.impression.encode() in document


def test_inline_pdf_becomes_the_presented_form_with_its_exact_bytes() -> None:
    ds, _, document = pdf_report(_study("CT").truth, seed=2)
    data = ds.to_json_dict()
    result = map_pdf_report(data, imaging_study=STUDY_REF, patient=PATIENT_REF)
    report = result.resources[0]
    form = report["presentedForm"][0]
    assert base64.b64decode(form["data"]) == document
    assert (form["contentType"], form["title"]) == ("application/pdf", "Radiology report")
    assert report["status"] == "unknown" and report["imagingStudy"] == [STUDY_REF]
    assert_valid([report])


def test_bulk_data_pdf_needs_the_bytes_from_the_caller() -> None:
    ds, _, document = pdf_report(_study("CR").truth, seed=2)
    data = ds.to_json_dict()
    data[DOCUMENT] = {"vr": "OB", "BulkDataURI": "http://archive/studies/1/bulk/00420011"}
    without = map_pdf_report(data, imaging_study=STUDY_REF, patient=PATIENT_REF)
    assert "presentedForm" not in without.resources[0]
    assert ("document-absent", "(0042,0011) EncapsulatedDocument") in {
        (w.code, w.item) for w in without.warnings}
    given = map_pdf_report(data, imaging_study=STUDY_REF, patient=PATIENT_REF,
                           document=document + b"\0", status="final")
    assert base64.b64decode(given.resources[0]["presentedForm"][0]["data"]) == document
    assert given.resources[0]["status"] == "final"
    assert "document-absent" not in {w.code for w in given.warnings}

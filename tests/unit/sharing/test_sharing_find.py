"""ITI-67 for the consumer: the query it sends and the searchset read into typed documents,
one unusable document reported by the field at fault without losing the others."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from bridge.sharing.errors import OutsideDocumentError
from bridge.sharing.find import find_query, read_document, read_searchset
from bridge.sharing.kos import KOS_SOP_CLASS
from bridge.sharing.mhd import DCMUID, document_entry
from tests.unit.sharing.find_cases import PATIENT, searchset, stored_document
from tests.unit.sharing.mhd_cases import bundle_of


def test_the_query_names_the_affinity_patient_current_kos_and_filters() -> None:
    params = find_query(PATIENT, since=dt.date(2026, 1, 1), until=dt.date(2026, 12, 7),
                        modalities=["CT", "MR"])
    assert params == [
        ("patient.identifier", f"{PATIENT['system']}|IHE-1"),
        ("status", "current"),
        ("date", "ge2026-01-01"),
        ("date", "lt2026-12-08"),
        ("event", "http://dicom.nema.org/resources/ontology/DCM|CT,"
                  "http://dicom.nema.org/resources/ontology/DCM|MR"),
        ("format", f"{DCMUID}|{KOS_SOP_CLASS}"),
    ]


def test_the_query_without_filters_has_no_date_or_event() -> None:
    keys = [k for k, _ in find_query(PATIENT)]
    assert keys == ["patient.identifier", "status", "format"]


def test_the_query_refuses_an_identifier_without_a_system() -> None:
    with pytest.raises(ValueError, match="system and value"):
        find_query({"value": "IHE-1"})


def test_the_source_s_document_reads_back_as_an_outside_document() -> None:
    bundle = bundle_of()
    sent = document_entry(bundle)["resource"]
    document = read_document(stored_document())
    assert document.id == "doc-1"
    assert document.study_uid == sent["context"]["related"][0]["identifier"]["value"].removeprefix(
        "urn:oid:")
    assert document.modalities == tuple(c["coding"][0]["code"] for c in sent["context"]["event"])
    assert document.master_identifier == sent["masterIdentifier"]["value"]
    attachment = sent["content"][0]["attachment"]
    assert (document.attachment_url, document.mime_type, document.size, document.hash) == (
        attachment["url"], "application/dicom", attachment["size"], attachment["hash"])
    assert document.date == sent["date"]
    assert document.study_date == sent["context"].get("period", {}).get("start")


@pytest.mark.parametrize(("breaks", "field"), [
    (lambda d: d["content"][0]["format"].update(code="1.2.3"), "content[0].format.code"),
    (lambda d: d["content"][0].pop("attachment"), "content[0].attachment"),
    (lambda d: d["content"][0]["attachment"].pop("url"), "content[0].attachment.url"),
    (lambda d: d.pop("content"), "content"),
    (lambda d: d["context"].pop("related"), "context.related"),
])
def test_an_unusable_document_is_named_by_field_and_the_others_are_kept(
    breaks: Any, field: str
) -> None:
    bad = stored_document("bad")
    breaks(bad)
    found = read_searchset(searchset(stored_document("good-1"), bad,
                                     stored_document("good-2")))
    assert [d.id for d in found.documents] == ["good-1", "good-2"]
    [problem] = found.problems
    assert isinstance(problem, OutsideDocumentError)
    assert (problem.field, problem.document) == (field, "bad")
    assert field in str(problem)


def test_included_and_outcome_entries_are_not_documents() -> None:
    bundle = searchset(stored_document())
    bundle["entry"].append({"resource": {"resourceType": "OperationOutcome"},
                            "search": {"mode": "outcome"}})
    bundle["entry"].append({"resource": stored_document("included"),
                            "search": {"mode": "include"}})
    found = read_searchset(bundle)
    assert [d.id for d in found.documents] == ["doc-1"]
    assert found.problems == ()

"""An order found by the study's accession is linked only when it is for the study's own
patient: an accession reused across patients (or mistyped at the modality) never puts
another patient's order in an ImagingStudy's basedOn (issue 17, closing the loop)."""

from __future__ import annotations

from pathlib import Path

from bridge.sync.references import relative_reference
from tests.unit.sync.fakes import FakeArchive, FakeFhir, make_rig, studies


def _based_on(fhir: FakeFhir, uid: str) -> list[dict[str, object]]:
    return list(fhir.stored[uid].get("basedOn", []))


async def test_the_patients_own_order_is_linked_another_patients_is_not(
        tmp_path: Path) -> None:
    archive, fhir = FakeArchive(), FakeFhir()
    own, foreign = studies(2, seed=31)
    for s in (own, foreign):
        archive.add(s)
        t = s.truth
        fhir.patients.add(f"{t.patient_system}|{t.patient_id}")
    # the EHR has an order under each study's accession: the first for its own patient,
    # the second for somebody else
    fhir.orders[f"{own.truth.accession_system}|{own.truth.accession_number}"] = \
        f"Patient/p-{own.truth.patient_id}"
    fhir.orders[f"{foreign.truth.accession_system}|{foreign.truth.accession_number}"] = \
        "http://ehr.example.org/fhir/Patient/p-someone-else/_history/3"
    rig = make_rig(tmp_path / "state.db", archive=archive, fhir=fhir)
    try:
        rig.mark(own.study_uid, foreign.study_uid)
        await rig.runner.drain()
        linked = _based_on(fhir, own.study_uid)
        assert [b.get("reference") for b in linked] == [f"ServiceRequest/sr-"
                                                       f"{own.truth.accession_number}"]
        refused = _based_on(fhir, foreign.study_uid)
        # the accession stays as a business identifier; no literal reference to the order
        assert refused and all("reference" not in b for b in refused)
        assert refused[0]["identifier"]["value"] == foreign.truth.accession_number
    finally:
        await rig.aclose()


def test_references_compare_by_type_and_id() -> None:
    assert relative_reference("Patient/7") == "Patient/7"
    assert relative_reference("https://ehr.example.org/fhir/Patient/7/_history/2") == \
        "Patient/7"
    assert relative_reference("urn:uuid:1234") is None
    assert relative_reference(None) is None

"""FHIR ServiceRequest + Patient -> Modality Worklist item (PS3.4 K.6): golden pairs and
the orders that must be refused with the field named."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from worklist_helpers import GOLDEN, ct_order, golden_input, site_mapping

from bridge.worklist.errors import OrderDataError, UnmappableStation
from bridge.worklist.mapper import map_order, study_instance_uid


@pytest.mark.parametrize("name", ["ct_order", "xray_location_name_ja"])
def test_golden_orders_map_to_their_worklist_items(name: str) -> None:
    data = golden_input(name)
    item = map_order(data["serviceRequest"], data["patient"], site_mapping())
    expected = json.loads((GOLDEN / f"{name}.item.json").read_text("utf-8"))
    assert item.to_json_dict() == expected


def test_the_study_uid_is_stable_and_differs_between_orders() -> None:
    order, _ = ct_order()
    mapping = site_mapping()
    uid = study_instance_uid(order, mapping)
    assert uid == study_instance_uid(ct_order()[0], mapping)
    assert uid.startswith("2.25.") and len(uid) <= 64
    other, _ = ct_order(id="sr-9", identifier=[
        {"type": {"coding": [{"code": "PLAC"}]}, "value": "PL-1002"},
        {"type": {"coding": [{"code": "ACSN"}]}, "value": "ACC0009"}])
    assert study_instance_uid(other, mapping) != uid


def test_the_study_uid_does_not_change_when_the_server_id_changes() -> None:
    # the placer number is the order's identity, not the FHIR server's logical id
    mapping = site_mapping()
    assert study_instance_uid(ct_order(id="moved")[0], mapping) == \
        study_instance_uid(ct_order()[0], mapping)


def test_an_order_carrying_a_study_uid_keeps_it() -> None:
    order, patient = ct_order()
    order["identifier"].append({"system": "urn:dicom:uid", "value": "urn:oid:1.2.840.99.7"})
    assert map_order(order, patient, site_mapping()).StudyInstanceUID == "1.2.840.99.7"


def test_an_order_carrying_a_malformed_study_uid_is_refused() -> None:
    order, patient = ct_order()
    order["identifier"].append({"system": "urn:dicom:uid", "value": "1.02.x"})
    with pytest.raises(OrderDataError) as err:
        map_order(order, patient, site_mapping())
    assert err.value.field == "ServiceRequest.identifier(urn:dicom:uid)"


def test_the_referrer_comes_from_the_practitioner_when_given() -> None:
    order, patient = ct_order()
    practitioner = {"resourceType": "Practitioner",
                    "name": [{"family": "Smith-Jones", "given": ["Jane", "Ann"],
                              "prefix": ["Dr."]}]}
    item = map_order(order, patient, site_mapping(), requester=practitioner)
    assert str(item.ReferringPhysicianName) == "Smith-Jones^Jane^Ann^Dr."
    assert str(map_order(order, patient, site_mapping()).ReferringPhysicianName) \
        == "Smith^Jane"


def test_an_order_without_a_patient_is_refused_naming_subject() -> None:
    order, patient = ct_order(subject=None)
    with pytest.raises(OrderDataError) as err:
        map_order(order, patient, site_mapping())
    assert err.value.field == "ServiceRequest.subject"


def test_an_order_whose_patient_was_not_found_is_refused() -> None:
    order, _ = ct_order()
    with pytest.raises(OrderDataError, match="Patient/p-1 was not found"):
        map_order(order, None, site_mapping())


@pytest.mark.parametrize("reference", ["http://ehr.example/fhir/Patient/p-1",
                                       "Patient/p-1/_history/3"])
def test_absolute_and_versioned_subject_references_are_read(reference: str) -> None:
    order, patient = ct_order(subject={"reference": reference})
    assert map_order(order, patient, site_mapping()).PatientID == "MRN-42"


@pytest.mark.parametrize("reference", ["Group/g-1", "Patient/", ""])
def test_a_subject_that_is_not_a_patient_is_refused(reference: str) -> None:
    order, patient = ct_order(subject={"reference": reference})
    with pytest.raises(OrderDataError, match="names no Patient"):
        map_order(order, patient, site_mapping())


def test_an_order_for_another_patient_is_refused() -> None:
    order, patient = ct_order(subject={"reference": "Patient/p-other"})
    with pytest.raises(OrderDataError, match="not the Patient given"):
        map_order(order, patient, site_mapping())


def test_an_unmappable_station_is_refused_naming_the_field() -> None:
    order, patient = ct_order(performerType={"coding": [{"system": "x", "code": "US"}]})
    with pytest.raises(UnmappableStation) as err:
        map_order(order, patient, site_mapping())
    assert err.value.field == "ServiceRequest.performerType"
    assert "locationCode" in str(err.value)


def test_location_code_decides_when_performer_type_does_not_match() -> None:
    order, patient = ct_order(
        performerType={"coding": [{"system": "x", "code": "US"}]},
        locationCode=[{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                                   "code": "RADDX"}]}])
    step = map_order(order, patient, site_mapping()).ScheduledProcedureStepSequence[0]
    assert (step.Modality, step.ScheduledStationAETitle) == ("CR", "CR_ROOM_1")


def test_an_order_without_an_accession_is_refused() -> None:
    order, patient = ct_order(identifier=[{"type": {"coding": [{"code": "PLAC"}]},
                                           "value": "PL-1"}])
    with pytest.raises(OrderDataError, match="ACSN"):
        map_order(order, patient, site_mapping())


def test_an_accession_longer_than_sh_is_refused() -> None:
    order, patient = ct_order(identifier=[{"type": {"coding": [{"code": "ACSN"}]},
                                           "value": "A" * 17}])
    with pytest.raises(OrderDataError, match="16 of a DICOM SH"):
        map_order(order, patient, site_mapping())


@pytest.mark.parametrize("occurrence", [None, "tomorrow"])
def test_an_order_without_a_valid_time_is_refused(occurrence: str | None) -> None:
    order, patient = ct_order(occurrenceDateTime=occurrence)
    with pytest.raises(OrderDataError) as err:
        map_order(order, patient, site_mapping())
    assert err.value.field == "ServiceRequest.occurrence[x]"


def test_a_patient_without_identifiers_is_refused() -> None:
    order, patient = ct_order()
    patient = {**patient, "identifier": []}
    with pytest.raises(OrderDataError) as err:
        map_order(order, patient, site_mapping())
    assert err.value.field == "Patient.identifier"

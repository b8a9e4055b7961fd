"""What each FHIR R4 ImagingStudy element is made of (STANDARDS.md table)."""

from __future__ import annotations

from mapping_helpers import ENDPOINT, assert_valid, code, ds, site_engine, study

from bridge.mapping import EndpointSpec, MappingEngine, MappingResult, load_mapping
from bridge.mapping.model import Mapping

ENGINE = site_engine()
DCM = "http://dicom.nema.org/resources/ontology/DCM"


def mapped(instances: list[dict[str, object]], **options: object) -> MappingResult:
    result = ENGINE.map_study(instances, endpoint=ENDPOINT, **options)  # type: ignore[arg-type]
    assert_valid(result)
    return result


def test_study_uid_accession_and_study_id_are_identifiers() -> None:
    result = mapped(
        study(study_attrs={"IssuerOfAccessionNumberSequence": [ds(LocalNamespaceEntityID="RIS_B")]})
    )
    identifiers = result.imaging_study["identifier"]
    assert identifiers[0] == {
        "system": "urn:dicom:uid",
        "value": "urn:oid:1.2.826.0.1.3680043.10.543.1",
    }
    assert identifiers[1]["type"]["coding"][0]["code"] == "ACSN"
    assert identifiers[1]["system"] == "https://hospital-b.example.org/fhir/sid/accession"
    assert identifiers[2] == {"use": "secondary", "value": "S1"}


def test_modality_is_the_union_of_acquisition_series_modalities_sorted() -> None:
    instances = (
        study(modality="MR", per_series=1)
        + study(modality="SR", per_series=1, series=2, sop_class="1.2.840.10008.5.1.4.1.1.88.11")[
            -1:
        ]
    )
    instances += study(modality="CT", per_series=1, series=3)[-1:]
    result = mapped(instances)
    assert [m["code"] for m in result.imaging_study["modality"]] == ["CT", "MR"]
    assert result.imaging_study["modality"][0] == {
        "system": DCM,
        "code": "CT",
        "display": "Computed Tomography",
    }
    assert [s["modality"]["code"] for s in result.imaging_study["series"]] == ["MR", "SR", "CT"]


def test_started_uses_the_study_offset() -> None:
    result = mapped(study(study_attrs={"StudyTime": "235959.5", "TimezoneOffsetFromUTC": "-0330"}))
    assert result.imaging_study["started"] == "2024-01-15T23:59:59.5-03:30"


def test_started_uses_the_site_zone_with_daylight_saving() -> None:
    winter = mapped(study(study_attrs={"TimezoneOffsetFromUTC": None}))
    summer = mapped(study(study_attrs={"TimezoneOffsetFromUTC": None, "StudyDate": "20240715"}))
    assert winter.imaging_study["started"] == "2024-01-15T10:15:30+01:00"
    assert summer.imaging_study["started"] == "2024-07-15T10:15:30+02:00"


def test_based_on_is_logical_until_the_sync_resolves_it() -> None:
    instances = study(
        study_attrs={
            "IssuerOfAccessionNumberSequence": [ds(LocalNamespaceEntityID="RIS_A")],
            "PlacerOrderNumberImagingServiceRequest": "PL9",
            "FillerOrderNumberImagingServiceRequest": "FI9",
        }
    )
    logical = mapped(instances)
    assert [link.kind for link in logical.service_requests] == ["ACSN", "PLAC", "FILL"]
    assert logical.imaging_study["basedOn"] == [logical.service_requests[0].reference()]
    placer_key = "https://hospital-a.example.org/fhir/sid/placer-order|PL9"
    resolved = mapped(instances, service_request_references={placer_key: "ServiceRequest/5"})
    assert resolved.imaging_study["basedOn"][0]["reference"] == "ServiceRequest/5"
    assert resolved.imaging_study["basedOn"][0]["identifier"]["value"] == "PL9"


def test_subject_is_the_resolved_patient_or_a_logical_reference() -> None:
    logical = mapped(study())
    assert logical.imaging_study["subject"] == {
        "type": "Patient",
        "identifier": {"system": "https://hospital-a.example.org/fhir/sid/mrn", "value": "P0001"},
    }
    resolved = mapped(study(), patient_reference="Patient/9")
    assert resolved.imaging_study["subject"]["reference"] == "Patient/9"
    assert logical.patient.search_token == "https://hospital-a.example.org/fhir/sid/mrn|P0001"


def test_patient_demographics_for_the_create_policy() -> None:
    result = mapped(
        study(
            study_attrs={
                "PatientName": {"Alphabetic": "Yamada^Tarou", "Ideographic": "山田^太郎"},
                "PatientBirthDate": "19700101",
                "PatientSex": "F",
            }
        )
    )
    patient = result.patient.resource()
    assert result.patient.policy == "create"
    assert patient["birthDate"] == "1970-01-01" and patient["gender"] == "female"
    assert patient["name"][0] == {"use": "official", "family": "Yamada", "given": ["Tarou"]}
    assert patient["name"][1]["extension"][0]["valueCode"] == "IDE"


def test_referrer_interpreter_location_description_reason() -> None:
    result = mapped(
        study(
            study_attrs={
                "ReferringPhysicianName": "Adams^Laura^^Dr",
                "NameOfPhysiciansReadingStudy": ["Ito^Kenji", "Ito^Kenji", "Khan^Sara"],
                "InstitutionalDepartmentName": "Radiology",
                "StudyDescription": "CT Chest",
                "ReasonForTheRequestedProcedure": "Cough",
            }
        )
    )
    study_json = result.imaging_study
    assert study_json["referrer"] == {"display": "Dr Laura Adams"}
    assert study_json["interpreter"] == [{"display": "Kenji Ito"}, {"display": "Sara Khan"}]
    assert study_json["location"] == {"display": "Radiology"}
    assert study_json["description"] == "CT Chest"
    assert study_json["reasonCode"] == [{"text": "Cough"}]


def test_procedure_code_map_adds_loinc_and_keeps_the_original() -> None:
    result = mapped(
        study(study_attrs={"ProcedureCodeSequence": [code("MRBRAIN", "99HOSPA", "MR Brain")]})
    )
    codings = result.imaging_study["procedureCode"][0]["coding"]
    assert codings[0] == {"system": "http://loinc.org", "code": "24590-2", "display": "MR Brain"}
    assert codings[1]["code"] == "MRBRAIN"


def test_series_laterality_from_image_laterality() -> None:
    one_side = mapped(study(instance_attrs={(1, 1): {"ImageLaterality": "L"}}))
    both = mapped(
        study(instance_attrs={(1, 1): {"ImageLaterality": "L"}, (1, 2): {"ImageLaterality": "R"}})
    )
    unpaired = mapped(study(instance_attrs={(1, 1): {"ImageLaterality": "U"}}))
    assert one_side.imaging_study["series"][0]["laterality"]["code"] == "7771000"
    assert both.imaging_study["series"][0]["laterality"]["code"] == "51440002"
    assert "laterality" not in unpaired.imaging_study["series"][0]


def test_series_performers_are_prf_and_sprf() -> None:
    result = mapped(
        study(
            series_attrs={
                1: {"PerformingPhysicianName": "Ueda^Mika", "OperatorsName": "Novak^Petra"}
            }
        )
    )
    performers = result.imaging_study["series"][0]["performer"]
    assert [p["function"]["coding"][0]["code"] for p in performers] == ["PRF", "SPRF"]
    assert performers[1] == {
        "function": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                    "code": "SPRF",
                    "display": "secondary performer",
                }
            ],
            "text": "operator",
        },
        "actor": {"display": "Petra Novak"},
    }


def test_instances_are_sorted_by_number_then_uid_with_sop_class() -> None:
    result = mapped(
        study(
            per_series=3,
            instance_attrs={(1, 1): {"InstanceNumber": 3}, (1, 3): {"InstanceNumber": None}},
        )
    )
    listed = result.imaging_study["series"][0]["instance"]
    assert [i.get("number") for i in listed] == [2, 3, None]
    assert listed[0]["sopClass"] == {
        "system": "urn:ietf:rfc:3986",
        "code": "urn:oid:1.2.840.10008.5.1.4.1.1.2",
        "display": "CT Image Storage",
    }


def test_instance_detail_none_and_threshold_keep_counts_only() -> None:
    base = load_mapping([ENGINE.mapping.sources[0], ENGINE.mapping.sources[1]])
    small: Mapping = base.model_copy(
        update={"instances": base.instances.model_copy(update={"max_instances_full": 3})}
    )
    engine = MappingEngine(small)
    over = engine.map_study(study(per_series=4), endpoint=ENDPOINT)
    under = engine.map_study(study(per_series=3), endpoint=ENDPOINT)
    assert over.instance_detail == "none" and "instance" not in over.imaging_study["series"][0]
    assert over.imaging_study["series"][0]["numberOfInstances"] == 4
    assert under.instance_detail == "full"


def test_switched_off_elements_are_not_emitted() -> None:
    mapping = ENGINE.mapping
    off = mapping.model_copy(
        update={
            "elements": mapping.elements.model_copy(update={"referrer": False, "displays": False})
        }
    )
    result = MappingEngine(off).map_study(
        study(study_attrs={"ReferringPhysicianName": "A^B"}), endpoint=ENDPOINT
    )
    assert "referrer" not in result.imaging_study
    assert "display" not in result.imaging_study["modality"][0]


def test_endpoint_resource_and_reference() -> None:
    result = mapped(study())
    endpoint = result.endpoint
    assert endpoint["address"] == ENDPOINT.address
    assert endpoint["connectionType"]["code"] == "dicom-wado-rs"
    assert endpoint["payloadType"][0]["coding"][0]["code"] == "any"
    assert result.imaging_study["endpoint"] == [
        {
            "type": "Endpoint",
            "identifier": {"system": "urn:ietf:rfc:3986", "value": ENDPOINT.address},
        }
    ]
    resolved = ENGINE.map_study(
        study(), endpoint=EndpointSpec(address=ENDPOINT.address, id_or_ref="Endpoint/3")
    )
    assert resolved.imaging_study["endpoint"] == [{"reference": "Endpoint/3"}]


def test_element_order_follows_the_r4_specification() -> None:
    keys = list(mapped(study(study_attrs={"StudyDescription": "x"})).imaging_study)
    order = [
        "resourceType",
        "identifier",
        "status",
        "modality",
        "subject",
        "started",
        "basedOn",
        "referrer",
        "interpreter",
        "endpoint",
        "numberOfSeries",
        "numberOfInstances",
        "procedureCode",
        "location",
        "reasonCode",
        "description",
        "series",
    ]
    assert keys == [k for k in order if k in keys]

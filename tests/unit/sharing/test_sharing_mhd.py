"""The ITI-65 Provide Document Bundle: a transaction of the SubmissionSet List, the
DocumentReference with the XDS-I.b metadata and the Binary of the KOS; conditional on the
manifest's identifiers so a retry registers nothing twice; replacement supersedes."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.list import List as FhirList
from fhirclient.models.bundle import Bundle as FcBundle

from bridge.sharing.errors import IdentityUnmapped
from bridge.sharing.kos import manifest_part10
from bridge.sharing.mhd import (
    document_entry,
    reinstate_entry,
    replace_bundle,
    supersede_entry,
)
from tests.unit.sharing.kos_cases import generated, kos_json, manifest_of, read_golden
from tests.unit.sharing.mhd_cases import ACCESSION, REGISTRY, bundle_of
from tests.unit.sharing.sharing_helpers import instance, policy


def by_type(bundle: dict[str, Any], resource_type: str) -> dict[str, Any]:
    [entry] = [e for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type]
    return entry


def test_the_bundle_is_a_transaction_of_list_document_reference_and_binary() -> None:
    bundle = bundle_of()
    assert bundle["type"] == "transaction"
    assert sorted(e["resource"]["resourceType"] for e in bundle["entry"]) == [
        "Binary", "DocumentReference", "List"]
    listing = by_type(bundle, "List")["resource"]
    assert listing["code"]["coding"][0]["code"] == "submissionset"
    assert listing["entry"] == [{"item": {"reference": by_type(bundle, "DocumentReference")[
        "fullUrl"]}}]


def test_the_document_reference_carries_the_xds_i_metadata() -> None:
    study = generated()
    manifest = manifest_of(study.to_dicom_json())
    doc = by_type(bundle_of(accession=ACCESSION), "DocumentReference")["resource"]
    assert doc["masterIdentifier"] == {"system": "urn:ietf:rfc:3986",
                                       "value": f"urn:oid:{manifest.SOPInstanceUID}"}
    [content] = doc["content"]
    assert content["attachment"]["contentType"] == "application/dicom"
    assert content["format"]["system"] == "urn:oid:1.2.840.10008.2.6.1"
    assert content["format"]["code"] == "1.2.840.10008.5.1.4.1.1.88.59"
    assert doc["type"]["coding"][0]["code"] == "18748-4"
    assert doc["category"][0]["coding"][0]["code"] == "18726-0"
    assert doc["context"]["practiceSetting"]["coding"][0]["code"] == "394914008"
    assert doc["context"]["facilityType"]["coding"][0]["code"] == "22232009"
    assert doc["securityLabel"][0]["coding"][0]["code"] == "N"
    related = [r["identifier"] for r in doc["context"]["related"]]
    assert related[0] == {"system": "urn:dicom:uid", "value": f"urn:oid:{study.study_uid}"}
    assert related[1]["value"] == "A-1"
    assert related[1]["type"]["coding"][0]["code"] == "ACSN"
    assert doc["context"]["event"] == [{"coding": [
        {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CR"}]}]


def test_the_subject_is_the_affinity_domain_patient_and_the_local_one_is_source_info() -> None:
    study = generated()
    doc = by_type(bundle_of(), "DocumentReference")["resource"]
    system = policy().affinity_domain.issuers[study.truth.patient_issuer].system
    assert doc["subject"] == {
        "reference": f"Patient?identifier={system}|{study.truth.patient_id}"}
    [source] = doc["contained"]
    assert doc["context"]["sourcePatientInfo"] == {"reference": f"#{source['id']}"}
    assert source["identifier"] == [{"value": study.truth.patient_id}]


def test_the_attachment_names_the_binary_holding_the_kos_bytes() -> None:
    part10 = manifest_part10(kos_json(generated().to_dicom_json()))
    bundle = bundle_of()
    binary = by_type(bundle, "Binary")
    attachment = by_type(bundle, "DocumentReference")["resource"]["content"][0]["attachment"]
    assert base64.b64decode(binary["resource"]["data"]) == part10
    assert binary["resource"]["contentType"] == "application/dicom"
    assert attachment["url"] == f"{REGISTRY}/{binary['request']['url']}"
    assert attachment["size"] == len(part10)
    assert base64.b64decode(attachment["hash"]) == hashlib.sha1(part10).digest()


def test_every_write_is_conditional_or_keyed_so_a_retry_creates_nothing() -> None:
    bundle = bundle_of()
    doc = by_type(bundle, "DocumentReference")
    master = doc["resource"]["masterIdentifier"]
    assert doc["request"] == {"method": "POST", "url": "DocumentReference",
                              "ifNoneExist": f"identifier={master['system']}|{master['value']}"}
    listing = by_type(bundle, "List")
    assert listing["request"]["ifNoneExist"].startswith("identifier=urn:ietf:rfc:3986|urn:oid:")
    binary = by_type(bundle, "Binary")
    assert binary["request"] == {"method": "PUT",
                                 "url": f"Binary/{binary['resource']['id']}"}
    assert bundle_of() == bundle  # the same study gives the same bundle, ids and all


def test_a_changed_study_gives_other_identifiers() -> None:
    instances = generated().to_dicom_json()
    first, second = bundle_of(instances), bundle_of(instances[:-1])
    for resource_type in ("List", "DocumentReference", "Binary"):
        assert by_type(first, resource_type)["request"] != \
            by_type(second, resource_type)["request"], resource_type


def test_the_resources_are_valid_r4_and_r4b() -> None:
    bundle = bundle_of(accession=ACCESSION)
    Bundle.model_validate(bundle)
    DocumentReference.model_validate(by_type(bundle, "DocumentReference")["resource"])
    FhirList.model_validate(by_type(bundle, "List")["resource"])
    FcBundle(bundle, strict=True)


def test_a_generated_study_gives_the_golden_bundle() -> None:
    assert bundle_of(accession=ACCESSION) == read_golden("mhd_seed7_study1.json")


def test_an_unmapped_patient_stops_the_bundle() -> None:
    with pytest.raises(IdentityUnmapped):
        bundle_of([instance(issuer="HOSP_Z")])


OLD = {"resourceType": "DocumentReference", "id": "41", "meta": {"versionId": "3"},
       "status": "current", "content": [{"attachment": {"url": "Binary/x"}}]}


def test_a_replacement_relates_to_the_old_document_and_supersedes_it() -> None:
    bundle = replace_bundle(bundle_of(), OLD)
    doc = document_entry(bundle)["resource"]
    assert doc["relatesTo"] == [{"code": "replaces",
                                 "target": {"reference": "DocumentReference/41"}}]
    superseded = bundle["entry"][-1]
    assert superseded["request"] == {"method": "PUT", "url": "DocumentReference/41",
                                     "ifMatch": 'W/"3"'}
    assert superseded["resource"]["status"] == "superseded"
    assert OLD["status"] == "current"  # the caller's copy is left alone
    Bundle.model_validate(bundle)


def test_superseding_alone_deprecates_a_document() -> None:
    entry = supersede_entry({**OLD, "meta": {}})
    assert entry["resource"]["status"] == "superseded"
    assert "ifMatch" not in entry["request"]


def test_the_author_is_the_sites_name_when_the_policy_gives_one() -> None:
    doc = by_type(bundle_of(), "DocumentReference")["resource"]
    assert doc["author"] == [{"display": "Hospital A imaging (example)"}]
    nameless = policy(source={"name": None})
    assert "author" not in by_type(bundle_of(policy=nameless), "DocumentReference")["resource"]


def test_a_superseded_document_is_made_current_again_under_its_version() -> None:
    old = {"resourceType": "DocumentReference", "id": "d1", "status": "superseded",
           "meta": {"versionId": "3"}}
    entry = reinstate_entry(old)
    assert entry["resource"]["status"] == "current" and old["status"] == "superseded"
    assert entry["request"] == {"method": "PUT", "url": "DocumentReference/d1",
                                "ifMatch": 'W/"3"'}

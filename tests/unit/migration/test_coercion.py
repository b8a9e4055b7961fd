"""Coercion of legacy instances on their way in (issue 15): each rule of a source, the
originals kept in Original Attributes Sequence (0400,0561) as PS3.3 C.12.1.1.9 says, and
an instance no rule changes passed on as the very bytes received."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pydicom
import pytest
from pydicom.dataset import Dataset

from bridge.clock import ManualClock
from bridge.errors import DicomDataError
from bridge.migration.coercion import SourceCoercion
from bridge.migration.coercion_rules import IssuerQualifiers, IssuerRule, SourceRules
from samples.generator import generate_studies

CLOCK = ManualClock(datetime(2026, 12, 8, 3, 4, 5, tzinfo=UTC))


def instance(**values: object) -> bytes:
    """A generated instance's Part-10 bytes with ``values`` set (None: removed)."""
    study = next(generate_studies(1, seed=15, profile="small", id_prefix="COER"))
    ds = next(study.instances())
    for keyword, value in values.items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def coercion(**rules: object) -> SourceCoercion:
    return SourceCoercion(SourceRules.model_validate(rules), modifying_system="BRIDGE-TEST",
                          source_of_previous_values="LEGACY-QR", clock=CLOCK)


def read(data: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def the_item(ds: Dataset) -> tuple[Dataset, Dataset]:
    (item,) = ds.OriginalAttributesSequence
    (modified,) = item.ModifiedAttributesSequence
    return item, modified


def test_an_instance_no_rule_changes_is_the_same_bytes() -> None:
    data = instance(IssuerOfPatientID="SITE-A", AccessionNumber="A-77",
                    InstitutionName="Elsewhere")
    rules = coercion(issuer_of_patient_id={"value": "SITE-A"}, accession_prefix="A-",
                     institution_names={"ST ELSEWHERE": "St Elsewhere"},
                     patient_ids={"OTHER": "MRN-1"})
    assert rules(data) is data


def test_issuer_is_supplied_and_its_absence_is_kept_as_an_empty_original() -> None:
    data = instance(IssuerOfPatientID=None, IssuerOfPatientIDQualifiersSequence=None)
    rules = coercion(issuer_of_patient_id={
        "value": "SITE-A", "qualifiers": {"universal_entity_id": "1.2.3.4",
                                          "universal_entity_id_type": "ISO"}})
    ds = read(rules(data))
    assert ds.IssuerOfPatientID == "SITE-A"
    (q,) = ds.IssuerOfPatientIDQualifiersSequence
    assert (q.UniversalEntityID, q.UniversalEntityIDType) == ("1.2.3.4", "ISO")
    item, modified = the_item(ds)
    assert (item.ModifyingSystem, item.ReasonForTheAttributeModification,
            item.SourceOfPreviousValues) == ("BRIDGE-TEST", "COERCE", "LEGACY-QR")
    assert item.AttributeModificationDateTime.startswith(
        CLOCK.now().astimezone().strftime("%Y%m%d%H%M%S"))
    # absent before: present in the originals with no value (C.12.1.1.9)
    assert "IssuerOfPatientID" in modified and modified.IssuerOfPatientID in ("", None)
    assert len(modified.IssuerOfPatientIDQualifiersSequence) == 0


def test_replace_false_supplies_only_a_missing_issuer() -> None:
    rules = coercion(issuer_of_patient_id={"value": "SITE-A", "replace": False})
    kept = instance(IssuerOfPatientID="OLD-ISSUER")
    assert rules(kept) is kept
    assert read(rules(instance(IssuerOfPatientID=None))).IssuerOfPatientID == "SITE-A"


def test_every_rule_together_keeps_each_original_value() -> None:
    data = instance(PatientID="SA-1", IssuerOfPatientID="OLD", AccessionNumber="77",
                    InstitutionName="ST ELSEWHERE HOSP")
    rules = coercion(patient_ids={"SA-1": "MRN-9"}, issuer_of_patient_id={"value": "ENT"},
                     accession_prefix="A-",
                     institution_names={"ST ELSEWHERE HOSP": "St Elsewhere Hospital"})
    ds = read(rules(data))
    assert (ds.PatientID, ds.IssuerOfPatientID, ds.AccessionNumber, ds.InstitutionName) == (
        "MRN-9", "ENT", "A-77", "St Elsewhere Hospital")
    _, modified = the_item(ds)
    assert (modified.PatientID, modified.IssuerOfPatientID, modified.AccessionNumber,
            modified.InstitutionName) == ("SA-1", "OLD", "77", "ST ELSEWHERE HOSP")
    # the rest of the instance is untouched
    before, after = read(data), ds
    assert after.PixelData == before.PixelData
    assert after.SOPInstanceUID == before.SOPInstanceUID
    assert after.file_meta.TransferSyntaxUID == before.file_meta.TransferSyntaxUID


def test_an_earlier_original_attributes_item_is_kept_before_ours() -> None:
    earlier = Dataset()
    earlier.ModifyingSystem = "OLD-PACS"
    earlier.ReasonForTheAttributeModification = "CORRECT"
    earlier.AttributeModificationDateTime = "20100101000000"
    earlier.ModifiedAttributesSequence = [Dataset()]
    data = instance(AccessionNumber="5", OriginalAttributesSequence=[earlier])
    ds = read(coercion(accession_prefix="X")(data))
    assert [i.ModifyingSystem for i in ds.OriginalAttributesSequence] == [
        "OLD-PACS", "BRIDGE-TEST"]


def test_a_prefix_already_there_is_not_added_twice() -> None:
    rules = coercion(accession_prefix="A-")
    once = rules(instance(AccessionNumber="12"))
    assert read(rules(once)).AccessionNumber == "A-12"


def test_an_accession_the_prefix_makes_too_long_is_a_data_error() -> None:
    with pytest.raises(DicomDataError, match="longer than 16") as caught:
        coercion(accession_prefix="SITE-A-")(instance(AccessionNumber="1234567890"))
    assert caught.value.tag == "(0008,0050) AccessionNumber"


def test_rules_models_are_strict() -> None:
    assert IssuerRule(value="X").replace is True
    assert IssuerQualifiers().universal_entity_id is None

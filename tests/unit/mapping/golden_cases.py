"""The golden cases: DICOM JSON in, FHIR JSON out.

Handmade studies cover every mapped element and the bad-input rules; pydicom's bundled files
(its character-set files included) check Part-10 reading; generated samples check the
product's own test data.  Each case gives its instances, the mapping and map_study options.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mapping_helpers import code, ds, study

Instances = list[dict[str, Any]]


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], Instances]
    mapping: str = "site"  # "default" or "site"
    options: dict[str, Any] = field(default_factory=dict)


def ct_full() -> Instances:
    """A CT chest study with an SR report: every element the mapping fills."""
    attrs = {
        "SpecificCharacterSet": "ISO_IR 192",
        "PatientName": {"Alphabetic": "Müller^Jürgen^^Dr.", "Ideographic": "ミュラー^ユルゲン"},
        "PatientBirthDate": "19600212",
        "PatientSex": "M",
        "IssuerOfAccessionNumberSequence": [ds(LocalNamespaceEntityID="RIS_A")],
        "PlacerOrderNumberImagingServiceRequest": "PL-77",
        "FillerOrderNumberImagingServiceRequest": "FI-88",
        "ReferringPhysicianName": "Adams^Laura^^Dr",
        "NameOfPhysiciansReadingStudy": ["Ito^Kenji", "Jensen^Mette"],
        "StudyDescription": "CT Chest with contrast",
        "ProcedureCodeSequence": [code("CTCHEST", "99HOSPA", "CT Chest")],
        "ReasonForPerformedProcedureCodeSequence": [code("49727002", "SCT", "Cough")],
        "ReasonForTheRequestedProcedure": "Persistent cough",
        "InstitutionalDepartmentName": "Radiology",
        "ModalitiesInStudy": ["CT", "SR"],
        "NumberOfStudyRelatedInstances": 3,
    }
    ct = study(
        series=1,
        per_series=2,
        study_attrs=attrs,
        series_attrs={
            1: {
                "SeriesDescription": "Chest 5.0 Axial",
                "BodyPartExamined": "CHEST",
                "SeriesDate": "20240115",
                "SeriesTime": "101600.123456",
                "PerformingPhysicianName": "Ueda^Mika",
                "OperatorsName": ["Novak^Petra", "Owens^Tyler"],
            }
        },
    )
    sr = study(
        series=2,
        per_series=1,
        modality="SR",
        sop_class="1.2.840.10008.5.1.4.1.1.88.33",
        study_attrs=attrs,
        series_attrs={2: {"SeriesDescription": "Report"}},
        instance_attrs={
            (2, 1): {"ConceptNameCodeSequence": [code("18748-4", "LN", "Diagnostic imaging study")]}
        },
    )[-1:]
    return ct + sr


def mr_knee_laterality() -> Instances:
    """MR of both knees: ImageLaterality L and R in one series -> B; local body part text;
    no TimezoneOffsetFromUTC, so the site's Europe/Berlin zone applies (summer time)."""
    return study(
        modality="MR",
        sop_class="1.2.840.10008.5.1.4.1.1.4",
        per_series=2,
        series=2,
        study_attrs={"StudyDate": "20240715", "StudyTime": "0930", "TimezoneOffsetFromUTC": None},
        series_attrs={
            1: {"BodyPartExamined": "knee", "SeriesDate": "20240715", "SeriesTime": "093512"},
            2: {"BodyPartExamined": "Thorax", "Laterality": "R"},
        },
        instance_attrs={(1, 1): {"ImageLaterality": "L"}, (1, 2): {"ImageLaterality": "R"}},
    )


def garbage_values() -> Instances:
    """Values the mapping must refuse one by one, keeping the rest of the study."""
    instances = study(
        series=2,
        per_series=2,
        study_attrs={
            "StudyDate": "2024-13-45",
            "StudyTime": "25:61",
            "IssuerOfPatientID": "HOSP_Z",
            "StudyDescription": "x" * 70,
            "ReferringPhysicianName": "Bad\ufffdName^Hans",
            "PatientSex": "X",
            "PatientBirthDate": "1960",
            "InstitutionalDepartmentName": "Radio\x07logy",
            "ProcedureCodeSequence": [code("XYZ", "99UNKNOWN", "Something local")],
        },
        series_attrs={
            1: {"BodyPartExamined": "KNEE_JOINT", "SeriesNumber": "one", "Laterality": "Q"},
            2: {"Modality": "XYZ", "SeriesNumber": -3},
        },
        instance_attrs={
            (1, 1): {"InstanceNumber": "1a"},
            (1, 2): {"SOPClassUID": None},
            (2, 2): {"SOPInstanceUID": "1.2.abc"},
        },
    )
    # a PN sent as a plain string and a DA value of the wrong JSON type (PS3.18 F.2.2)
    for instance in instances:
        instance["00081060"] = {"vr": "PN", "Value": ["Plain^String"]}
        instance["00100030"] = {"vr": "DA", "Value": [19600212]}
    return instances


def multi_order() -> Instances:
    """Two requested procedures in RequestAttributesSequence, one sharing the top-level
    accession; placer/filler numbers; an OID issuer for the patient."""
    return study(
        study_attrs={
            "IssuerOfPatientID": None,
            "IssuerOfPatientIDQualifiersSequence": [
                ds(UniversalEntityID="1.2.3.4.5", UniversalEntityIDType="ISO")
            ],
            "IssuerOfAccessionNumberSequence": [ds(LocalNamespaceEntityID="RIS_B")],
            "RequestAttributesSequence": [
                ds(AccessionNumber="A0001", RequestedProcedureID="RP1"),
                ds(
                    AccessionNumber="A0002",
                    IssuerOfAccessionNumberSequence=[ds(LocalNamespaceEntityID="RIS_A")],
                    RequestedProcedureID="RP2",
                ),
            ],
            "PlacerOrderNumberImagingServiceRequest": "PL-1",
        }
    )


def qido_counts_only() -> Instances:
    """QIDO-style partial data: one instance listed, series and study records carry counts."""
    return study(per_series=1)


def no_timezone() -> Instances:
    """Default mapping (no timezone) and no TimezoneOffsetFromUTC: date precision only."""
    return study(study_attrs={"TimezoneOffsetFromUTC": None, "StudyTime": "081500.5"})


def encapsulated_pdf() -> Instances:
    """An encapsulated PDF with a DocumentTitle, hour-only SeriesTime, negative offset."""
    return study(
        modality="DOC",
        sop_class="1.2.840.10008.5.1.4.1.1.104.1",
        per_series=1,
        study_attrs={"TimezoneOffsetFromUTC": "-0500"},
        series_attrs={1: {"SeriesDate": "20240115", "SeriesTime": "10"}},
        instance_attrs={(1, 1): {"DocumentTitle": "Outside report"}},
    )


HANDMADE: tuple[Case, ...] = (
    Case("ct_full", ct_full),
    Case("mr_knee_laterality", mr_knee_laterality),
    Case("garbage_values", garbage_values),
    Case(
        "multi_order",
        multi_order,
        options={
            "service_request_references": {
                "https://hospital-a.example.org/fhir/sid/accession|A0002": "ServiceRequest/42"
            },
            "patient_reference": "Patient/7",
        },
    ),
    Case(
        "qido_counts_only",
        qido_counts_only,
        options={
            "series": [
                ds(
                    SeriesInstanceUID="1.2.826.0.1.3680043.10.543.1.1",
                    NumberOfSeriesRelatedInstances=40,
                ),
                ds(
                    SeriesInstanceUID="1.2.826.0.1.3680043.10.543.1.9",
                    SeriesNumber=9,
                    Modality="PR",
                    NumberOfSeriesRelatedInstances=2,
                ),
            ],
            "study": ds(
                StudyInstanceUID="1.2.826.0.1.3680043.10.543.1",
                NumberOfStudyRelatedSeries=3,
                NumberOfStudyRelatedInstances=50,
                ModalitiesInStudy=["CT", "PR", "MR"],
            ),
        },
    ),
    Case("no_timezone", no_timezone, mapping="default"),
    Case("encapsulated_pdf", encapsulated_pdf),
)

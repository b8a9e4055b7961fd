"""Builders and checks shared by the mapping tests.

``ds(PatientID="P1", ...)`` builds a DICOM JSON dataset (PS3.18 F.2) from PS3.6 keywords, so
test inputs read like the standard; ``study(...)`` builds a whole study's instance list.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fhir.resources.R4B.endpoint import Endpoint
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.imagingstudy import ImagingStudy
from fhir.resources.R4B.patient import Patient
from fhirclient.models.endpoint import Endpoint as FcEndpoint
from fhirclient.models.imagingstudy import ImagingStudy as FcImagingStudy
from fhirclient.models.patient import Patient as FcPatient
from pydicom.datadict import dictionary_VR, tag_for_keyword

from bridge.mapping import EndpointSpec, MappingEngine, MappingResult, load_mapping

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_YAML = REPO_ROOT / "mappings" / "default.yaml"
SITE_YAML = REPO_ROOT / "mappings" / "site-example.yaml"
GOLDEN = Path(__file__).resolve().parent / "golden"
ENDPOINT = EndpointSpec(address="http://archive.example.org/dicom-web", name="main")

STUDY_UID = "1.2.826.0.1.3680043.10.543.1"


def default_engine() -> MappingEngine:
    """An engine with mappings/default.yaml only."""
    return MappingEngine(load_mapping([DEFAULT_YAML]))


def site_engine() -> MappingEngine:
    """An engine with mappings/default.yaml + mappings/site-example.yaml."""
    return MappingEngine(load_mapping([DEFAULT_YAML, SITE_YAML]))


def tag_key(keyword: str) -> str:
    """The DICOM JSON key (8 hex digits) of a PS3.6 keyword."""
    tag = tag_for_keyword(keyword)
    assert tag is not None, keyword
    return f"{tag:08X}"


def ds(**attrs: Any) -> dict[str, Any]:
    """A DICOM JSON dataset from keywords; ``None`` gives an empty element, a list gives
    several values, PN strings become Alphabetic groups, SQ values are lists of datasets."""
    out: dict[str, Any] = {}
    for keyword, value in attrs.items():
        tag = tag_for_keyword(keyword)
        assert tag is not None, keyword
        vr = dictionary_VR(tag)
        key = f"{tag:08X}"
        if value is None:
            out[key] = {"vr": vr}
            continue
        values = value if isinstance(value, list) else [value]
        if vr == "PN":
            values = [{"Alphabetic": v} if isinstance(v, str) else v for v in values]
        out[key] = {"vr": vr, "Value": values}
    return out


def code(value: str, scheme: str, meaning: str) -> dict[str, Any]:
    """A Code Sequence Macro item (PS3.3 8.8)."""
    return ds(CodeValue=value, CodingSchemeDesignator=scheme, CodeMeaning=meaning)


def study(
    *,
    study_uid: str = STUDY_UID,
    series: int = 1,
    per_series: int = 2,
    modality: str = "CT",
    sop_class: str = "1.2.840.10008.5.1.4.1.1.2",
    study_attrs: dict[str, Any] | None = None,
    series_attrs: dict[int, dict[str, Any]] | None = None,
    instance_attrs: dict[tuple[int, int], dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """A study's instances (each carrying study, series and instance attributes, as WADO-RS
    metadata does), with sensible defaults; ``*_attrs`` are keyword overrides (raw DICOM JSON
    elements may be given under 8-hex-digit keys)."""
    base = {
        "StudyInstanceUID": study_uid,
        "PatientID": "P0001",
        "IssuerOfPatientID": "HOSP_A",
        "PatientName": "Doe^Jane",
        "StudyDate": "20240115",
        "StudyTime": "101530",
        "TimezoneOffsetFromUTC": "+0100",
        "AccessionNumber": "A0001",
        "StudyID": "S1",
        **(study_attrs or {}),
    }
    out = []
    for s in range(1, series + 1):
        series_kw = {
            "SeriesInstanceUID": f"{study_uid}.{s}",
            "SeriesNumber": s,
            "Modality": modality,
            **((series_attrs or {}).get(s, {})),
        }
        for i in range(1, per_series + 1):
            instance_kw = {
                "SOPClassUID": sop_class,
                "SOPInstanceUID": f"{study_uid}.{s}.{i}",
                "InstanceNumber": i,
                **((instance_attrs or {}).get((s, i), {})),
            }
            merged = {**base, **series_kw, **instance_kw}
            raw = {k: v for k, v in merged.items() if re.fullmatch("[0-9A-F]{8}", k)}
            keywords = {k: v for k, v in merged.items() if k not in raw}
            out.append({**ds(**keywords), **raw})
    return out


def assert_valid(result: MappingResult) -> None:
    """Every resource validates with fhir.resources (R4B) and parses with fhirclient (R4)."""
    ImagingStudy.model_validate(result.imaging_study)
    Endpoint.model_validate(result.endpoint)
    Patient.model_validate(result.patient.resource())
    FcImagingStudy(result.imaging_study, strict=True)
    FcEndpoint(result.endpoint, strict=True)
    FcPatient(result.patient.resource(), strict=True)
    for link in result.service_requests:
        Identifier.model_validate(link.identifier)
    # R4, never R5 shapes (R5 renamed procedureCode/reasonCode, made modality a concept)
    for r5_only in ("procedure", "reason", "partOf"):
        assert r5_only not in result.imaging_study
    for entry in result.imaging_study.get("modality", []):
        assert "coding" not in entry


def warning_problems(result: MappingResult) -> dict[str, list[str]]:
    """Warnings by tag label, e.g. ``{"(0018,0015) BodyPartExamined": ["unknown ..."]}``."""
    out: dict[str, list[str]] = {}
    for warning in result.warnings:
        out.setdefault(warning.tag, []).append(warning.problem)
    return out

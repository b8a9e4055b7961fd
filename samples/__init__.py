"""Synthetic, deterministic imaging samples for imaging-fhir-bridge.

* :mod:`samples.generator` builds studies as pydicom datasets plus a ground-truth record each.
* :mod:`samples.load` stores generated studies in a DICOMweb archive (STOW-RS).
* :mod:`samples.seed_ehr` creates the matching Patients and ServiceRequests in a FHIR server.
"""

from __future__ import annotations

from samples.generator import (
    PROFILES,
    GeneratedStudy,
    SamplePatient,
    SeriesTruth,
    StudyTruth,
    generate_studies,
    instances_json,
    manifest_dict,
    read_manifest,
    write_manifest,
    write_part10,
)

__all__ = [
    "PROFILES",
    "GeneratedStudy",
    "SamplePatient",
    "SeriesTruth",
    "StudyTruth",
    "generate_studies",
    "instances_json",
    "manifest_dict",
    "read_manifest",
    "write_manifest",
    "write_part10",
]

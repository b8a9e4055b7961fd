"""DICOM -> FHIR R4 mapping, driven by mappings/*.yaml; pure and deterministic.

Public API::

    mapping = load_mapping([Path("mappings/default.yaml"), *site_overrides])
    engine = MappingEngine(mapping)
    result = engine.map_study(instances, endpoint=EndpointSpec(address=wado_rs_base))

Only :mod:`bridge.errors` is imported from the rest of the product.
"""

from __future__ import annotations

from bridge.mapping.canonical import canonical_json, content_hash, json_copy
from bridge.mapping.diff import Change, StudyDiff, diff_json, diff_results
from bridge.mapping.engine import MappingEngine
from bridge.mapping.files import group_by_study, map_files
from bridge.mapping.loader import load_mapping
from bridge.mapping.model import Mapping
from bridge.mapping.problems import WARNING_CODES, Problem, WarningCode
from bridge.mapping.result import (
    EndpointSpec,
    MappingResult,
    MappingWarning,
    PatientLink,
    ServiceRequestLink,
)
from bridge.mapping.tables import Tables, load_tables

__all__ = [
    "WARNING_CODES",
    "Change",
    "EndpointSpec",
    "Mapping",
    "MappingEngine",
    "MappingResult",
    "MappingWarning",
    "PatientLink",
    "Problem",
    "ServiceRequestLink",
    "StudyDiff",
    "Tables",
    "WarningCode",
    "canonical_json",
    "content_hash",
    "diff_json",
    "diff_results",
    "group_by_study",
    "json_copy",
    "load_mapping",
    "load_tables",
    "map_files",
]

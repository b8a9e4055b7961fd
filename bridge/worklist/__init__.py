"""The DICOM Modality Worklist side of the bridge (IHE RAD Scheduled Workflow, issue 17).

Public API::

    mapping = load_worklist_mapping("mappings/worklist.yaml")
    item = map_order(service_request, patient, mapping)      # pure: FHIR -> pydicom Dataset
    matches(query, item)                                      # pure: PS3.4 C.2.2.2 / K.6

The mapper and matcher import nothing of ours but :mod:`bridge.errors` and
:mod:`bridge.mapping` helpers.  See docs/worklist.md for what exists and what remains.
"""

from __future__ import annotations

from bridge.worklist.errors import OrderDataError, QueryError, UnmappableStation
from bridge.worklist.loader import DEFAULT_WORKLIST_MAPPING, load_worklist_mapping
from bridge.worklist.mapper import map_order, study_instance_uid
from bridge.worklist.model import WorklistMapping

__all__ = [
    "DEFAULT_WORKLIST_MAPPING",
    "OrderDataError",
    "QueryError",
    "UnmappableStation",
    "WorklistMapping",
    "load_worklist_mapping",
    "map_order",
    "study_instance_uid",
]

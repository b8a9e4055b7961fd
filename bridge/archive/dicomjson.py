"""Tiny accessors for DICOM JSON datasets (PS3.18 F.2) as the archive returns them.

Only what the change sources need (UIDs, counts, dates); the mapping engine has its own,
complete reading of every VR.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

DicomJson = dict[str, Any]

STUDY_UID = "0020000D"
SERIES_UID = "0020000E"
SOP_UID = "00080018"
STUDY_DATE = "00080020"
MODALITIES_IN_STUDY = "00080061"
N_STUDY_SERIES = "00201206"
N_STUDY_INSTANCES = "00201208"


def values(ds: DicomJson, tag: str) -> list[Any]:
    """The ``Value`` array of ``tag`` (empty when absent or zero-length)."""
    element = ds.get(tag)
    if not isinstance(element, dict):
        return []
    v = element.get("Value")
    return v if isinstance(v, list) else []


def first_str(ds: DicomJson, tag: str) -> str | None:
    v = values(ds, tag)
    return str(v[0]) if v and v[0] is not None else None


def first_int(ds: DicomJson, tag: str) -> int | None:
    v = values(ds, tag)
    if not v:
        return None
    try:
        return int(v[0])
    except (TypeError, ValueError):
        return None


def study_fingerprint(study: DicomJson) -> str:
    """Change-detection fingerprint of a QIDO study record.

    Counts and modalities catch added/removed series and instances; the hash of the whole
    study-level record catches corrected attributes (a fixed accession or description).
    Keys are sorted so the archive's attribute order does not matter.
    """
    modalities = sorted(str(m) for m in values(study, MODALITIES_IN_STUDY))
    digest = hashlib.sha256(json.dumps(study, sort_keys=True, separators=(",", ":")).encode())
    parts = [
        str(first_int(study, N_STUDY_SERIES)),
        str(first_int(study, N_STUDY_INSTANCES)),
        "\\".join(modalities),
        digest.hexdigest()[:16],
    ]
    return "|".join(parts)

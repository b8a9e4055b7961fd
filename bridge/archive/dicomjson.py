"""DICOM JSON datasets (PS3.18 F.2) as the archive returns them, and the change
fingerprint of a study record.

The value reader and the tag constants are the mapping's (:mod:`bridge.mapping.peek`,
:mod:`bridge.mapping.tags`: one definition each, in the room that may import nothing of
ours), re-exported here under the names the change sources use.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from bridge.mapping.peek import first_int, first_str, values
from bridge.mapping.tags import MODALITIES_IN_STUDY, STUDY_DATE
from bridge.mapping.tags import NUMBER_OF_STUDY_RELATED_INSTANCES as N_STUDY_INSTANCES
from bridge.mapping.tags import NUMBER_OF_STUDY_RELATED_SERIES as N_STUDY_SERIES
from bridge.mapping.tags import SERIES_INSTANCE_UID as SERIES_UID
from bridge.mapping.tags import SOP_INSTANCE_UID as SOP_UID
from bridge.mapping.tags import STUDY_INSTANCE_UID as STUDY_UID

__all__ = [
    "MODALITIES_IN_STUDY",
    "N_STUDY_INSTANCES",
    "N_STUDY_SERIES",
    "SERIES_UID",
    "SOP_UID",
    "STUDY_DATE",
    "STUDY_UID",
    "DicomJson",
    "first_int",
    "first_str",
    "study_fingerprint",
    "values",
]

DicomJson = dict[str, Any]


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

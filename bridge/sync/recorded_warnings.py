"""What the sync keeps of a mapping's warnings: no patient data, bounded, counted.

``MappingWarning.value`` is the offending value as read from the study: a date, a person
name, an accession number, free text.  The store keeps the code, the tag, the series and
the problem sentence (built from constants and VR names, never from the value) and drops
the value, except for codes whose value is a term of a vocabulary the mapping looks up
(``WarningCode.value_is_term``: BodyPartExamined, Modality, Laterality,
CodingSchemeDesignator), and only when it looks like such a term (the CS/SH repertoire and
length, PS3.5 6.2).  That term (``ELBOWX``) is what an interface team adds to
mappings/*.yaml; it says nothing about the patient.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from bridge.mapping import WARNING_CODES, MappingWarning
from bridge.metrics import MAPPING_WARNINGS
from bridge.state import StudyWarning

#: a code string or short string term: letters, digits, space and the few separators sites
#: use in local terms (L-SPINE, 99HOSPA); 16 characters, the CS and SH limit
_TERM = re.compile(r"[A-Za-z0-9 _.^-]{1,16}")
#: warnings kept per study: one pathological study must not fill the store
MAX_KEPT = 200
#: the width of bridge_mapping_warning.tag and .place: "(gggg,eeee) " and a PS3.6 keyword
#: (at most 63 characters), "series " and a UID (64) fit; PostgreSQL would refuse a longer
#: value and with it the study's outcome
_COLUMN = 128


def _kept_value(warning: MappingWarning) -> str | None:
    info = WARNING_CODES.get(warning.code)
    if info is None or not info.value_is_term or warning.sensitive or warning.value is None:
        return None
    return warning.value if _TERM.fullmatch(warning.value) else None


def to_stored(warnings: Iterable[MappingWarning]) -> tuple[StudyWarning, ...]:
    """The warnings as the store keeps them: redacted, deduplicated, at most ``MAX_KEPT``.

    Two warnings differing only in a dropped value become one.
    """
    kept: dict[StudyWarning, None] = {}
    for warning in warnings:
        stored = StudyWarning(
            code=warning.code,
            tag=warning.tag[:_COLUMN],
            message=warning.problem,
            where=warning.where[:_COLUMN] if warning.where else None,
            value=_kept_value(warning),
        )
        kept.setdefault(stored)
        if len(kept) == MAX_KEPT:
            break
    return tuple(kept)


def count(archive: str, warnings: Sequence[StudyWarning]) -> None:
    """Count one mapping per warning code it had (``bridge_mapping_warnings_total``)."""
    for code in sorted({w.code for w in warnings}):
        MAPPING_WARNINGS.labels(archive=archive, code=code).inc()

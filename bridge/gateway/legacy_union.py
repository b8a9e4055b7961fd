"""QIDO-RS study search as the union of the archive and the legacy PACS (issue 15,
migration gateway; PS3.18 10.6).

While a legacy PACS is migrated, viewers search the gateway: a study search (``GET
/dicom-web/studies``, default archive) answers the archive's studies and the studies each
legacy source's C-FIND finds (:class:`LegacyStudySearch`, implemented over DIMSE in
:mod:`bridge.migration.gateway_union`), merged by Study Instance UID with the archive's
row winning.  A legacy-only row carries where it lives: Retrieve AE Title (0008,0054) = the
source's AE title, Instance Availability (0008,0056) ``NEARLINE`` (PS3.4 C.4.23.1.1.2).

The patient compartment applies to legacy rows exactly as to archive rows: a patient
token's legacy C-FIND names its PatientID (and issuer), and every legacy row is mapped to
its patient with the gateway's :class:`~bridge.gateway.compartment.PatientMapper` and
dropped unless it is the token's.  A source that does not answer leaves the archive's
answer standing, with a ``Warning`` header (RFC 7234 5.5, code 299) naming the source.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bridge.gateway.compartment import PatientKey, PatientMapper
from bridge.mapping.peek import first_str
from bridge.mapping.tags import STUDY_INSTANCE_UID as STUDY_UID

__all__ = ["LegacyAnswer", "LegacyStudySearch", "merge_studies", "patient_rows",
           "warning_header"]

Row = dict[str, Any]
#: one patient to search for at the legacy side: PatientID and IssuerOfPatientID (None:
#: any issuer; the rows are post-filtered by the mapper)
PatientMatch = tuple[str, str | None]


@dataclass
class LegacyAnswer:
    """The legacy sources' study rows (DICOM JSON), and why some sources gave none."""

    rows: list[Row] = field(default_factory=list)
    #: one sentence per source that did not answer (or could not be asked this query)
    problems: list[str] = field(default_factory=list)


class LegacyStudySearch(Protocol):
    """The legacy side of the union (:class:`bridge.migration.gateway_union.LegacyUnion`)."""

    async def studies(self, params: Sequence[tuple[str, str]], *,
                      patients: Sequence[PatientMatch] | None) -> LegacyAnswer:
        """Study rows matching the QIDO-RS ``params``; ``patients``: only these patients'
        (None: a system token, everyone's).  Never raises for a source that is down."""
        ...


def patient_matches(ids: frozenset[PatientKey], mapper: PatientMapper
                    ) -> list[PatientMatch]:
    """The legacy C-FIND patient keys of a token's patient identifiers."""
    return sorted({(value, mapper.issuer_for(system)) for system, value in ids},
                  key=lambda m: (m[0], m[1] or ""))


def patient_rows(rows: Sequence[Row], ids: frozenset[PatientKey], mapper: PatientMapper
                 ) -> list[Row]:
    """The rows whose patient (mapped as the sync maps it) is one of ``ids``: the
    compartment's post-filter, the authority (a row without PatientID is dropped)."""
    return [r for r in rows if mapper.key_of(r) in ids]


def merge_studies(archive: Sequence[Row], legacy: Sequence[Row], *,
                  limit: int | None = None) -> list[Row]:
    """The archive's rows, then each legacy row whose Study Instance UID the archive (or
    an earlier source) did not answer; at most ``limit`` rows."""
    seen = {first_str(r, STUDY_UID) for r in archive}
    merged = list(archive)
    for row in legacy:
        uid = first_str(row, STUDY_UID)
        if uid and uid not in seen:
            seen.add(uid)
            merged.append(row)
    return merged if limit is None else merged[:limit]


def warning_header(problems: Sequence[str]) -> str:
    """``Warning: 299 - "..."`` (RFC 7234 5.5.7 Miscellaneous Persistent Warning)."""
    text = "; ".join(problems).replace("\\", "").replace('"', "'")
    return f'299 imaging-bridge "legacy studies missing: {text}"'

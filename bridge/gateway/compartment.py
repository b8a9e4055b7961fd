"""The patient compartment: which patient a study belongs to, and who the token's patient is.

SMART Imaging Access: the gateway checks that "the access token ... matches the patient ID
for the requested study".  Both sides are reduced to FHIR patient identifiers
``(system, value)``:

* the study's patient is its PatientID (0010,0020) with the system chosen by
  IssuerOfPatientID (0010,0021) / IssuerOfPatientIDQualifiersSequence (0010,0024) through
  the mapping, with exactly the code the sync uses (:func:`bridge.mapping.identifiers.
  patient_link`), read by a QIDO-RS study query (PS3.18 10.6) with those includefields;
* the token's patient is a FHIR Patient id (``123`` or ``Patient/123``, as the SMART token
  response's ``patient``), whose identifiers are read from the EHR (``GET Patient/123``),
  or an identifier ``system|value`` carried by a viewer token.

A study is in the compartment when its identifier is among the patient's.  Lookups are
cached briefly (``gateway.cache_ttl``); a study moved to another patient is therefore seen
within that delay.  Anything that cannot be proven to be the patient's is refused.

The token's side (:class:`PatientDirectory`) is one for the gateway; the archive's side
(:class:`Compartment`) is one per archive: a study is checked in the archive the request
names, never in another one.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from bridge.cache import TtlCache
from bridge.clock import SYSTEM_CLOCK, Clock
from bridge.errors import FhirRejected
from bridge.fhir.client import FhirClient
from bridge.gateway.errors import Forbidden
from bridge.gateway.proxy import ArchiveProxy
from bridge.mapping import Mapping, load_tables
from bridge.mapping.context import Compiled, StudyContext
from bridge.mapping.identifiers import patient_link
from bridge.mapping.peek import first_str as first_value
from bridge.mapping.tags import ISSUER_OF_PATIENT_ID, PATIENT_ID
from bridge.mapping.tags import ISSUER_OF_PATIENT_ID_QUALIFIERS_SEQUENCE as ISSUER_QUALIFIERS
from bridge.mapping.tags import SERIES_INSTANCE_UID as SERIES_UID
from bridge.mapping.tags import SOP_INSTANCE_UID as SOP_UID
from bridge.mapping.tags import STUDY_INSTANCE_UID as STUDY_UID

log = logging.getLogger(__name__)

PatientKey = tuple[str, str]  # FHIR Identifier (system, value)

#: the attributes the patient identity is mapped from (QIDO includefield, PS3.18 8.3.4.3)
PATIENT_FIELDS = (PATIENT_ID, ISSUER_OF_PATIENT_ID, ISSUER_QUALIFIERS)

_PATIENT_REF = re.compile(r"^(?:Patient/)?([A-Za-z0-9\-.]{1,64})$")


class PatientMapper:
    """DICOM patient attributes -> FHIR identifier, exactly as the sync maps a study."""

    def __init__(self, mapping: Mapping) -> None:
        self._compiled = Compiled.build(mapping, load_tables(mapping.tables_dir))

    def key_of(self, dataset: dict[str, Any]) -> PatientKey | None:
        link = patient_link(StudyContext(self._compiled), dataset)
        return (link.system, link.value) if link.value is not None else None

    def issuer_for(self, system: str) -> str | None:
        """The IssuerOfPatientID that maps to ``system`` when exactly one local name does
        (used to narrow archive queries; the post-filter stays the authority)."""
        names = [k for k, s in self._compiled.patient_issuers.items() if s == system]
        if len(names) != 1 or re.fullmatch(r"[0-9.]+", names[0]) or ":" in names[0]:
            return None  # ambiguous, or a UniversalEntityID (it lives in 0010,0024)
        return names[0]


class PatientDirectory:
    """The token's side: a patient reference -> its FHIR identifiers (cached EHR reads)."""

    def __init__(self, *, fhir: FhirClient, ttl: float, size: int,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.fhir = fhir
        self._patients: TtlCache[str, frozenset[PatientKey]] = TtlCache(
            ttl=ttl, maxsize=size, clock=clock)

    async def identifiers_of(self, patient: str) -> frozenset[PatientKey]:
        """The FHIR identifiers of the token's patient (empty when it has none / is unknown)."""
        cached = self._patients.get(patient)
        if cached is not None:
            return cached
        if "|" in patient:
            system, _, value = patient.partition("|")
            found = frozenset({(system, value)}) if system and value else frozenset()
        else:
            match = _PATIENT_REF.match(patient)
            if match is None:
                raise Forbidden("the token's patient is not a Patient id or system|value")
            try:
                resource = await self.fhir.read("Patient", match.group(1))
            except FhirRejected as exc:  # 404/410: no such patient, nothing is theirs
                log.warning("token patient not readable on the FHIR server",
                            extra={"status": exc.status_code})
                resource = {}
            found = frozenset(
                (str(i["system"]), str(i["value"]))
                for i in resource.get("identifier", []) or []
                if isinstance(i, dict) and i.get("system") and i.get("value")
            )
        self._patients.put(patient, found)
        return found


class Compartment:
    """Answers "is this study in this archive the token's patient's?" (cached lookups)."""

    def __init__(self, *, archive: ArchiveProxy, mapper: PatientMapper, ttl: float,
                 size: int, clock: Clock = SYSTEM_CLOCK) -> None:
        self.archive = archive
        self.mapper = mapper
        self._studies: TtlCache[str, PatientKey] = TtlCache(ttl=ttl, maxsize=size, clock=clock)
        self._members: TtlCache[tuple[str, ...], bool] = TtlCache(ttl=ttl, maxsize=size,
                                                                  clock=clock)

    async def study_patient(self, study_uid: str) -> PatientKey | None:
        """The study's patient identifier, or None when the archive has no such study."""
        cached = self._studies.get(study_uid)
        if cached is not None:
            return cached
        rows = await self.archive.qido_json(
            "studies",
            [("StudyInstanceUID", study_uid), *(("includefield", f) for f in PATIENT_FIELDS)],
        )
        keys = {self.mapper.key_of(r) for r in rows if first_value(r, STUDY_UID) == study_uid}
        key = keys.pop() if len(keys) == 1 else None  # none, or ambiguous: not provable
        if key is not None:
            self._studies.put(study_uid, key)
        return key

    async def row_patient(self, row: dict[str, Any]) -> PatientKey | None:
        """The patient of one QIDO result row: its own patient attributes, else its study's."""
        if PATIENT_ID in row:
            return self.mapper.key_of(row)
        study_uid = first_value(row, STUDY_UID)
        return await self.study_patient(study_uid) if study_uid else None

    async def check_study(self, ids: frozenset[PatientKey], study_uid: str) -> None:
        """Raise :class:`Forbidden` unless the study is one of the patient's (an unknown
        study is refused the same way: no existence oracle)."""
        if await self.study_patient(study_uid) not in ids:
            raise Forbidden("the study is not in the token's patient compartment")

    async def check_member(self, study_uid: str, series_uid: str,
                           instance_uid: str | None = None) -> None:
        """Raise :class:`Forbidden` unless the series (and instance) belong to the study:
        the path's study was checked, its children must really be its children."""
        key = (study_uid, series_uid, instance_uid or "")
        if self._members.get(key):
            return
        if instance_uid is None:
            rows = await self.archive.qido_json(
                f"studies/{study_uid}/series", [("SeriesInstanceUID", series_uid)])
            ok = any(first_value(r, SERIES_UID) == series_uid for r in rows)
        else:
            rows = await self.archive.qido_json(
                f"studies/{study_uid}/series/{series_uid}/instances",
                [("SOPInstanceUID", instance_uid)])
            ok = any(first_value(r, SOP_UID) == instance_uid for r in rows)
        if not ok:
            raise Forbidden("the series or instance is not in the token's patient compartment")
        self._members.put(key, True)

"""The legacy side of the migration gateway's QIDO-RS union (issue 15; the gateway side
is :mod:`bridge.gateway.legacy_union`).

A QIDO-RS study search (PS3.18 10.6.1) is asked of each legacy source as a Study Root
C-FIND at STUDY level (PS3.4 C.6.2.1): the matching keys of the query that a study-level
C-FIND has (:data:`MATCH_KEYWORDS`) are copied over (a UID list's commas become
backslashes, PS3.4 C.2.2.2.2), the return keys are the QIDO-RS default study attributes
(PS3.18 Table 6.7.1-2) plus the ``includefield`` keywords.  A query naming any other
attribute is not asked of the legacy sources (their answer would look filtered when it
is not): the archive's rows answer with a Warning.  Each identifier becomes a DICOM JSON
row (PS3.18 F.2) without Query/Retrieve Level, marked Retrieve AE Title = the source's AE
title and Instance Availability ``NEARLINE``.  Sources are asked one after the other;
one that fails (down, refusing, aborting, failing the query) is a problem sentence, never
an error of the search.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset

from bridge.errors import BridgeError
from bridge.gateway.legacy_union import LegacyAnswer, PatientMatch
from bridge.migration.client import LegacySource
from bridge.migration.errors import LegacyRetrieveFailed, StudyNotAtSource
from bridge.migration.study import migration_kind
from bridge.sections.migration import MigrationSettings
from bridge.state.store import StateStore, open_store

__all__ = ["MATCH_KEYWORDS", "LegacyUnion", "identifier_row", "study_identifier"]

log = logging.getLogger(__name__)

#: study-level keys a QIDO-RS query may match on at the legacy side (PS3.4 C.6.2.1.2,
#: Table C.6-5 and C.6-4 patient keys of Study Root)
MATCH_KEYWORDS = frozenset({
    "StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber", "StudyID",
    "ModalitiesInStudy", "ReferringPhysicianName", "StudyDescription", "PatientName",
    "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex",
})
#: QIDO-RS default return attributes of a study search (PS3.18 Table 6.7.1-2)
RETURN_KEYWORDS = (
    "StudyDate", "StudyTime", "AccessionNumber", "ModalitiesInStudy",
    "ReferringPhysicianName", "PatientName", "PatientID", "IssuerOfPatientID",
    "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyID",
    "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances", "StudyDescription",
)
#: parameters that are not matches; limit/offset/fuzzy matching are the gateway's
_CONTROL = frozenset({"limit", "offset", "includefield", "fuzzymatching",
                      "emptyvaluematching", "multiplevaluematching", "charset"})
#: (0008,0056) Instance Availability of a legacy-only study (PS3.4 C.4.23.1.1.2)
NEARLINE = "NEARLINE"
#: the due time of a study a viewer asked for: before any the inventory queued, so the
#: migration workers claim it first (they claim the oldest due first)
FIRST = datetime(2000, 1, 1, tzinfo=UTC)

#: queue a study's migration task: (kind, key, due_at) -> None, a blocking state-store call
Enqueue = Callable[..., None]


def _keyword(key: str) -> str | None:
    """The keyword of a plain keyword or eight-digit tag key; None for a path or unknown."""
    if "." in key:
        return None
    if len(key) == 8 and all(c in "0123456789abcdefABCDEF" for c in key):
        return keyword_for_tag(int(key, 16)) or None
    return key if tag_for_keyword(key) is not None else None


def study_identifier(params: Sequence[tuple[str, str]], patient: PatientMatch | None
                     ) -> Dataset | None:
    """The C-FIND identifier of a QIDO-RS study search for one patient (None: any), or
    None when the query matches on a key a legacy C-FIND cannot be trusted with."""
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    for keyword in RETURN_KEYWORDS:
        setattr(ds, keyword, "")
    for key, value in params:
        if key == "includefield":
            for name in value.split(","):
                found = _keyword(name)
                if found and found not in ds and dictionary_VR(found) != "SQ":
                    setattr(ds, found, "")
            continue
        if key in _CONTROL:
            continue
        matched = _keyword(key)
        if matched is None or matched not in MATCH_KEYWORDS:
            return None
        if matched == "StudyInstanceUID":
            value = value.replace(",", "\\")
        setattr(ds, matched, value)
    if patient is not None:
        ds.PatientID = patient[0]
        if patient[1] is not None:
            ds.IssuerOfPatientID = patient[1]
    return ds


def identifier_row(identifier: Dataset, ae_title: str) -> dict[str, Any]:
    """A C-FIND identifier as a DICOM JSON study row marked with where it lives."""
    row = identifier.to_json_dict()
    row.pop("00080052", None)  # Query/Retrieve Level: a C-FIND thing, not a QIDO one
    row.pop("00080005", None)  # Specific Character Set: the JSON is Unicode (F.2)
    row["00080054"] = {"vr": "AE", "Value": [ae_title]}
    row["00080056"] = {"vr": "CS", "Value": [NEARLINE]}
    return row


class StoreQueue:
    """``enqueue_task`` of the state store at ``url``, opened on first use (the gateway
    needs it only when a viewer opens a study still on legacy)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._store: StateStore | None = None

    def __call__(self, kind: str, key: str, *, due_at: datetime | None = None) -> None:
        if self._store is None:
            self._store = open_store(self.url)
        self._store.enqueue_task(kind, key, due_at=due_at)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


class LegacyUnion:
    """Every legacy source's C-FIND, one after the other (the gateway's
    :class:`~bridge.gateway.legacy_union.LegacyStudySearch`)."""

    def __init__(self, sources: Sequence[LegacySource], *, enqueue: Enqueue | None = None
                 ) -> None:
        """``enqueue``: ``StateStore.enqueue_task`` (None: a study a viewer opens is not
        queued, e.g. without a state store)."""
        self.sources = list(sources)
        self.enqueue = enqueue

    @classmethod
    def of(cls, migration: MigrationSettings, *, state_url: str | None = None
           ) -> LegacyUnion:
        """The union of ``migration.sources``; with ``state_url``, a viewer's study is
        queued in that state store (opened at the first such study)."""
        enqueue = StoreQueue(state_url) if state_url is not None else None
        return cls([LegacySource(s) for s in migration.sources], enqueue=enqueue)

    async def aclose(self) -> None:
        """Close the state store a viewer's study was queued in, if one was opened."""
        if isinstance(self.enqueue, StoreQueue):
            self.enqueue.close()

    async def _holder(self, study_uid: str) -> tuple[LegacySource, dict[str, Any]] | None:
        query = study_identifier([("StudyInstanceUID", study_uid)], None)
        assert query is not None
        for source in self.sources:
            try:
                found = await source.find(query)
            except BridgeError as exc:
                log.warning("legacy source did not answer a gateway study look-up",
                            extra={"source": source.name, "error_type": type(exc).__name__})
                continue
            for ds in found.identifiers:
                if ds.get("StudyInstanceUID") == study_uid:
                    return source, identifier_row(ds, source.settings.ae_title)
        return None

    async def locate(self, study_uid: str) -> dict[str, Any] | None:
        held = await self._holder(study_uid)
        return held[1] if held is not None else None

    async def instances(self, study_uid: str) -> list[bytes]:
        """The study's instances by C-GET into memory (PS3.4 C.4.3), its migration task
        queued due before any other first (a viewer waits for it)."""
        held = await self._holder(study_uid)
        if held is None:
            raise StudyNotAtSource(f"no legacy source holds study {study_uid} any more")
        source = held[0]
        if self.enqueue is not None:
            await asyncio.to_thread(self.enqueue, migration_kind(source.name), study_uid,
                                    due_at=FIRST)
        got = await source.get_study(study_uid)
        if not got.received:
            raise LegacyRetrieveFailed(f"legacy source {source.name!r} sent no instance of "
                                       f"study {study_uid}", status=got.status)
        return [one.part10() for one in got.received]

    async def studies(self, params: Sequence[tuple[str, str]], *,
                      patients: Sequence[PatientMatch] | None) -> LegacyAnswer:
        answer = LegacyAnswer()
        if any(k == "offset" and v not in ("", "0") for k, v in params):
            return answer  # the legacy rows come with the first page only
        if patients is not None and not patients:
            return answer
        each: Sequence[PatientMatch | None] = [None] if patients is None else patients
        queries = [study_identifier(params, p) for p in each]
        if any(q is None for q in queries):
            answer.problems.append("the query matches on attributes the legacy sources are "
                                   "not asked for")
            return answer
        for source in self.sources:
            try:
                for query in queries:
                    assert query is not None
                    found = await source.find(query)
                    answer.rows.extend(identifier_row(ds, source.settings.ae_title)
                                       for ds in found.identifiers)
                    if found.capped:
                        answer.problems.append(f"{source.name} cut its list short")
            except BridgeError as exc:
                log.warning("legacy source did not answer a gateway study search",
                            extra={"source": source.name, "error_type": type(exc).__name__})
                answer.problems.append(f"{source.name} did not answer ({type(exc).__name__})")
        return answer

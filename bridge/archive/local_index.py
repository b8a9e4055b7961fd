"""The SQLite index of :class:`~bridge.archive.local_files.LocalFilesSource`: its tables,
the attributes each QIDO-RS level returns, and study-level matching.

Tables (every statement's parameters are positional, in the columns' order)::

    files      path PK, mtime_ns, size, seq (sorted file order)     what was read, and when
    instances  path, position, study_uid, series_uid, sop_uid, dataset (DICOM JSON)
    studies    study_uid PK, patient_id, study_date, accession, modalities (\\CT\\MR\\),
               first (the first instance's JSON), record (the QIDO study record)
    series     series_uid, study_uid, number, record (the QIDO series record)

Matching follows PS3.4 C.2.2.2 as QIDO-RS uses it (PS3.18 8.3.4.1): a list of UIDs, a
single date or a date range, single values with ``*``/``?`` wildcards; an empty value
matches everything.  A key the index cannot match is refused with 400, as an archive
refuses an unsupported query.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from bridge.archive.dicomjson import DicomJson
from bridge.errors import ArchiveRejected
from bridge.mapping import tags as t

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL,
    seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS instances (
    path TEXT NOT NULL, position INTEGER NOT NULL, study_uid TEXT NOT NULL,
    series_uid TEXT NOT NULL, sop_uid TEXT, dataset TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS instances_study ON instances (study_uid, series_uid);
CREATE INDEX IF NOT EXISTS instances_path ON instances (path);
CREATE TABLE IF NOT EXISTS studies (
    study_uid TEXT PRIMARY KEY, patient_id TEXT, study_date TEXT, accession TEXT,
    modalities TEXT NOT NULL, first TEXT NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS studies_date ON studies (study_date);
CREATE TABLE IF NOT EXISTS series (
    series_uid TEXT NOT NULL, study_uid TEXT NOT NULL, number INTEGER, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS series_study ON series (study_uid);
"""

#: attributes returned at each level (PS3.18 10.6.3.3, Tables 10.6.3-3 to -5: the
#: required return attributes and the patient/study ones an archive adds); the derived
#: counts and ModalitiesInStudy are computed from the index
_LEVEL_TAGS: dict[str, tuple[str, ...]] = {
    "study": (
        t.STUDY_DATE, t.STUDY_TIME, t.ACCESSION_NUMBER, t.ISSUER_OF_ACCESSION_NUMBER_SEQUENCE,
        t.REFERRING_PHYSICIAN_NAME, t.TIMEZONE_OFFSET_FROM_UTC, t.STUDY_DESCRIPTION,
        t.PROCEDURE_CODE_SEQUENCE, t.PATIENT_NAME, t.PATIENT_ID, t.ISSUER_OF_PATIENT_ID,
        t.ISSUER_OF_PATIENT_ID_QUALIFIERS_SEQUENCE, t.PATIENT_BIRTH_DATE, t.PATIENT_SEX,
        t.STUDY_INSTANCE_UID, t.STUDY_ID,
    ),
    "series": (
        t.SERIES_DATE, t.SERIES_TIME, t.MODALITY, t.SERIES_DESCRIPTION, t.BODY_PART_EXAMINED,
        t.STUDY_INSTANCE_UID, t.SERIES_INSTANCE_UID, t.SERIES_NUMBER, t.LATERALITY,
        "00400244",  # PerformedProcedureStepStartDate
        "00400245",  # PerformedProcedureStepStartTime
        t.REQUEST_ATTRIBUTES_SEQUENCE,
    ),
    "instance": (
        t.SOP_CLASS_UID, t.SOP_INSTANCE_UID, t.STUDY_INSTANCE_UID, t.SERIES_INSTANCE_UID,
        t.INSTANCE_NUMBER,
        "00280008",  # NumberOfFrames
        "00280010",  # Rows
        "00280011",  # Columns
        "00280100",  # BitsAllocated
    ),
}


def level_record(level: Literal["study", "series", "instance"], ds: DicomJson,
                 derived: Mapping[str, Any]) -> DicomJson:
    """The QIDO record of ``level`` from one instance's dataset, with ``derived`` added,
    keys in tag order (PS3.18 F.2: attributes sorted by tag)."""
    record = {tag: ds[tag] for tag in _LEVEL_TAGS[level] if tag in ds}
    record.update(derived)
    return dict(sorted(record.items()))


_KEYS = {
    "StudyInstanceUID": t.STUDY_INSTANCE_UID, "StudyDate": t.STUDY_DATE, "PatientID": t.PATIENT_ID,
    "AccessionNumber": t.ACCESSION_NUMBER, "ModalitiesInStudy": t.MODALITIES_IN_STUDY,
}


def _glob(value: str) -> str:
    # PS3.4 C.2.2.2.4 wildcards: "*" any run, "?" one character; SQLite GLOB also reads
    # "[", which is escaped as the class "[[]"
    return value.replace("[", "[[]")


def study_filters(filters: Mapping[str, str]) -> tuple[str, list[Any]]:
    """SQL conditions (``AND ...``) and parameters for QIDO study-level matching keys."""
    where: list[str] = []
    params: list[Any] = []
    for key, raw in filters.items():
        tag = _KEYS.get(key, key.upper())
        value = str(raw)
        if value == "":  # universal matching (PS3.4 C.2.2.2.3)
            continue
        if tag == t.STUDY_INSTANCE_UID:  # list of UID matching (C.2.2.2.2), "," or "\"
            uids = [u for u in value.replace("\\", ",").split(",") if u]
            where.append(f"study_uid IN ({','.join('?' * len(uids))})")
            params += uids
        elif tag == t.STUDY_DATE:  # single value or range matching (C.2.2.2.5)
            if "-" in value:
                low, high = value.split("-", 1)
                where.append("study_date GLOB '[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]'")
                if low:
                    where.append("study_date >= ?")
                    params.append(low)
                if high:
                    where.append("study_date <= ?")
                    params.append(high)
            else:
                where.append("study_date = ?")
                params.append(value)
        elif tag in (t.PATIENT_ID, t.ACCESSION_NUMBER):
            column = "patient_id" if tag == t.PATIENT_ID else "accession"
            where.append(f"{column} GLOB ?")
            params.append(_glob(value))
        elif tag == t.MODALITIES_IN_STUDY:
            where.append("instr(modalities, ?) > 0")
            params.append(f"\\{value}\\")
        else:
            raise ArchiveRejected(f"the local file index cannot match {key!r} "
                                  "(StudyInstanceUID, StudyDate, PatientID, AccessionNumber, "
                                  "ModalitiesInStudy)", status_code=400)
    return "".join(f" AND {w}" for w in where), params

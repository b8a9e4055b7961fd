"""DICOM files on disk as an archive: the second real :class:`~bridge.archive.source.
DicomwebSource`, after dicomweb-client's local-files mode.

A folder (or a list of files and folders) of DICOM Part-10 files, and DICOM JSON files
(``.json``: one dataset or a WADO-RS metadata array), is read once with pydicom
(``stop_before_pixels``, text decoded with each file's SpecificCharacterSet, see
:mod:`bridge.mapping.files`) and indexed in SQLite: one row per instance with its DICOM
JSON (PS3.18 F.2, no bulk data), and one row per study and per series holding the
attributes QIDO-RS returns at that level (PS3.18 10.6.3.3) and the derived counts and
modalities (NumberOfStudyRelatedSeries/Instances, ModalitiesInStudy,
NumberOfSeriesRelatedInstances).  Queries are then answered from the index as an archive
answers them: the same searches, paging and errors as the HTTP client.

:meth:`LocalFilesSource.reindex` reads only files added or changed since the last call
(path, size, modification time) and forgets removed ones, so an index kept in a file
(``index=``) is cheap to reopen.  Calls are synchronous SQLite under ``async`` methods:
this serves previews, tests and benchmarks, not a server.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydicom.datadict import tag_for_keyword

from bridge.archive.dicomjson import (
    SERIES_UID,
    SOP_UID,
    STUDY_UID,
    DicomJson,
    first_int,
    first_str,
)
from bridge.archive.local_index import SCHEMA, level_record, study_filters
from bridge.archive.source import STUDY_INCLUDE, StudySearches
from bridge.errors import ArchiveRejected, DicomDataError, StudyGone
from bridge.mapping import tags as t
from bridge.mapping.files import map_files

log = logging.getLogger(__name__)


class LocalFilesSource(StudySearches):
    """DICOM files indexed in SQLite, answering as a DICOMweb archive.

    Parameters
    ----------
    paths
        Files and folders (read recursively, in sorted order).
    name
        The archive name the bridge knows it by.
    index
        The SQLite database: ``":memory:"`` (default) or a file kept between runs.
    page_size, max_results
        QIDO paging as an archive's settings give them (``max_results``: a result cap).
    strict
        Raise :class:`~bridge.errors.DicomDataError` for a file that is not DICOM (as
        ``imaging-bridge preview`` does) instead of skipping it with a warning.
    """

    def __init__(self, paths: Sequence[str | Path] | str | Path, *, name: str = "local",
                 index: str | Path = ":memory:", page_size: int = 100,
                 max_results: int | None = None, strict: bool = False) -> None:
        self._paths = [Path(p) for p in ([paths] if isinstance(paths, str | Path) else paths)]
        self.name = name
        self.base_url = f"file://{self._paths[0].resolve()}" if self._paths else "file://"
        self.page_size = page_size
        self.max_results = max_results
        self.strict = strict
        self._index_file = None if str(index) == ":memory:" else Path(index).resolve()
        self._db = sqlite3.connect(str(index), isolation_level=None)
        self._db.executescript(SCHEMA)
        #: files passed over by the last :meth:`reindex` (not DICOM), when not strict
        self.skipped: list[Path] = []
        self.reindex()

    async def __aenter__(self) -> LocalFilesSource:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        """Close the index (what :meth:`aclose` does, for synchronous callers)."""
        self._db.close()

    # --- the index -----------------------------------------------------------------------

    def _files(self) -> Iterator[Path]:
        for path in self._paths:
            found = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            yield from (p for p in found if p.resolve() != self._index_file)

    def reindex(self) -> int:
        """Read the files added or changed since the last call; return how many were read."""
        known = {row[0]: (row[1], row[2]) for row in
                 self._db.execute("SELECT path, mtime_ns, size FROM files")}
        touched: set[str] = set()
        read, seen = 0, set()
        self.skipped = []
        self._db.execute("BEGIN")
        try:
            for order, path in enumerate(self._files()):
                key = str(path)
                seen.add(key)
                stat = path.stat()
                self._db.execute("UPDATE files SET seq = ? WHERE path = ?", (order, key))
                if known.get(key) == (stat.st_mtime_ns, stat.st_size):
                    continue
                touched |= self._forget(key)
                datasets = self._read(path)
                read += 1
                self._db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)",
                                 (key, stat.st_mtime_ns, stat.st_size, order))
                for position, ds in enumerate(datasets):
                    study = first_str(ds, STUDY_UID) or ""
                    touched.add(study)
                    self._db.execute(
                        "INSERT INTO instances (path, position, study_uid, series_uid, "
                        "sop_uid, dataset) VALUES (?, ?, ?, ?, ?, ?)",
                        (key, position, study, first_str(ds, SERIES_UID) or "",
                         first_str(ds, SOP_UID), json.dumps(ds, separators=(",", ":"))))
            for gone in set(known) - seen:
                touched |= self._forget(gone)
            for study in touched:
                self._summarise(study)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return read

    def _read(self, path: Path) -> list[DicomJson]:
        try:
            return map_files([path])
        except DicomDataError:
            if self.strict:
                raise
            log.warning("not a DICOM file; left out of the index", extra={"path": str(path)})
            self.skipped.append(path)
            return []

    def _forget(self, key: str) -> set[str]:
        studies = {row[0] for row in self._db.execute(
            "SELECT DISTINCT study_uid FROM instances WHERE path = ?", (key,))}
        self._db.execute("DELETE FROM instances WHERE path = ?", (key,))
        self._db.execute("DELETE FROM files WHERE path = ?", (key,))
        return studies

    def _instances(self, where: str, params: Sequence[Any]) -> list[DicomJson]:
        rows = self._db.execute(
            "SELECT i.dataset FROM instances i JOIN files f ON f.path = i.path "
            f"WHERE {where} ORDER BY f.seq, i.position", params)
        return [json.loads(row[0]) for row in rows]

    def _summarise(self, study_uid: str) -> None:
        """Rebuild the study's and its series' QIDO records from its instances."""
        self._db.execute("DELETE FROM studies WHERE study_uid = ?", (study_uid,))
        self._db.execute("DELETE FROM series WHERE study_uid = ?", (study_uid,))
        instances = self._instances("i.study_uid = ?", (study_uid,))
        if not instances:
            return
        by_series: dict[str, list[DicomJson]] = {}
        for ds in instances:
            by_series.setdefault(first_str(ds, SERIES_UID) or "", []).append(ds)
        modalities = sorted({m for group in by_series.values()
                             if (m := first_str(group[0], t.MODALITY))})
        study = level_record("study", instances[0], {
            t.MODALITIES_IN_STUDY: {"vr": "CS", **({"Value": modalities} if modalities else {})},
            t.NUMBER_OF_STUDY_RELATED_SERIES: {"vr": "IS", "Value": [len(by_series)]},
            t.NUMBER_OF_STUDY_RELATED_INSTANCES: {"vr": "IS", "Value": [len(instances)]},
        })
        self._db.execute(
            "INSERT INTO studies VALUES (?, ?, ?, ?, ?, ?, ?)",
            (study_uid, first_str(study, t.PATIENT_ID), first_str(study, t.STUDY_DATE),
             first_str(study, t.ACCESSION_NUMBER), "\\" + "\\".join(modalities) + "\\",
             json.dumps(instances[0], separators=(",", ":")),
             json.dumps(study, separators=(",", ":"))))
        for series_uid, group in by_series.items():
            record = level_record("series", group[0], {
                t.NUMBER_OF_SERIES_RELATED_INSTANCES: {"vr": "IS", "Value": [len(group)]}})
            self._db.execute("INSERT INTO series VALUES (?, ?, ?, ?)",
                             (series_uid, study_uid, first_int(record, t.SERIES_NUMBER),
                              json.dumps(record, separators=(",", ":"))))

    def study_uids(self) -> list[str]:
        """Every indexed study's key, in file order ("" for datasets without a
        StudyInstanceUID, which no query finds)."""
        return [row[0] for row in self._db.execute(
            "SELECT i.study_uid FROM instances i JOIN files f ON f.path = i.path "
            "GROUP BY i.study_uid ORDER BY MIN(f.seq * 1000000 + i.position)")]

    def instances_of(self, study_key: str) -> list[DicomJson]:
        """The datasets indexed under ``study_key`` (as :meth:`study_uids` names it), in
        file order, with no check of the UID: what preview maps, valid or not."""
        return self._instances("i.study_uid = ?", (study_key,))

    # --- QIDO-RS (PS3.18 10.6) -------------------------------------------------------------

    async def search_studies(
        self, filters: Mapping[str, str] | None = None, *, limit: int | None = None,
        offset: int = 0, includefield: Sequence[str] = STUDY_INCLUDE,
    ) -> list[DicomJson]:
        where, params = study_filters(filters or {})
        sql = f"SELECT record, first FROM studies WHERE study_uid != '' {where} " \
              "ORDER BY study_uid"
        cap = self.max_results
        count = limit if cap is None else min(limit if limit is not None else cap, cap - offset)
        if count is not None:
            sql += " LIMIT ? OFFSET ?"
            params += [max(0, count), offset]
        elif offset:
            sql += " LIMIT -1 OFFSET ?"
            params.append(offset)
        return [_with_includes(json.loads(record), first, includefield)
                for record, first in self._db.execute(sql, params)]

    async def study_series(self, study_uid: str) -> list[DicomJson]:
        rows = list(self._db.execute(
            "SELECT record FROM series WHERE study_uid = ? ORDER BY number, series_uid",
            (_uid(study_uid),)))
        if not rows:
            raise StudyGone(f"study {study_uid} is not in archive {self.name!r}")
        return [json.loads(row[0]) for row in rows]

    async def series_instances(self, study_uid: str, series_uid: str) -> list[DicomJson]:
        found = self._instances("i.study_uid = ? AND i.series_uid = ?",
                                (_uid(study_uid), _uid(series_uid)))
        return [level_record("instance", ds, {}) for ds in found]

    # --- WADO-RS metadata (PS3.18 10.4.1.1.2) ------------------------------------------------

    async def study_instances(self, study_uid: str) -> list[DicomJson]:
        found = self._instances("i.study_uid = ?", (_uid(study_uid),))
        if not found:
            raise StudyGone(f"study {study_uid} has no instances in archive {self.name!r}")
        return found

    async def confirm_gone(self, study_uid: str, *, cause: StudyGone) -> None:
        """One file index, one answer: what QIDO cannot find is gone; a study it finds
        while its metadata was "not found" cannot happen here, and is refused as the HTTP
        client refuses it."""
        if await self.search_studies({"StudyInstanceUID": _uid(study_uid)}):
            raise ArchiveRejected(f"study {study_uid} is listed but its metadata was not "
                                  f"found in archive {self.name!r}; not treated as gone",
                                  status_code=404) from cause

    async def ping(self) -> None:
        self._db.execute("SELECT 1").fetchone()


def _uid(value: str) -> str:
    from bridge.dicom_uid import require_uid

    return require_uid(value)


def _with_includes(record: DicomJson, first: str, includefield: Iterable[str]) -> DicomJson:
    """``record`` plus each asked-for attribute the study's first instance has
    (PS3.18 8.3.4.3 includefield: a tag or a keyword)."""
    extra = [f for f in includefield if f != "all"]
    if not extra:
        return record
    instance: DicomJson | None = None
    for field in extra:
        tag = field.upper() if len(field) == 8 and _is_hex(field) else _keyword_tag(field)
        if tag is None or tag in record:
            continue
        instance = instance if instance is not None else json.loads(first)
        if tag in instance:
            record[tag] = instance[tag]
    return record


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def _keyword_tag(keyword: str) -> str | None:
    tag = tag_for_keyword(keyword)
    return None if tag is None else f"{tag:08X}"


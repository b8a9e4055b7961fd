"""Warnings of each study's latest mapping: replaced with an outcome, read for reports.

The rows are written in the transaction that records the outcome of the attempt which
mapped the study (``complete``, ``retry_later``, ``fail``), so they always describe the
mapping of the latest recorded attempt; :func:`replace_warnings` is that write.  Counting
and filtering by code is plain SQL over ``bridge_mapping_warning`` (indexed by code), the
same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, tuple_

from bridge.state.base import CHUNK, StoreBase, chunks
from bridge.state.enums import Status
from bridge.state.models import MAPPING_WARNING, STUDY
from bridge.state.views import StudyWarning, WarnedStudy, WarningView, warning_view

#: (archive, study_uid, the warnings of its latest mapping)
Replacement = tuple[str, str, Sequence[StudyWarning]]


def replace_warnings(conn: Connection, replacements: Sequence[Replacement], now: datetime) -> None:
    """Make each study's stored warnings exactly the given ones (none clears them)."""
    if not replacements:
        return
    w = MAPPING_WARNING.c
    keys = sorted({(archive, uid) for archive, uid, _ in replacements})
    if len(keys) == 1:  # the runner's case (one outcome per call): plain equalities
        clear_warnings(conn, *keys[0])
    else:
        for chunk in chunks(keys, CHUNK):
            pairs = tuple_(w.archive, w.study_uid).in_(chunk)
            conn.execute(delete(MAPPING_WARNING).where(pairs))
    rows = [
        {
            "archive": archive,
            "study_uid": uid,
            "at": now,
            "code": warning.code,
            "tag": warning.tag,
            "place": warning.where,
            "message": warning.message,
            "value": warning.value,
        }
        for archive, uid, warnings in replacements
        for warning in warnings
    ]
    if rows:
        conn.execute(insert(MAPPING_WARNING), rows)


def clear_warnings(conn: Connection, archive: str, study_uid: str) -> None:
    """Forget the study's warnings (it left the archive)."""
    w = MAPPING_WARNING.c
    conn.execute(delete(MAPPING_WARNING).where(w.archive == archive, w.study_uid == study_uid))


def _studies_with(code: str | None, archive: str | None) -> Any:
    """Distinct (archive, study_uid) having warnings (of ``code``), as a subquery."""
    w = MAPPING_WARNING.c
    query = select(w.archive, w.study_uid).distinct()
    if code is not None:
        query = query.where(w.code == code)
    if archive is not None:
        query = query.where(w.archive == archive)
    return query.subquery("warned")


class WarningOps(StoreBase):
    """Reading the mapping warnings of studies (part of :class:`StateStore`)."""

    def study_warnings(self, study_uid: str, *, archive: str | None = None) -> list[WarningView]:
        """The warnings of the study's latest mapping, in the order the mapping gave them."""
        w = MAPPING_WARNING.c
        query = select(MAPPING_WARNING).where(w.study_uid == study_uid).order_by(w.id)
        if archive is not None:
            query = query.where(w.archive == archive)
        with self._read() as conn:
            return [warning_view(row) for row in conn.execute(query)]

    def warned_study_count(self, archive: str | None = None) -> int:
        """Number of studies whose latest mapping had warnings."""
        query = select(func.count()).select_from(_studies_with(None, archive))
        with self._read() as conn:
            return int(conn.execute(query).scalar_one())

    def warning_counts(self, *, archive: str | None = None) -> dict[str, int]:
        """Number of studies per warning code (codes with no study are left out)."""
        w = MAPPING_WARNING.c
        per_study = select(w.archive, w.study_uid, w.code).distinct()
        if archive is not None:
            per_study = per_study.where(w.archive == archive)
        sub = per_study.subquery("per_study")
        query = select(sub.c.code, func.count()).group_by(sub.c.code)
        with self._read() as conn:
            return {code: int(n) for code, n in conn.execute(query)}

    def studies_with_warnings(
        self, *, code: str | None = None, archive: str | None = None, limit: int = 100
    ) -> list[WarnedStudy]:
        """Studies whose latest mapping had warnings (of ``code``), newest mapping first."""
        w, s = MAPPING_WARNING.c, STUDY.c
        warned = _studies_with(code, archive)
        query = (
            select(
                w.archive,
                w.study_uid,
                s.status,
                func.count().label("n"),
                func.max(w.at).label("at"),
            )
            .join(warned, and_(w.archive == warned.c.archive, w.study_uid == warned.c.study_uid))
            .join(STUDY, and_(s.archive == w.archive, s.study_uid == w.study_uid))
            .group_by(w.archive, w.study_uid, s.status)
            .order_by(func.max(w.at).desc(), w.archive, w.study_uid)
            .limit(limit)
        )
        with self._read() as conn:
            found = list(conn.execute(query))
            codes = self._codes(conn, [(row.archive, row.study_uid) for row in found])
        return [
            WarnedStudy(
                archive=row.archive,
                study_uid=row.study_uid,
                status=Status(row.status),
                warnings=int(row.n),
                codes=codes.get((row.archive, row.study_uid), ()),
                at=row.at,
            )
            for row in found
        ]

    @staticmethod
    def _codes(
        conn: Connection, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[str, ...]]:
        """The distinct codes of each listed study, sorted."""
        w = MAPPING_WARNING.c
        found: dict[tuple[str, str], set[str]] = {}
        for chunk in chunks(keys, CHUNK):
            query = (
                select(w.archive, w.study_uid, w.code)
                .distinct()
                .where(tuple_(w.archive, w.study_uid).in_(chunk))
            )
            for archive, uid, code in conn.execute(query):
                found.setdefault((archive, uid), set()).add(code)
        return {key: tuple(sorted(codes)) for key, codes in found.items()}

"""Read-only queries of the state store: study details, history, failures, queue figures."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, and_, delete, func, select

from bridge.state.base import StoreBase
from bridge.state.enums import Lane, Status
from bridge.state.models import AUDIT, CHECKPOINT, FAILURE, STUDY
from bridge.state.statements import DUE, FAILED, OPEN, WAITING
from bridge.state.views import (
    FailureView,
    HistoryEvent,
    LaneFigures,
    StudyView,
    audit_view,
    failure_view,
    study_view,
)


def get_study(conn: Connection, archive: str, study_uid: str) -> StudyView | None:
    """The study's row, or ``None`` if the store has never seen it."""
    s = STUDY.c
    row = conn.execute(select(STUDY).where(s.archive == archive, s.study_uid == study_uid)).first()
    return study_view(row) if row is not None else None


def current_failures(conn: Connection, *, archive: str | None, limit: int) -> list[FailureView]:
    """The latest permanent failure of each study now in status ``failed``, newest first."""
    s, f = STUDY.c, FAILURE.c
    latest = FAILURE.alias("latest")
    newest_id = (
        select(func.max(latest.c.id))
        .where(
            latest.c.archive == s.archive,
            latest.c.study_uid == s.study_uid,
            latest.c.permanent.is_(True),
        )
        .scalar_subquery()
    )
    query = (
        select(FAILURE)
        .join(STUDY, and_(s.archive == f.archive, s.study_uid == f.study_uid))
        .where(s.status == FAILED, f.id == newest_id)
        .order_by(f.at.desc(), f.id.desc())
        .limit(limit)
    )
    if archive is not None:
        query = query.where(s.archive == archive)
    return [failure_view(row) for row in conn.execute(query)]


def failure_history(conn: Connection, study_uid: str, *, archive: str | None) -> list[FailureView]:
    """Every failed attempt recorded for the study, oldest first."""
    f = FAILURE.c
    query = select(FAILURE).where(f.study_uid == study_uid).order_by(f.id)
    if archive is not None:
        query = query.where(f.archive == archive)
    return [failure_view(row) for row in conn.execute(query)]


def study_history(conn: Connection, study_uid: str, *, archive: str | None) -> list[HistoryEvent]:
    """Audit rows and failures of the study merged in time order."""
    a = AUDIT.c
    query = select(AUDIT).where(a.study_uid == study_uid).order_by(a.id)
    if archive is not None:
        query = query.where(a.archive == archive)
    events: list[HistoryEvent] = [audit_view(row) for row in conn.execute(query)]
    events.extend(failure_history(conn, study_uid, archive=archive))
    events.sort(key=lambda event: event.at)
    return events


def counts(conn: Connection, *, archive: str | None) -> dict[str, int]:
    """Number of studies per status (every status present, zeros included)."""
    s = STUDY.c
    query = select(s.status, func.count()).group_by(s.status)
    if archive is not None:
        query = query.where(s.archive == archive)
    result = {status.value: 0 for status in Status}
    for status, count in conn.execute(query):
        result[status] = int(count)
    return result


def queue_depth(conn: Connection, *, archive: str | None) -> int:
    """Studies still needing work: due, waiting or leased."""
    s = STUDY.c
    query = select(func.count()).select_from(STUDY).where(s.status.in_(OPEN))
    if archive is not None:
        query = query.where(s.archive == archive)
    return int(conn.execute(query).scalar_one())


def oldest_ready(
    conn: Connection, *, now: datetime, archive: str | None, lane: Lane | None = None
) -> datetime | None:
    """The earliest due time among unclaimed rows whose due time has passed (of one lane).

    Read lane by lane from the claim's index, in ``ready_at`` order, stopping at the first
    due or waiting row (``ORDER BY ... LIMIT 1`` rather than ``min()``, which would visit
    every ready row to apply the status filter).
    """
    if lane is None:
        found = [oldest_ready(conn, now=now, archive=archive, lane=each) for each in Lane]
        return min((when for when in found if when is not None), default=None)
    s = STUDY.c
    query = (
        select(s.ready_at)
        .where(s.lane == lane.value, s.ready_at <= now, s.status.in_((DUE, WAITING)))
        .order_by(s.ready_at)
        .limit(1)
    )
    if archive is not None:
        query = query.where(s.archive == archive)
    value: datetime | None = conn.execute(query).scalar_one_or_none()
    return value


def lane_depth(conn: Connection, *, lane: Lane, archive: str | None) -> int:
    """Studies due, waiting or leased in one lane: the rows of the lane with a ``ready_at``
    (set exactly for those statuses), counted from the claim's index alone."""
    s = STUDY.c
    query = select(func.count()).select_from(STUDY).where(
        s.lane == lane.value, s.ready_at.is_not(None))
    if archive is not None:
        query = query.where(s.archive == archive)
    return int(conn.execute(query).scalar_one())


def checkpoint(conn: Connection, name: str) -> str | None:
    """The checkpoint's value, or ``None``."""
    query = select(CHECKPOINT.c.value).where(CHECKPOINT.c.name == name)
    value: str | None = conn.execute(query).scalar_one_or_none()
    return value


class ReportOps(StoreBase):
    """Reading the store: studies, history, failures, figures, checkpoints."""

    # --- failures -----------------------------------------------------------------------

    def failures(self, *, archive: str | None = None, limit: int = 100) -> list[FailureView]:
        """Studies now in status ``failed``, each with its latest failure, newest first."""
        with self._read() as conn:
            return current_failures(conn, archive=archive, limit=limit)

    def failure_history(self, study_uid: str, *, archive: str | None = None) -> list[FailureView]:
        """Every failed attempt (retryable and permanent) of the study, oldest first."""
        with self._read() as conn:
            return failure_history(conn, study_uid, archive=archive)

    # --- reading ----------------------------------------------------------------------

    def get_study(self, archive: str, study_uid: str) -> StudyView | None:
        """Everything the store knows about one study, or ``None``."""
        with self._read() as conn:
            return get_study(conn, archive, study_uid)

    def study_history(self, study_uid: str, *, archive: str | None = None) -> list[HistoryEvent]:
        """The study's confirmed writes and failed attempts, in time order."""
        with self._read() as conn:
            return study_history(conn, study_uid, archive=archive)

    def counts(self, archive: str | None = None) -> dict[str, int]:
        """Number of studies per status (all statuses, zeros included)."""
        with self._read() as conn:
            return counts(conn, archive=archive)

    def queue_depth(self, archive: str | None = None) -> int:
        """Studies still needing work (due, waiting or leased)."""
        with self._read() as conn:
            return queue_depth(conn, archive=archive)

    def lanes(self, archive: str | None = None) -> list[LaneFigures]:
        """Depth and oldest wait of each lane of the queue, real-time first."""
        now = self._now()
        figures = []
        with self._read() as conn:
            for lane in Lane:
                oldest = oldest_ready(conn, now=now, archive=archive, lane=lane)
                figures.append(LaneFigures(
                    lane=lane,
                    depth=lane_depth(conn, lane=lane, archive=archive),
                    oldest_age=None if oldest is None else (now - oldest).total_seconds(),
                ))
        return figures

    def oldest_due_age(self, archive: str | None = None) -> float | None:
        """Seconds the oldest ready-but-unclaimed study has waited (sync lag), or ``None``."""
        now = self._now()
        with self._read() as conn:
            oldest = oldest_ready(conn, now=now, archive=archive)
        return None if oldest is None else (now - oldest).total_seconds()

    # --- checkpoints ------------------------------------------------------------------

    def get_checkpoint(self, name: str) -> str | None:
        """The value stored under ``name``, or ``None``."""
        with self._read() as conn:
            return checkpoint(conn, name)

    def set_checkpoint(self, name: str, value: str) -> None:
        """Store ``value`` under ``name`` (replacing any previous value), durably."""
        params = {"name": name, "value": value, "updated_at": self._now()}
        with self._write() as conn:
            conn.execute(self._set_checkpoint, [params])

    def delete_checkpoint(self, name: str) -> bool:
        """Forget the checkpoint ``name``; ``False`` if there was none."""
        with self._write() as conn:
            result = conn.execute(delete(CHECKPOINT).where(CHECKPOINT.c.name == name))
            return result.rowcount == 1

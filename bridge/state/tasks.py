"""The rooms' task queue: durable follow-up work, one row per (kind, key).

A room's work about one thing (publish study X's sharing manifest, map study X's reports,
migrate legacy study X) is a task.  It follows the study queue's rules (``store.py``):

=====================  ===========================================================
``enqueue_task``       none/``done``/``failed``/``due`` -> ``due`` (attempts reset
                       unless due already); ``leased`` stays leased, ``due_seq``
                       bumped, so the run in progress is followed by another
``claim_tasks``        ``due`` whose time has come, or ``leased`` whose lease
                       expired -> ``leased`` (attempts + 1, claimed_seq = due_seq)
``complete_task``      ``leased`` -> ``done`` (``result`` kept), or ``due`` at once
                       when enqueued during the lease
``retry_task``         ``leased`` -> ``due`` at ``at`` (``counted=False``: the
                       attempt is given back, for waiting on an outage)
``fail_task``          ``leased`` -> ``failed`` (dead letter), or ``due`` at once
                       when enqueued during the lease
``retry_failed_tasks`` ``failed`` -> ``due``
=====================  ===========================================================

Only the lease holder (``lease_owner`` and ``claimed_seq`` match) records an outcome.
Claims are exclusive: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, SQLite's write lock taken
at BEGIN.  A claim is one range scan of ``ix_bridge_task_kind_ready_at``.

``enqueue_follow_ups`` lets the sync enqueue a study's follow-up tasks in the
transaction that records it synced: nothing is lost between the sync and its follow-ups.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, case, func, null, or_, select, update

from bridge.state.base import StoreBase, chunks, nonnegative
from bridge.state.models import TASK
from bridge.state.statements import _insert

__all__ = ["RECORD_MAP", "SHARE_PUBLISH", "Task", "TaskOps", "TaskStatus", "enqueue_follow_ups",
           "migrate_kind", "task_key"]


#: the follow-up kinds the sync can enqueue when a study is recorded synced
SHARE_PUBLISH = "share.publish"  # issue 14: publish the study's XDS-I.b manifest
RECORD_MAP = "record.map"  # issue 16: map the study's report and dose SRs


def migrate_kind(source: str) -> str:
    """The kind of a legacy source's per-study migration tasks (issue 15)."""
    return f"migrate.{source}"


class TaskStatus:
    DUE = "due"
    LEASED = "leased"
    DONE = "done"
    FAILED = "failed"
    ALL = (DUE, LEASED, DONE, FAILED)


@dataclass(frozen=True)
class Task:
    """One task as read from the store (a snapshot; outcomes go through the store)."""

    kind: str
    key: str
    status: str
    payload: Mapping[str, Any] | None
    result: Mapping[str, Any] | None
    attempts: int
    last_error: str | None
    claimed_seq: int
    due_at: datetime | None
    lease_owner: str | None
    updated_at: datetime
    done_at: datetime | None


def _task(row: Any) -> Task:
    return Task(kind=row.kind, key=row.key, status=row.status, payload=row.payload,
                result=row.result, attempts=row.attempts, last_error=row.last_error,
                claimed_seq=row.claimed_seq, due_at=row.ready_at,
                lease_owner=row.lease_owner, updated_at=row.updated_at, done_at=row.done_at)


def _check_kind(kind: str) -> None:
    if not kind or len(kind) > 64:
        raise ValueError(f"a task kind is 1-64 characters, got {kind!r}")


def enqueue_follow_ups(conn: Connection, dialect: str, kinds: Sequence[str],
                       keys: Sequence[str], now: datetime) -> None:
    """Queue each of ``kinds`` for each of ``keys``, due ``now``, inside the caller's
    transaction (the sync's completion: nothing lost between a sync and its follow-ups)."""
    for kind in kinds:
        for part in chunks(list(dict.fromkeys(keys)), 200):
            upsert_tasks(conn, dialect, kind, [(k, None) for k in part], due=now, now=now)


def task_key(archive: str, study_uid: str) -> str:
    """The key of a study's follow-up tasks."""
    return f"{archive}/{study_uid}"


def upsert_tasks(conn: Connection, dialect: str, kind: str,
                 rows: Sequence[tuple[str, dict[str, Any] | None]], *, due: datetime,
                 now: datetime) -> None:
    """The enqueue of the module table, for ``rows`` of ``(key, payload)``."""
    if not rows:
        return
    stmt = _insert(dialect, TASK).values([
        # SQL NULL, not a JSON null, so that a later enqueue without payload keeps it
        {"kind": kind, "key": key, "status": TaskStatus.DUE,
         "payload": payload if payload is not None else null(),
         "attempts": 0, "due_seq": 1, "claimed_seq": 0, "ready_at": due,
         "created_at": now, "updated_at": now} for key, payload in rows])
    new = stmt.excluded
    t = TASK.c
    leased = t.status == TaskStatus.LEASED
    earliest = func.min if dialect == "sqlite" else func.least
    stmt = stmt.on_conflict_do_update(
        index_elements=[t.kind, t.key],
        set_={
            # a run in progress keeps its lease; it ends due again (due_seq moved)
            "status": case((leased, t.status), else_=TaskStatus.DUE),
            "due_seq": t.due_seq + 1,
            "ready_at": case((leased, t.ready_at),
                             (t.status == TaskStatus.DUE, earliest(t.ready_at, new.ready_at)),
                             else_=new.ready_at),
            "attempts": case((or_(leased, t.status == TaskStatus.DUE), t.attempts), else_=0),
            "payload": func.coalesce(new.payload, t.payload),
            "updated_at": new.updated_at,
        },
    )
    conn.execute(stmt)


class TaskOps(StoreBase):
    """The task queue's operations (mixed into :class:`~bridge.state.store.StateStore`)."""

    def now(self) -> datetime:
        """The store's clock (injected in tests): due times are computed from it."""
        return self._now()

    # --- enqueue -------------------------------------------------------------------------

    def enqueue_task(self, kind: str, key: str, *, payload: Mapping[str, Any] | None = None,
                     due_at: datetime | None = None) -> None:
        """Queue ``kind`` for ``key`` (due now, or at ``due_at``); see the module table."""
        _check_kind(kind)
        if not key or len(key) > 200:
            raise ValueError(f"a task key is 1-200 characters, got {key!r}")
        now = self._now()
        with self._write() as conn:
            upsert_tasks(conn, self._dialect, kind,
                         [(key, dict(payload) if payload is not None else None)],
                         due=due_at or now, now=now)

    def enqueue_tasks(self, kind: str, keys: Sequence[str]) -> None:
        """Queue ``kind`` for each of ``keys``, due now, in one transaction."""
        _check_kind(kind)
        now = self._now()
        with self._write() as conn:
            for part in chunks(list(dict.fromkeys(keys)), 200):
                upsert_tasks(conn, self._dialect, kind, [(k, None) for k in part], due=now,
                             now=now)

    # --- claim ---------------------------------------------------------------------------

    def claim_tasks(self, kind: str, *, limit: int, worker: str,
                    lease_seconds: float) -> list[Task]:
        """Lease up to ``limit`` ready tasks of ``kind``, oldest due first."""
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        nonnegative("lease_seconds", lease_seconds)
        now = self._now()
        until = now + timedelta(seconds=lease_seconds)
        t = TASK.c
        pick = (select(t.key).where(t.kind == kind, t.ready_at.is_not(None),
                                    t.ready_at <= now)
                .order_by(t.ready_at).limit(limit))
        if self._dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        with self._write() as conn:
            keys = [r.key for r in conn.execute(pick)]
            if not keys:
                return []
            conn.execute(
                update(TASK).where(t.kind == kind, t.key.in_(keys)).values(
                    status=TaskStatus.LEASED, lease_owner=worker, lease_expires_at=until,
                    ready_at=until, attempts=t.attempts + 1, claimed_seq=t.due_seq,
                    updated_at=now))
            rows = conn.execute(select(TASK).where(t.kind == kind, t.key.in_(keys))
                                .order_by(t.created_at, t.key)).all()
        return [_task(r) for r in rows]

    # --- outcomes ------------------------------------------------------------------------

    def complete_task(self, task: Task, *, worker: str,
                      result: Mapping[str, Any] | None = None) -> bool:
        """Record ``task`` done (``result`` kept); False if the lease was lost."""
        now = self._now()
        return self._settle(task, worker, now, done=TaskStatus.DONE, ready=None, values={
            "result": dict(result) if result is not None else None, "last_error": None,
            "done_at": now})

    def retry_task(self, task: Task, *, worker: str, error: str, at: datetime,
                   counted: bool = True) -> bool:
        """Give ``task`` back, due at ``at``; ``counted=False`` gives the attempt back too
        (the task waited on something outside it, such as an outage)."""
        now = self._now()
        values: dict[str, Any] = {"last_error": error[:4000]}
        if not counted:
            values["attempts"] = func.max(TASK.c.attempts - 1, 0) \
                if self._dialect == "sqlite" else func.greatest(TASK.c.attempts - 1, 0)
        return self._settle(task, worker, now, done=TaskStatus.DUE, ready=at, values=values)

    def fail_task(self, task: Task, *, worker: str, error: str) -> bool:
        """Record ``task`` failed for good (a dead letter to look at, retried only on
        :meth:`retry_failed_tasks`); False if the lease was lost."""
        now = self._now()
        return self._settle(task, worker, now, done=TaskStatus.FAILED, ready=None,
                            values={"last_error": error[:4000]})

    def _settle(self, task: Task, worker: str, now: datetime, *, done: str,
                ready: datetime | None, values: dict[str, Any]) -> bool:
        t = TASK.c
        again = t.due_seq != t.claimed_seq  # enqueued during the lease: run it again
        stmt = (update(TASK)
                .where(t.kind == task.kind, t.key == task.key,
                       t.status == TaskStatus.LEASED, t.lease_owner == worker,
                       t.claimed_seq == task.claimed_seq)
                .values(status=case((again, TaskStatus.DUE), else_=done),
                        ready_at=case((again, now), else_=ready),
                        lease_owner=None, lease_expires_at=None, updated_at=now, **values))
        with self._write() as conn:
            return conn.execute(stmt).rowcount == 1

    def retry_failed_tasks(self, kind: str, key: str | None = None) -> int:
        """Make failed tasks of ``kind`` (only ``key``'s if given) due now; their count."""
        now = self._now()
        t = TASK.c
        cond = and_(t.kind == kind, t.status == TaskStatus.FAILED)
        if key is not None:
            cond = and_(cond, t.key == key)
        with self._write() as conn:
            return int(conn.execute(update(TASK).where(cond).values(
                status=TaskStatus.DUE, ready_at=now, attempts=0, updated_at=now)).rowcount)

    # --- reads ---------------------------------------------------------------------------

    def task(self, kind: str, key: str) -> Task | None:
        with self._read() as conn:
            row = conn.execute(select(TASK).where(TASK.c.kind == kind,
                                                  TASK.c.key == key)).first()
        return _task(row) if row is not None else None

    def tasks(self, kind: str, *, status: str | None = None, limit: int = 100,
              after_key: str | None = None) -> list[Task]:
        """Tasks of ``kind`` by key (paged with ``after_key``), of one ``status`` if given."""
        t = TASK.c
        query = select(TASK).where(t.kind == kind)
        if status is not None:
            if status not in TaskStatus.ALL:
                raise ValueError(f"unknown task status {status!r}")
            query = query.where(t.status == status)
        if after_key is not None:
            query = query.where(t.key > after_key)
        with self._read() as conn:
            rows = conn.execute(query.order_by(t.key).limit(limit)).all()
        return [_task(r) for r in rows]

    def task_counts(self, kind: str) -> dict[str, int]:
        """Tasks of ``kind`` per status (every status listed)."""
        t = TASK.c
        with self._read() as conn:
            rows = conn.execute(select(t.status, func.count()).where(t.kind == kind)
                                .group_by(t.status)).all()
        counts = dict.fromkeys(TaskStatus.ALL, 0)
        counts.update({status: int(n) for status, n in rows})
        return counts

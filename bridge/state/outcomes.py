"""Recording the outcome of a claimed study: complete, retry later, fail, delete."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, func, insert, literal, select, update

from bridge.state.base import CHUNK, StoreBase, chunks, nonnegative
from bridge.state.enums import LANE_OF_REASON, AuditAction, Reason
from bridge.state.mapping_warnings import Replacement, clear_warnings, replace_warnings
from bridge.state.models import FAILURE, STUDY
from bridge.state.sqltypes import UTCDateTime
from bridge.state.statements import DELETED, DUE, FAILED, WAITING
from bridge.state.tasks import enqueue_follow_ups, task_key
from bridge.state.views import Completion, StudyWarning

logger = logging.getLogger(__name__)

_DELETE_ACTIONS = frozenset({AuditAction.DELETE, AuditAction.MARK_ENTERED_IN_ERROR})


class OutcomeOps(StoreBase):
    """What a worker records after the FHIR server answered (part of :class:`StateStore`)."""

    def _held(
        self, conn: Connection, keys: Sequence[tuple[str, str]], worker: str
    ) -> dict[tuple[str, str], Row[Any]]:
        """Rows among ``keys`` leased to ``worker`` (locked on PostgreSQL until commit)."""
        held: dict[tuple[str, str], Row[Any]] = {}
        for chunk in chunks(sorted(set(keys)), CHUNK):  # one lock order for everyone
            params: dict[str, Any] = {"worker": worker}
            if self._dialect == "postgresql":
                params.update(archives=[a for a, _ in chunk], uids=[u for _, u in chunk])
            else:
                params.update(keys=list(chunk), uids=[u for _, u in chunk])
            rows = conn.execute(self._held_rows, params)
            held.update({(row.archive, row.study_uid): row for row in rows})
        return held

    # --- outcomes ---------------------------------------------------------------------

    def complete(
        self,
        archive: str,
        study_uid: str,
        *,
        worker: str,
        claimed_seq: int,
        fingerprint: str | None,
        content_hash: str | None,
        fhir_id: str | None,
        fhir_version: str | None,
        action: AuditAction | str,
        status_code: int | None = None,
        warnings: Sequence[StudyWarning] | None = None,
    ) -> bool:
        """Record the FHIR server's confirmation of a claimed study (and audit it).

        Returns ``False`` (and records nothing) when ``worker`` no longer holds the lease.
        The row becomes ``synced``, or ``due`` again if an event arrived during the lease.
        ``warnings`` (those of the mapping that was written) replace the stored ones;
        ``None`` keeps them.
        """
        done = Completion(
            archive=archive,
            study_uid=study_uid,
            claimed_seq=claimed_seq,
            action=AuditAction(action),
            fingerprint=fingerprint,
            content_hash=content_hash,
            fhir_id=fhir_id,
            fhir_version=fhir_version,
            status_code=status_code,
        )
        now = self._now()
        with self._write() as conn:
            row = conn.execute(
                self._complete_returning, self._completion_params(done, worker, now)
            ).first()
            if row is not None:
                conn.execute(self._insert_audit, self._completion_audit(done, row, now))
                if warnings is not None:
                    replace_warnings(conn, [(archive, study_uid, warnings)], now)
        if row is None:
            logger.warning(
                "completion refused: lease lost",
                extra={"worker": worker, "archive": archive, "study_uid": study_uid},
            )
            return False
        return True

    @staticmethod
    def _completion_params(done: Completion, worker: str, now: datetime) -> dict[str, Any]:
        return {
            "k_archive": done.archive,
            "k_uid": done.study_uid,
            "k_worker": worker,
            "k_claimed_seq": done.claimed_seq,
            "v_fingerprint": done.fingerprint,
            "v_content_hash": done.content_hash,
            "v_fhir_id": done.fhir_id,
            "v_fhir_version": done.fhir_version,
            "now": now,
        }

    def _completion_audit(self, done: Completion, row: Row[Any], now: datetime) -> dict[str, Any]:
        """The audit row of a completion; ``row`` has the study's fhir_id and fhir_version
        (the values the completion leaves: given ones win over stored ones)."""
        return self._audit_params(
            now,
            done.archive,
            done.study_uid,
            AuditAction(done.action),
            done.fhir_type,
            done.fhir_id if done.fhir_id is not None else row.fhir_id,
            done.fhir_version if done.fhir_version is not None else row.fhir_version,
            done.status_code,
        )

    def complete_many(self, completions: Sequence[Completion], *, worker: str,
                      follow_ups: Sequence[str] = ()) -> list[bool]:
        """:meth:`complete` for several studies in one transaction (one FHIR batch's worth).

        Returns, in order, whether each completion was recorded (the lease was still held).
        Each recorded study also queues a task of each kind in ``follow_ups`` (key
        ``<archive>/<study uid>``), in the same transaction.
        """
        for done in completions:
            AuditAction(done.action)  # refuse an unknown action before writing anything
        now = self._now()
        recorded: list[bool] = []
        updates: list[dict[str, Any]] = []
        audits: list[dict[str, Any]] = []
        replacements: list[Replacement] = []
        with self._write() as conn:
            held = self._held(conn, [(c.archive, c.study_uid) for c in completions], worker)
            for done in completions:
                row = held.pop((done.archive, done.study_uid), None)
                if row is None or row.claimed_seq != done.claimed_seq:
                    recorded.append(False)
                    continue
                recorded.append(True)
                updates.append(self._completion_params(done, worker, now))
                audits.append(self._completion_audit(done, row, now))
                if done.warnings is not None:
                    replacements.append((done.archive, done.study_uid, done.warnings))
            if updates:
                conn.execute(self._complete, updates)
                conn.execute(self._insert_audit, audits)
                replace_warnings(conn, replacements, now)
                enqueue_follow_ups(conn, self._dialect, follow_ups,
                                   [task_key(c.archive, c.study_uid) for c, ok
                                    in zip(completions, recorded, strict=True) if ok], now)
        lost = recorded.count(False)
        if lost:
            logger.warning(
                "completions refused: lease lost", extra={"worker": worker, "count": lost}
            )
        return recorded

    def retry_later(
        self,
        archive: str,
        study_uid: str,
        *,
        worker: str,
        claimed_seq: int,
        kind: str,
        message: str,
        delay_seconds: float,
        waiting: bool = False,
        warnings: Sequence[StudyWarning] | None = None,
    ) -> bool:
        """Give a claimed study back to be retried in ``delay_seconds`` (a Retryable or
        Waiting error; the sync decides which in ``bridge.sync.settle``).

        The row becomes ``due`` (``waiting`` if ``waiting``: ``patient-not-found``, ``auth``)
        with ``reason=retry``; the error is kept in ``last_error*`` and as a non-permanent
        failure row.  ``attempts`` is kept, for backoff.  An event that arrived during the
        lease does not cut the backoff short: the study is due anyway, so it is not lost.
        Returns ``False`` (recording nothing) if the lease was lost.  ``warnings``, when the
        attempt got as far as mapping the study, replace the stored ones.
        """
        nonnegative("delay_seconds", delay_seconds)
        now = self._now()
        due_at = now + timedelta(seconds=delay_seconds)
        values = {
            "status": WAITING if waiting else DUE,
            "reason": Reason.RETRY.value,
            "next_attempt_at": due_at,
            "ready_at": due_at,
        }
        return self._record_failure(
            archive, study_uid, worker, claimed_seq, kind, message, None, values, now, warnings
        )

    def fail(
        self,
        archive: str,
        study_uid: str,
        *,
        worker: str,
        claimed_seq: int,
        kind: str,
        message: str,
        operation_outcome: dict[str, Any] | None = None,
        warnings: Sequence[StudyWarning] | None = None,
    ) -> bool:
        """Record a permanent failure of a claimed study (dead letter); others go on.

        The row becomes ``failed`` with a permanent failure row (OperationOutcome kept),
        until :meth:`retry_failed` or a new event.  If an event arrived during the lease
        the row becomes due again instead (the new data may not fail).  Returns ``False``
        (recording nothing) if the lease was lost.  ``warnings`` as in :meth:`retry_later`.
        """
        return self._record_failure(
            archive,
            study_uid,
            worker,
            claimed_seq,
            kind,
            message,
            operation_outcome,
            None,
            self._now(),
            warnings,
        )

    def _record_failure(
        self,
        archive: str,
        study_uid: str,
        worker: str,
        claimed_seq: int,
        kind: str,
        message: str,
        operation_outcome: dict[str, Any] | None,
        retry_values: dict[str, Any] | None,
        now: datetime,
        warnings: Sequence[StudyWarning] | None,
    ) -> bool:
        s = STUDY.c
        with self._write() as conn:
            row = self._held(conn, [(archive, study_uid)], worker).get((archive, study_uid))
            if row is None or row.claimed_seq != claimed_seq:
                logger.warning(
                    "failure not recorded: lease lost",
                    extra={"worker": worker, "archive": archive, "study_uid": study_uid},
                )
                return False
            values: dict[str, Any]
            if retry_values is not None:
                values = dict(retry_values)
            elif row.due_seq != row.claimed_seq:
                # an event arrived meanwhile: try again, when that event asked for
                due_at = func.coalesce(s.next_attempt_at, literal(now, UTCDateTime()))
                values = {
                    "status": DUE,
                    "attempts": 0,
                    "next_attempt_at": due_at,
                    "ready_at": due_at,
                }
            else:
                values = {"status": FAILED, "next_attempt_at": None, "ready_at": None}
            values.update(
                lease_owner=None,
                lease_expires_at=None,
                last_error_kind=kind,
                last_error=message,
                updated_at=now,
            )
            conn.execute(
                update(STUDY).where(s.archive == archive, s.study_uid == study_uid).values(**values)
            )
            conn.execute(
                insert(FAILURE).values(
                    archive=archive,
                    study_uid=study_uid,
                    at=now,
                    kind=kind,
                    message=message,
                    operation_outcome=operation_outcome,
                    attempt=row.attempts,
                    permanent=retry_values is None,
                )
            )
            if warnings is not None:
                replace_warnings(conn, [(archive, study_uid, warnings)], now)
        return True

    def mark_deleted(
        self,
        archive: str,
        study_uid: str,
        *,
        action: AuditAction | str = AuditAction.DELETE,
        fhir_id: str | None = None,
        fhir_version: str | None = None,
        status_code: int | None = None,
        worker: str | None = None,
        claimed_seq: int | None = None,
        follow_ups: Sequence[str] = (),
    ) -> bool:
        """Record that the study is gone from the archive and its ImagingStudy was
        deleted or marked entered-in-error (``action``), with an audit row; queue a task of
        each kind in ``follow_ups`` for the study in the same transaction.

        With ``worker`` (and ``claimed_seq``) the call is an outcome of a claim and
        returns ``False`` if the lease was lost; without, it overrides any lease.  The
        fingerprint is cleared so a study re-sent to the archive is picked up again.
        """
        audit_action = AuditAction(action)
        if audit_action not in _DELETE_ACTIONS:
            raise ValueError(f"mark_deleted needs a delete action, got {audit_action.value!r}")
        now = self._now()
        s = STUDY.c
        values = {
            "status": DELETED,
            "fingerprint": None,
            "attempts": 0,
            "next_attempt_at": None,
            "ready_at": None,
            "lease_owner": None,
            "lease_expires_at": None,
            "updated_at": now,
        }
        with self._write() as conn:
            if worker is not None:
                row = self._held(conn, [(archive, study_uid)], worker).get((archive, study_uid))
                if row is None or (claimed_seq is not None and row.claimed_seq != claimed_seq):
                    return False
            known = conn.execute(
                select(s.fhir_id).where(s.archive == archive, s.study_uid == study_uid)
            ).first()
            if fhir_version is not None:
                values["fhir_version"] = fhir_version
            if known is None:  # never synced by us (found by reconcile): keep a record
                values.update(
                    archive=archive,
                    study_uid=study_uid,
                    reason=Reason.RECONCILE.value,
                    fhir_id=fhir_id,
                    due_seq=0,
                    claimed_seq=0,
                    first_seen_at=now,
                )
                conn.execute(insert(STUDY).values(**values))
            else:
                conn.execute(
                    update(STUDY)
                    .where(s.archive == archive, s.study_uid == study_uid)
                    .values(**values)
                )
            if fhir_id is None and known is not None:
                fhir_id = known.fhir_id
            enqueue_follow_ups(conn, self._dialect, follow_ups, [task_key(archive, study_uid)],
                               now)
            audit = self._audit_params(
                now,
                archive,
                study_uid,
                audit_action,
                "ImagingStudy",
                fhir_id,
                fhir_version,
                status_code,
            )
            conn.execute(self._insert_audit, audit)
            # the warnings described data the archive no longer has
            clear_warnings(conn, archive, study_uid)
        return True

    def record_audit(
        self,
        archive: str,
        study_uid: str,
        *,
        action: AuditAction | str,
        fhir_type: str,
        fhir_id: str | None = None,
        fhir_version: str | None = None,
        status_code: int | None = None,
    ) -> None:
        """Record a confirmed FHIR write made for the study (Patient, ServiceRequest, ...)."""
        params = self._audit_params(
            self._now(),
            archive,
            study_uid,
            AuditAction(action),
            fhir_type,
            fhir_id,
            fhir_version,
            status_code,
        )
        with self._write() as conn:
            conn.execute(self._insert_audit, params)

    @staticmethod
    def _audit_params(
        now: datetime,
        archive: str,
        study_uid: str,
        action: AuditAction,
        fhir_type: str,
        fhir_id: str | None,
        fhir_version: str | None,
        status_code: int | None,
    ) -> dict[str, Any]:
        return {
            "at": now,
            "archive": archive,
            "study_uid": study_uid,
            "action": action.value,
            "fhir_type": fhir_type,
            "fhir_id": fhir_id,
            "fhir_version": fhir_version,
            "status_code": status_code,
        }

    def retry_failed(
        self,
        study_uid: str | None = None,
        *,
        all: bool = False,
        archive: str | None = None,
    ) -> int:
        """Make failed studies due again now (``reason=manual``, in the bulk lane: ``--all``
        may requeue thousands; attempts reset).

        Either one study (``study_uid``, in every archive unless ``archive`` is given) or
        ``all=True``.  Returns the number of studies requeued.
        """
        if study_uid is None and not all:
            raise ValueError("retry_failed needs a study_uid or all=True")
        now = self._now()
        s = STUDY.c
        requeue = (
            update(STUDY)
            .where(s.status == FAILED)
            .values(
                status=DUE,
                reason=Reason.MANUAL.value,
                lane=LANE_OF_REASON[Reason.MANUAL].value,
                attempts=0,
                next_attempt_at=now,
                ready_at=now,
                due_seq=s.due_seq + 1,
                updated_at=now,
            )
        )
        if study_uid is not None:
            requeue = requeue.where(s.study_uid == study_uid)
        if archive is not None:
            requeue = requeue.where(s.archive == archive)
        with self._write() as conn:
            return int(conn.execute(requeue).rowcount)

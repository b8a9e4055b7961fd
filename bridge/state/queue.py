"""Putting work in the queue and leasing it out: mark_due, claim, renew_lease."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, exists, update

from bridge.state.base import CHUNK, StoreBase, chunks, nonnegative, reason_value
from bridge.state.enums import Reason
from bridge.state.models import MAPPING_WARNING, STUDY
from bridge.state.statements import DUE, LEASED, SYNCED
from bridge.state.views import ClaimedStudy

logger = logging.getLogger(__name__)

#: rows per transaction in mark_many_due: short enough not to starve the other writers
_BULK_TXN = 2000


class QueueOps(StoreBase):
    """Marking studies due and claiming them (part of :class:`StateStore`)."""

    # --- marking work due -------------------------------------------------------------

    def mark_due(
        self,
        archive: str,
        study_uid: str,
        *,
        reason: Reason | str,
        fingerprint: str | None = None,
        delay: float = 0.0,
    ) -> None:
        """Record that the study needs a sync, coalescing with any pending work.

        The study becomes due ``delay`` seconds from now, or earlier if it was already
        due earlier.  A leased study stays leased, but its worker's outcome will make it
        due again (at this due time) instead of synced, so an event arriving mid-sync is
        never lost.  A synced, failed or deleted study becomes due with ``attempts`` reset.
        ``fingerprint`` (when given) replaces the stored one.
        """
        nonnegative("delay", delay)
        now = self._now()
        params = self._due_params(archive, study_uid, reason_value(reason), fingerprint, now, delay)
        with self._write() as conn:
            conn.execute(self._mark_due, params)

    def mark_many_due(
        self,
        archive: str,
        items: Sequence[tuple[str, str | None]],
        *,
        reason: Reason | str,
    ) -> int:
        """Mark many ``(study_uid, fingerprint)`` due at once, as :meth:`mark_due` would.

        Duplicated UIDs are merged (the last non-``None`` fingerprint wins).  Rows are
        written in transactions of a few thousand.  Returns the number of distinct studies.
        """
        reason_str = reason_value(reason)
        merged: dict[str, str | None] = {}
        for uid, fingerprint in items:
            if fingerprint is not None or uid not in merged:
                merged[uid] = fingerprint
        now = self._now()
        # sorted: concurrent bulk upserts then lock rows in one order (no deadlock on PG)
        pairs = sorted(merged.items())
        for chunk in chunks(pairs, _BULK_TXN):
            params: dict[str, Any] = {"archive": archive, "reason": reason_str, "now": now}
            if self._dialect == "postgresql":
                params["uids"] = [uid for uid, _ in chunk]
                params["fps"] = [fingerprint for _, fingerprint in chunk]
            else:
                params["payload"] = json.dumps(chunk)
            with self._write() as conn:
                conn.execute(self._mark_many_due, params)
        return len(pairs)

    def requeue_synced(
        self,
        study_uids: Sequence[str] | None = None,
        *,
        archive: str | None = None,
        warning_code: str | None = None,
        force: bool = False,
    ) -> int:
        """Make synced studies due again now (``reason=resync``), for ``imaging-bridge
        resync`` after a mapping or Endpoint change: the next sync maps each study again and
        writes it only if the resource changed.  ``force`` also forgets the hash of the last
        confirmed write, so every study is written (the EHR's copy was changed or lost).

        ``study_uids`` None means every synced study (of ``archive`` when given);
        ``warning_code`` keeps only those whose latest mapping had that warning (the mapping
        was just taught the missing term).  Studies in
        any other state are left alone: due, leased and waiting ones will be mapped anyway,
        failed ones are for ``failures retry``.  Returns the number of studies requeued.
        """
        now = self._now()
        s = STUDY.c
        values: dict[str, Any] = {
            "status": DUE, "reason": Reason.RESYNC.value, "attempts": 0,
            "next_attempt_at": now, "ready_at": now, "due_seq": s.due_seq + 1,
            "updated_at": now,
        }
        if force:
            values["content_hash"] = None
        requeue = update(STUDY).where(s.status == SYNCED).values(**values)
        if archive is not None:
            requeue = requeue.where(s.archive == archive)
        if warning_code is not None:
            w = MAPPING_WARNING.c
            requeue = requeue.where(exists().where(
                w.archive == s.archive, w.study_uid == s.study_uid, w.code == warning_code))
        if study_uids is None:
            with self._write() as conn:
                return int(conn.execute(requeue).rowcount)
        total = 0
        for chunk in chunks(sorted(set(study_uids)), CHUNK):
            with self._write() as conn:
                total += int(conn.execute(requeue.where(s.study_uid.in_(chunk))).rowcount)
        return total

    def forget_write(self, archive: str, study_uid: str) -> bool:
        """Forget the content hash of the study's last confirmed write, so its next sync
        writes the resource even when the mapping's output is unchanged (reconcile found
        the EHR's copy deleted or different).  Returns whether the study was known.

        ``UPDATE study SET content_hash = NULL, updated_at = :now
        WHERE archive = :archive AND study_uid = :study_uid``
        """
        s = STUDY.c
        query = update(STUDY).where(s.archive == archive, s.study_uid == study_uid).values(
            content_hash=None, updated_at=self._now())
        with self._write() as conn:
            return bool(conn.execute(query).rowcount)

    @staticmethod
    def _due_params(
        archive: str,
        study_uid: str,
        reason: str,
        fingerprint: str | None,
        now: datetime,
        delay: float,
    ) -> dict[str, Any]:
        due_at = now + timedelta(seconds=delay)
        return {
            "archive": archive,
            "study_uid": study_uid,
            "status": DUE,
            "reason": reason,
            "fingerprint": fingerprint,
            "attempts": 0,
            "next_attempt_at": due_at,
            "ready_at": due_at,
            "due_seq": 1,
            "claimed_seq": 0,
            "first_seen_at": now,
            "updated_at": now,
        }

    def fingerprints(self, archive: str, study_uids: Sequence[str]) -> dict[str, str | None]:
        """Stored fingerprints of the given studies; studies never seen are absent."""
        found: dict[str, str | None] = {}
        with self._read() as conn:
            for chunk in chunks(list(dict.fromkeys(study_uids)), CHUNK):
                rows = conn.execute(self._fingerprints, {"archive": archive, "uids": list(chunk)})
                found.update((uid, fp) for uid, fp in rows)
        return found

    # --- leases -----------------------------------------------------------------------

    def claim(
        self,
        *,
        worker: str,
        limit: int,
        lease_seconds: float,
        archive: str | None = None,
    ) -> list[ClaimedStudy]:
        """Lease up to ``limit`` ready studies to ``worker`` for ``lease_seconds``.

        Ready means due or waiting with a due time that has passed, or leased with an
        expired lease (taken over).  Oldest due time first.  Each claimed row gets
        ``attempts + 1`` and ``claimed_seq = due_seq``.  No two claimers ever get the
        same row at the same time, across threads and processes.
        """
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        if lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be > 0, got {lease_seconds}")
        now = self._now()
        expires = now + timedelta(seconds=lease_seconds)
        params: dict[str, Any] = {"now": now, "limit": limit}
        if archive is not None:
            params["k_archive"] = archive
        lease = {"worker": worker, "expires": expires, "now": now}
        by_archive = archive is not None
        with self._write() as conn:
            if self._dialect == "postgresql":
                statement = self._claim_lease_archive if by_archive else self._claim_lease
                rows = list(conn.execute(statement, {**params, **lease}))
                rows.sort(key=lambda row: row.picked_ready_at)
                taken_over = {(r.archive, r.study_uid) for r in rows if r.previous_status == LEASED}
            else:
                pick = self._claim_pick_archive if by_archive else self._claim_pick
                picked = conn.execute(pick, params).all()
                if not picked:
                    return []
                order = {(row.archive, row.study_uid): n for n, row in enumerate(picked)}
                taken_over = {
                    key for key, row in zip(order, picked, strict=True) if row.status == LEASED
                }
                rows = list(conn.execute(self._claim_lease, {**lease, "keys": list(order)}))
                rows.sort(key=lambda row: order[(row.archive, row.study_uid)])
        claimed = [self._claimed(row, (row.archive, row.study_uid) in taken_over) for row in rows]
        if taken_over:
            logger.info(
                "expired leases taken over",
                extra={"worker": worker, "count": len(taken_over)},
            )
        return claimed

    @staticmethod
    def _claimed(row: Row[Any], taken_over: bool) -> ClaimedStudy:
        return ClaimedStudy(
            archive=row.archive,
            study_uid=row.study_uid,
            claimed_seq=row.claimed_seq,
            attempts=row.attempts,
            reason=Reason(row.reason) if row.reason is not None else None,
            fingerprint=row.fingerprint,
            content_hash=row.content_hash,
            fhir_id=row.fhir_id,
            fhir_version=row.fhir_version,
            lease_expires_at=row.lease_expires_at,
            taken_over=taken_over,
        )

    def renew_lease(
        self, archive: str, study_uid: str, *, worker: str, lease_seconds: float
    ) -> bool:
        """Extend ``worker``'s lease to ``lease_seconds`` from now; ``False`` if it is lost."""
        if lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be > 0, got {lease_seconds}")
        now = self._now()
        expires = now + timedelta(seconds=lease_seconds)
        s = STUDY.c
        renew = (
            update(STUDY)
            .where(
                s.archive == archive,
                s.study_uid == study_uid,
                s.status == LEASED,
                s.lease_owner == worker,
            )
            .values(lease_expires_at=expires, ready_at=expires, updated_at=now)
        )
        with self._write() as conn:
            return conn.execute(renew).rowcount == 1

"""Putting work in the queue and leasing it out: mark_due, claim, renew_lease."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, exists, update

from bridge.state.base import CHUNK, StoreBase, chunks, nonnegative, reason_value
from bridge.state.enums import LANE_OF_REASON, Lane, Reason
from bridge.state.models import MAPPING_WARNING, STUDY
from bridge.state.statements import BULK, DUE, LEASED, REALTIME, SYNCED
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
        ``fingerprint`` (when given) replaces the stored one.  The reason decides the lane
        (``LANE_OF_REASON``): a real-time reason moves a queued bulk study to the real-time
        lane; a bulk reason never moves a queued study out of it.
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
        lane = LANE_OF_REASON[Reason(reason_str)].value
        merged: dict[str, str | None] = {}
        for uid, fingerprint in items:
            if fingerprint is not None or uid not in merged:
                merged[uid] = fingerprint
        now = self._now()
        # sorted: concurrent bulk upserts then lock rows in one order (no deadlock on PG)
        pairs = sorted(merged.items())
        for chunk in chunks(pairs, _BULK_TXN):
            params: dict[str, Any] = {
                "archive": archive, "reason": reason_str, "lane": lane, "now": now,
            }
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
            "status": DUE, "reason": Reason.RESYNC.value,
            "lane": LANE_OF_REASON[Reason.RESYNC].value, "attempts": 0,
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
            "lane": LANE_OF_REASON[Reason(reason)].value,
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
        lane: Lane | None = None,
    ) -> list[ClaimedStudy]:
        """Lease up to ``limit`` ready studies to ``worker`` for ``lease_seconds``.

        Ready means due or waiting with a due time that has passed, or leased with an
        expired lease (taken over).  The real-time lane first, but while both lanes have
        ready studies the store's ``bulk_share`` of the batch goes to the bulk lane (see
        :meth:`_bulk_slots`); a lane with too few ready studies leaves its slots to the
        other.  Oldest due time first within a lane; real-time studies come first in the
        returned list.  Each claimed row gets ``attempts + 1`` and ``claimed_seq =
        due_seq``.  No two claimers ever get the same row at the same time, across threads
        and processes.

        ``lane`` claims from that lane only (the worker reserved for real-time work,
        :mod:`bridge.sync.realtime_worker`): no share is kept for the other lane, and the
        share owed to bulk work by the mixed claims is left as it was.
        """
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        if lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be > 0, got {lease_seconds}")
        now = self._now()
        expires = now + timedelta(seconds=lease_seconds)
        pick: dict[str, Any] = {"now": now}
        if archive is not None:
            pick["k_archive"] = archive
        lease = {"worker": worker, "expires": expires, "now": now}
        if lane is not None:
            with self._write() as conn:
                claimed = self._take(conn, lane.value, limit, pick, lease)
            self._log_taken_over(worker, claimed)
            return claimed
        reserved = self._bulk_slots(limit)
        with self._write() as conn:
            # Each take leases its rows before the next one looks, so a later take of the
            # same lane cannot see them again (on PostgreSQL, FOR UPDATE SKIP LOCKED does
            # not skip rows this transaction locked itself).
            bulk = self._take(conn, BULK, reserved, pick, lease)
            realtime = self._take(conn, REALTIME, limit - len(bulk), pick, lease)
            if len(bulk) == reserved and len(bulk) + len(realtime) < limit:
                # too little real-time work: bulk work fills the batch
                bulk += self._take(conn, BULK, limit - len(bulk) - len(realtime), pick, lease)
        claimed = realtime + bulk
        self._log_taken_over(worker, claimed)
        return claimed

    @staticmethod
    def _log_taken_over(worker: str, claimed: Sequence[ClaimedStudy]) -> None:
        taken_over = sum(c.taken_over for c in claimed)
        if taken_over:
            logger.info(
                "expired leases taken over",
                extra={"worker": worker, "count": taken_over},
            )

    def _bulk_slots(self, limit: int) -> int:
        """Slots of a ``limit``-row claim kept for bulk work: ``limit * bulk_share`` rounded
        down, the fraction carried over to the next claims of this store, so that claims of
        a few rows (or one) keep the share too: at 0.2, one claim in five of one row.
        The carry is always under one slot; slots the bulk lane cannot fill go to real-time
        work and are not owed again."""
        with self._bulk_lock:
            owed = self._bulk_owed + limit * self._bulk_share
            slots = min(limit, math.floor(owed))
            self._bulk_owed = owed - slots
        return slots

    def _take(
        self,
        conn: Connection,
        lane: str,
        count: int,
        pick: dict[str, Any],
        lease: dict[str, Any],
    ) -> list[ClaimedStudy]:
        """Lease the ``count`` oldest ready rows of one lane (fewer if fewer are ready).

        PostgreSQL: one ``UPDATE ... FROM (SELECT ... FOR UPDATE SKIP LOCKED)``.  SQLite:
        the pick, then the lease of the picked keys (``BEGIN IMMEDIATE`` already excludes
        every other writer).
        """
        if count < 1:
            return []
        params = {**pick, "k_lane": lane, "limit": count}
        by_archive = "k_archive" in pick
        if self._dialect == "postgresql":
            statement = self._claim_lease_archive if by_archive else self._claim_lease
            rows = sorted(conn.execute(statement, {**params, **lease}),
                          key=lambda row: row.picked_ready_at)
            return [self._claimed(row, row.previous_status == LEASED) for row in rows]
        picked = conn.execute(
            self._claim_pick_archive if by_archive else self._claim_pick, params
        ).all()
        if not picked:
            return []
        order = {(row.archive, row.study_uid): n for n, row in enumerate(picked)}
        taken_over = {key for key, row in zip(order, picked, strict=True) if row.status == LEASED}
        keys = list(order)
        leased = conn.execute(
            self._claim_lease, {**lease, "keys": keys, "uids": [uid for _, uid in keys]}
        )
        rows = sorted(leased, key=lambda row: order[(row.archive, row.study_uid)])
        return [self._claimed(row, (row.archive, row.study_uid) in taken_over) for row in rows]

    @staticmethod
    def _claimed(row: Row[Any], taken_over: bool) -> ClaimedStudy:
        return ClaimedStudy(
            archive=row.archive,
            study_uid=row.study_uid,
            claimed_seq=row.claimed_seq,
            attempts=row.attempts,
            reason=Reason(row.reason) if row.reason is not None else None,
            lane=Lane(row.lane),
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

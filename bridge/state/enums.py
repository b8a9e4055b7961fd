"""Closed vocabularies of the state store, as string enums (stored as their values)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class Status(StrEnum):
    """Where a study stands in the work queue (issue 4, "State store").

    ``due`` and ``waiting`` rows are claimable once their ``next_attempt_at`` has passed;
    ``waiting`` only says *why* the row is parked (an external condition such as
    ``patient-not-found``).  ``leased`` rows belong to one worker until the lease expires.
    """

    DUE = "due"
    LEASED = "leased"
    SYNCED = "synced"
    WAITING = "waiting"
    FAILED = "failed"
    DELETED = "deleted"


class Reason(StrEnum):
    """Why a study was last marked due."""

    POLL = "poll"
    BACKFILL = "backfill"
    NOTIFICATION = "notification"
    STOW = "stow"
    RECONCILE = "reconcile"
    RETRY = "retry"
    MANUAL = "manual"
    #: ``imaging-bridge resync``: synced studies mapped again (a mapping or Endpoint change)
    RESYNC = "resync"


class Lane(StrEnum):
    """Which part of the work queue a due study waits in (issue 19, "Priority lanes").

    A claim takes ``realtime`` rows before ``bulk`` ones, but keeps a configured share of
    every batch for ``bulk`` while both wait, so neither is starved.
    """

    REALTIME = "realtime"
    BULK = "bulk"


#: The lane a mark of each reason puts a study in.  A real-time mark of a study already
#: queued in the bulk lane moves it to the real-time lane; a bulk mark never moves a queued
#: study out of the real-time lane.  ``retry_later`` keeps the row's lane (a STOW study
#: waiting out a FHIR outage is still somebody's study of the day).
#:
#: ================  ============  ==========================================================
#: reason            lane          source
#: ================  ============  ==========================================================
#: ``stow``          realtime      the STOW-RS proxy, for the studies it stored
#: ``notification``  realtime      signed notifications and Orthanc's ``/changes`` feed
#: ``poll``          realtime      the poll of the recent StudyDate window
#: ``backfill``      bulk          the backfill's date windows and its undated pass (also
#:                                 the undated sweep of ``imaging-bridge sync``)
#: ``reconcile``     bulk          reconciliation found the EHR's copy missing or different
#: ``resync``        bulk          ``imaging-bridge resync`` (a mapping or Endpoint change)
#: ``manual``        bulk          ``imaging-bridge failures retry``
#: ``retry``         bulk          only when given to ``mark_due``; see above
#: ================  ============  ==========================================================
LANE_OF_REASON: Mapping[Reason, Lane] = MappingProxyType({
    Reason.STOW: Lane.REALTIME,
    Reason.NOTIFICATION: Lane.REALTIME,
    Reason.POLL: Lane.REALTIME,
    Reason.BACKFILL: Lane.BULK,
    Reason.RECONCILE: Lane.BULK,
    Reason.RESYNC: Lane.BULK,
    Reason.MANUAL: Lane.BULK,
    Reason.RETRY: Lane.BULK,
})


class AuditAction(StrEnum):
    """What the bridge did to a FHIR resource (one audit row per confirmed outcome)."""

    CREATE = "create"
    UPDATE = "update"
    SKIP_UNCHANGED = "skip-unchanged"
    DELETE = "delete"
    MARK_ENTERED_IN_ERROR = "mark-entered-in-error"


#: statuses whose rows are still work to do (``queue_depth``)
OPEN_STATUSES: tuple[Status, ...] = (Status.DUE, Status.WAITING, Status.LEASED)

"""Closed vocabularies of the state store, as string enums (stored as their values)."""

from __future__ import annotations

from enum import StrEnum


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


class AuditAction(StrEnum):
    """What the bridge did to a FHIR resource (one audit row per confirmed outcome)."""

    CREATE = "create"
    UPDATE = "update"
    SKIP_UNCHANGED = "skip-unchanged"
    DELETE = "delete"
    MARK_ENTERED_IN_ERROR = "mark-entered-in-error"


#: statuses whose rows are still work to do (``queue_depth``)
OPEN_STATUSES: tuple[Status, ...] = (Status.DUE, Status.WAITING, Status.LEASED)

"""Plain, frozen values the store hands out (never ORM objects)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from bridge.state.enums import AuditAction, Lane, Reason, Status


@dataclass(frozen=True, slots=True)
class ClaimedStudy:
    """A study leased to one worker by :meth:`StateStore.claim`.

    ``claimed_seq`` must be handed back to ``complete``/``retry_later``/``fail``: it is how
    the store tells whether an event arrived during the lease.  ``fingerprint``,
    ``content_hash``, ``fhir_id`` and ``fhir_version`` are the last confirmed values (for
    skipping unchanged writes and for versioned updates).  ``taken_over`` is true when the
    row was claimed because another worker's lease had expired.
    """

    archive: str
    study_uid: str
    claimed_seq: int
    attempts: int
    reason: Reason | None
    #: the lane it was claimed from
    lane: Lane
    fingerprint: str | None
    content_hash: str | None
    fhir_id: str | None
    fhir_version: str | None
    lease_expires_at: datetime
    taken_over: bool


@dataclass(frozen=True, slots=True)
class StudyWarning:
    """One warning of a study's mapping, as the store keeps it.

    ``where`` is the series it was seen in (``None`` at study level); ``value`` is only ever
    a term of a coded vocabulary (the caller redacts everything else, see
    ``bridge.sync.recorded_warnings``).
    """

    code: str
    tag: str
    message: str
    where: str | None = None
    value: str | None = None


@dataclass(frozen=True, slots=True)
class Completion:
    """The confirmed outcome of one claimed study, for :meth:`StateStore.complete_many`.

    ``None`` for ``content_hash``, ``fhir_id`` or ``fhir_version`` keeps the stored value
    (for example when the write was skipped as unchanged).
    """

    archive: str
    study_uid: str
    claimed_seq: int
    action: AuditAction | str
    fingerprint: str | None = None
    content_hash: str | None = None
    fhir_id: str | None = None
    fhir_version: str | None = None
    status_code: int | None = None
    fhir_type: str = "ImagingStudy"
    #: the warnings of the mapping this completion wrote (``None`` keeps the stored ones)
    warnings: tuple[StudyWarning, ...] | None = None


@dataclass(frozen=True, slots=True)
class StudyView:
    """Everything the store knows about one study."""

    archive: str
    study_uid: str
    status: Status
    reason: Reason | None
    lane: Lane
    fingerprint: str | None
    content_hash: str | None
    fhir_id: str | None
    fhir_version: str | None
    attempts: int
    next_attempt_at: datetime | None
    last_error_kind: str | None
    last_error: str | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    due_seq: int
    claimed_seq: int
    first_seen_at: datetime
    updated_at: datetime
    synced_at: datetime | None


@dataclass(frozen=True, slots=True)
class LaneFigures:
    """The work waiting in one lane of the queue (``/status``, ``/metrics``).

    ``depth``: studies due, waiting or leased in the lane; ``oldest_age``: seconds the
    oldest ready-but-unclaimed study of the lane has waited, ``None`` when none waits.
    """

    lane: Lane
    depth: int
    oldest_age: float | None


@dataclass(frozen=True, slots=True)
class FailureView:
    """One failed attempt; ``permanent`` failures put the study in status ``failed``."""

    id: int
    archive: str
    study_uid: str
    at: datetime
    kind: str
    message: str
    operation_outcome: dict[str, Any] | None
    attempt: int
    permanent: bool


@dataclass(frozen=True, slots=True)
class AuditView:
    """One FHIR write the server confirmed (or a write skipped as unchanged)."""

    id: int
    at: datetime
    archive: str
    study_uid: str
    action: AuditAction
    fhir_type: str
    fhir_id: str | None
    fhir_version: str | None
    status_code: int | None


@dataclass(frozen=True, slots=True)
class WarningView:
    """A stored warning of a study's latest mapping, recorded at ``at``."""

    archive: str
    study_uid: str
    at: datetime
    code: str
    tag: str
    message: str
    where: str | None
    value: str | None


@dataclass(frozen=True, slots=True)
class WarnedStudy:
    """A study whose latest mapping had warnings: how many, of which codes, and when."""

    archive: str
    study_uid: str
    status: Status
    warnings: int
    codes: tuple[str, ...]
    at: datetime


#: an entry of :meth:`StateStore.study_history`, ordered by ``at``
HistoryEvent = AuditView | FailureView


def _reason(value: str | None) -> Reason | None:
    return Reason(value) if value is not None else None


def study_view(row: Row[Any]) -> StudyView:
    """Build a :class:`StudyView` from a full ``bridge_study`` row."""
    m = row._mapping
    return StudyView(
        archive=m["archive"],
        study_uid=m["study_uid"],
        status=Status(m["status"]),
        reason=_reason(m["reason"]),
        lane=Lane(m["lane"]),
        fingerprint=m["fingerprint"],
        content_hash=m["content_hash"],
        fhir_id=m["fhir_id"],
        fhir_version=m["fhir_version"],
        attempts=m["attempts"],
        next_attempt_at=m["next_attempt_at"],
        last_error_kind=m["last_error_kind"],
        last_error=m["last_error"],
        lease_owner=m["lease_owner"],
        lease_expires_at=m["lease_expires_at"],
        due_seq=m["due_seq"],
        claimed_seq=m["claimed_seq"],
        first_seen_at=m["first_seen_at"],
        updated_at=m["updated_at"],
        synced_at=m["synced_at"],
    )


def failure_view(row: Row[Any]) -> FailureView:
    """Build a :class:`FailureView` from a full ``bridge_failure`` row."""
    m = row._mapping
    return FailureView(
        id=m["id"],
        archive=m["archive"],
        study_uid=m["study_uid"],
        at=m["at"],
        kind=m["kind"],
        message=m["message"],
        operation_outcome=m["operation_outcome"],
        attempt=m["attempt"],
        permanent=bool(m["permanent"]),
    )


def warning_view(row: Row[Any]) -> WarningView:
    """Build a :class:`WarningView` from a full ``bridge_mapping_warning`` row."""
    m = row._mapping
    return WarningView(
        archive=m["archive"],
        study_uid=m["study_uid"],
        at=m["at"],
        code=m["code"],
        tag=m["tag"],
        message=m["message"],
        where=m["place"],
        value=m["value"],
    )


def audit_view(row: Row[Any]) -> AuditView:
    """Build an :class:`AuditView` from a full ``bridge_audit`` row."""
    m = row._mapping
    return AuditView(
        id=m["id"],
        at=m["at"],
        archive=m["archive"],
        study_uid=m["study_uid"],
        action=AuditAction(m["action"]),
        fhir_type=m["fhir_type"],
        fhir_id=m["fhir_id"],
        fhir_version=m["fhir_version"],
        status_code=m["status_code"],
    )

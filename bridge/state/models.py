"""The state store's tables (SQLModel).

These classes describe the schema at the *head* migration; the schema itself is only ever
created and changed by the alembic revisions in ``migrations/versions`` (a unit test
checks that the two agree).  The store talks to these tables with SQLAlchemy Core
statements and hands out frozen dataclasses (``views.py``), never these ORM objects.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Column, Index, Integer, Table, Text
from sqlmodel import Field, SQLModel

from bridge.state.enums import Lane, Status
from bridge.state.sqltypes import JSONDoc, UTCDateTime

_STATUS_VALUES = ", ".join(f"'{s.value}'" for s in Status)

#: identifiers of DICOM UIDs and FHIR ids are at most 64 characters (PS3.5 6.2, FHIR R4 id)
_UID = 64


def _serial_pk() -> Any:
    # BIGINT on PostgreSQL; SQLite only auto-increments an "INTEGER PRIMARY KEY" column.
    return Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
    )


class Study(SQLModel, table=True):
    """One row per (archive, study): the work-queue entry and the last confirmed outcome."""

    __tablename__ = "bridge_study"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUS_VALUES})", name="ck_bridge_study_status"),
        Index("ix_bridge_study_lane_ready_at", "lane", "ready_at"),
        Index("ix_bridge_study_archive_lane_ready_at", "archive", "lane", "ready_at"),
        Index("ix_bridge_study_status", "status"),
        Index("ix_bridge_study_study_uid", "study_uid"),
    )

    archive: str = Field(primary_key=True, max_length=64)
    study_uid: str = Field(primary_key=True, max_length=_UID)
    status: str = Field(max_length=16)
    #: why the row was last marked due (``Reason``)
    reason: str | None = Field(default=None, max_length=16)
    #: the work-queue lane (``Lane``): real-time work is claimed before bulk work; the
    #: server default serves rows written by a bridge older than revision 0005
    lane: str = Field(
        default=Lane.BULK.value,
        max_length=16,
        sa_column_kwargs={"server_default": Lane.BULK.value},
    )
    #: last fingerprint known for the study: from the poll that marked it due, or from the
    #: confirmed sync; the poller compares the archive's current fingerprint with it
    fingerprint: str | None = Field(default=None, max_length=128)
    #: hash of the last ImagingStudy the FHIR server confirmed (skip unchanged writes)
    content_hash: str | None = Field(default=None, max_length=128)
    fhir_id: str | None = Field(default=None, max_length=_UID)
    fhir_version: str | None = Field(default=None, max_length=_UID)
    attempts: int = Field(default=0)
    #: when the row should be attempted; for a leased row, the due time of an event that
    #: arrived during the lease (NULL if none)
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: when the row can be claimed: next_attempt_at for due/waiting rows, lease_expires_at
    #: for leased rows, NULL otherwise (so NULL exactly when the row is not claimable);
    #: the column the claim query reads, lane by lane, through an index
    ready_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error_kind: str | None = Field(default=None, max_length=64)
    last_error: str | None = Field(default=None, sa_type=Text)
    lease_owner: str | None = Field(default=None, max_length=200)
    lease_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: incremented by every mark_due; a completion only marks the row synced if no event
    #: arrived since the claim (due_seq == claimed_seq)
    due_seq: int = Field(default=0)
    claimed_seq: int = Field(default=0)
    first_seen_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    synced_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Failure(SQLModel, table=True):
    """One row per failed attempt; ``permanent`` rows are the dead letters."""

    __tablename__ = "bridge_failure"
    __table_args__ = (Index("ix_bridge_failure_study_uid", "study_uid"),)

    id: int | None = _serial_pk()
    archive: str = Field(max_length=64)
    study_uid: str = Field(max_length=_UID)
    at: datetime = Field(sa_type=UTCDateTime)
    kind: str = Field(max_length=64)
    message: str = Field(sa_type=Text)
    operation_outcome: dict[str, Any] | None = Field(default=None, sa_type=JSONDoc)
    attempt: int = Field(default=0)
    permanent: bool = Field(default=False)


class Checkpoint(SQLModel, table=True):
    """Named progress markers (backfill windows, last poll, ...)."""

    __tablename__ = "bridge_checkpoint"

    name: str = Field(primary_key=True, max_length=200)
    value: str = Field(sa_type=Text)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class Audit(SQLModel, table=True):
    """One row per FHIR write the server confirmed (or skipped as unchanged)."""

    __tablename__ = "bridge_audit"
    __table_args__ = (Index("ix_bridge_audit_study_uid", "study_uid"),)

    id: int | None = _serial_pk()
    at: datetime = Field(sa_type=UTCDateTime)
    archive: str = Field(max_length=64)
    study_uid: str = Field(max_length=_UID)
    action: str = Field(max_length=32)
    fhir_type: str = Field(max_length=64)
    fhir_id: str | None = Field(default=None, max_length=_UID)
    fhir_version: str | None = Field(default=None, max_length=_UID)
    status_code: int | None = Field(default=None)


class WebhookSignature(SQLModel, table=True):
    """Signatures of accepted notifications, until they can no longer be replayed.

    Shared by every process using the store, so a notification accepted by one
    ``imaging-bridge serve`` behind a load balancer is refused as a replay by the others.
    """

    __tablename__ = "bridge_webhook_signature"
    __table_args__ = (Index("ix_bridge_webhook_signature_expires_at", "expires_at"),)

    #: hex of the request's HMAC-SHA256 (64 characters)
    signature: str = Field(primary_key=True, max_length=64)
    #: after this the row may be reused or purged: the signed timestamp is stale by then
    expires_at: datetime = Field(sa_type=UTCDateTime)


class StudyWarningRow(SQLModel, table=True):
    """The warnings of the latest mapping of each study, one row per warning.

    Replaced as a whole whenever the sync records an attempt that mapped the study (synced,
    unchanged, retried or failed after mapping); cleared when the study is deleted.  Never
    the offending value, except a vocabulary term (see ``bridge.sync.recorded_warnings``).
    """

    __tablename__ = "bridge_mapping_warning"
    __table_args__ = (
        Index("ix_bridge_mapping_warning_study", "archive", "study_uid"),
        Index("ix_bridge_mapping_warning_code", "code"),
    )

    id: int | None = _serial_pk()
    archive: str = Field(max_length=64)
    study_uid: str = Field(max_length=_UID)
    #: when the mapping that produced the warning was recorded
    at: datetime = Field(sa_type=UTCDateTime)
    #: stable code from bridge.mapping.problems.WARNING_CODES
    code: str = Field(max_length=64)
    #: the attribute as "(gggg,eeee) Keyword"
    tag: str = Field(max_length=128)
    #: the series the value was read in ("series <uid>"), NULL for study level
    place: str | None = Field(default=None, max_length=128)
    message: str = Field(sa_type=Text)
    #: the offending value, only when it is a term of a coded vocabulary (never patient data)
    value: str | None = Field(default=None, max_length=64)


class TaskRow(SQLModel, table=True):
    """One row per (kind, key): the follow-up work of a room (publish a study's manifest,
    map its reports, migrate a study), queued like the studies are (``tasks.py``)."""

    __tablename__ = "bridge_task"
    __table_args__ = (
        CheckConstraint("status IN ('due', 'leased', 'done', 'failed')",
                        name="ck_bridge_task_status"),
        # the claim: one range scan of one kind's ready rows, in claim order
        Index("ix_bridge_task_kind_ready_at", "kind", "ready_at"),
        Index("ix_bridge_task_kind_status", "kind", "status"),
    )

    #: what is to be done (``share.publish``, ``record.map``, ``migrate.<source>``)
    kind: str = Field(primary_key=True, max_length=64)
    #: to what (``<archive>/<study uid>``, a Study Instance UID)
    key: str = Field(primary_key=True, max_length=200)
    status: str = Field(max_length=16)
    #: what the enqueuer knew (small JSON; never patient names)
    payload: dict[str, Any] | None = Field(default=None, sa_type=JSONDoc)
    #: what the last successful run recorded (counts, the document written)
    result: dict[str, Any] | None = Field(default=None, sa_type=JSONDoc)
    attempts: int = Field(default=0)
    last_error: str | None = Field(default=None, sa_type=Text)
    #: like the study queue: an enqueue during a lease bumps due_seq, and the run that
    #: ends makes the row due again instead of done
    due_seq: int = Field(default=0)
    claimed_seq: int = Field(default=0)
    #: when the row can be claimed (due time, or lease expiry); NULL when done or failed
    ready_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lease_owner: str | None = Field(default=None, max_length=200)
    lease_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


def _table(name: str) -> Table:
    return SQLModel.metadata.tables[name]


STUDY: Table = _table("bridge_study")
FAILURE: Table = _table("bridge_failure")
CHECKPOINT: Table = _table("bridge_checkpoint")
AUDIT: Table = _table("bridge_audit")
WEBHOOK_SIGNATURE: Table = _table("bridge_webhook_signature")
MAPPING_WARNING: Table = _table("bridge_mapping_warning")
TASK: Table = _table("bridge_task")

"""Modality Performed Procedure Steps of the worklist (issue 17): ``bridge_mpps``, one row
per MPPS SOP Instance, so an open step survives a restart of the bridge.

==================  ===================================================================
``create_mpps``     none -> a row (status, attributes, version 1); an existing row is
                    left as it is and ``False`` returned (the SCP answers 0x0111)
``update_mpps``     the row at ``version - 1`` -> ``version`` (what the caller read is
                    what it changes: two N-SETs at once cannot both win); ``False`` when
                    the row moved or is gone
``mpps``            one row as a frozen :class:`StoredMpps`
==================  ===================================================================

Each write also queues ``follow_up`` (a task kind of ``tasks.py``, key = the SOP Instance
UID) in the same transaction: the FHIR write that reports the step to the EHR is never
lost between the DIMSE answer and its task.  The state machine itself (which transitions
are allowed) is the worklist's (``bridge/worklist/mpps.py``); the store keeps rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Field, SQLModel

from bridge.state.base import StoreBase
from bridge.state.sqltypes import JSONDoc, UTCDateTime
from bridge.state.statements import _insert
from bridge.state.tasks import upsert_tasks

__all__ = ["MppsRow", "StoredMpps", "WorklistOps"]


class MppsRow(SQLModel, table=True):
    """One MPPS SOP Instance (PS3.4 F.7) as the modality last set it."""

    __tablename__ = "bridge_mpps"

    #: the MPPS SOP Instance UID the modality chose (Affected SOP Instance UID)
    sop_instance_uid: str = Field(primary_key=True, max_length=64)
    #: IN PROGRESS | COMPLETED | DISCONTINUED (0040,0252)
    status: str = Field(max_length=16)
    #: every attribute set so far, DICOM JSON (PS3.18 F.2); holds patient data like the
    #: worklist item it performs
    attributes: dict[str, Any] = Field(sa_type=JSONDoc)
    #: writes so far (1 after the N-CREATE)
    version: int = Field(default=1)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


MPPS = SQLModel.metadata.tables["bridge_mpps"]


@dataclass(frozen=True)
class StoredMpps:
    sop_instance_uid: str
    status: str
    attributes: Mapping[str, Any]
    version: int
    updated_at: datetime


class WorklistOps(StoreBase):
    """The MPPS rows' operations (mixed into :class:`~bridge.state.store.StateStore`)."""

    def create_mpps(self, sop_instance_uid: str, *, status: str,
                    attributes: Mapping[str, Any], follow_up: str | None = None) -> bool:
        """Insert the step; ``False`` (nothing written) when the UID exists already."""
        now = self._now()
        stmt = _insert(self._dialect, MPPS).values(
            sop_instance_uid=sop_instance_uid, status=status, attributes=dict(attributes),
            version=1, created_at=now, updated_at=now,
        ).on_conflict_do_nothing(index_elements=[MPPS.c.sop_instance_uid]).returning(
            MPPS.c.sop_instance_uid)
        with self._write() as conn:
            if conn.execute(stmt).first() is None:
                return False
            if follow_up:
                upsert_tasks(conn, self._dialect, follow_up, [(sop_instance_uid, None)],
                             due=now, now=now)
        return True

    def update_mpps(self, sop_instance_uid: str, *, status: str,
                    attributes: Mapping[str, Any], version: int,
                    follow_up: str | None = None) -> bool:
        """Write ``version`` over ``version - 1``; ``False`` when that is not the row's."""
        now = self._now()
        stmt = update(MPPS).where(MPPS.c.sop_instance_uid == sop_instance_uid,
                                  MPPS.c.version == version - 1).values(
            status=status, attributes=dict(attributes), version=version, updated_at=now)
        with self._write() as conn:
            if conn.execute(stmt).rowcount != 1:
                return False
            if follow_up:
                upsert_tasks(conn, self._dialect, follow_up, [(sop_instance_uid, None)],
                             due=now, now=now)
        return True

    def mpps(self, sop_instance_uid: str) -> StoredMpps | None:
        with self._read() as conn:
            row = conn.execute(select(MPPS).where(
                MPPS.c.sop_instance_uid == sop_instance_uid)).first()
        if row is None:
            return None
        return StoredMpps(row.sop_instance_uid, row.status, row.attributes, row.version,
                          row.updated_at)

"""Durable state of the sync engine: work queue with leases, failures, checkpoints, audit,
and the warnings of each study's latest mapping.

SQLite file by default, PostgreSQL by URL; schema managed by alembic migrations that
:func:`open_store` runs itself.  See ``store.py`` for the queue's state machine.
"""

from __future__ import annotations

from bridge.state.base import Clock, utcnow
from bridge.state.engine import create_state_engine, writer
from bridge.state.enums import LANE_OF_REASON, AuditAction, Lane, Reason, Status
from bridge.state.errors import StateUnavailable
from bridge.state.store import StateStore, open_store
from bridge.state.views import (
    AuditView,
    ClaimedStudy,
    Completion,
    FailureView,
    HistoryEvent,
    LaneFigures,
    StudyView,
    StudyWarning,
    WarnedStudy,
    WarningView,
)

__all__ = [
    "LANE_OF_REASON",
    "AuditAction",
    "AuditView",
    "ClaimedStudy",
    "Clock",
    "Completion",
    "FailureView",
    "HistoryEvent",
    "Lane",
    "LaneFigures",
    "Reason",
    "StateStore",
    "StateUnavailable",
    "Status",
    "StudyView",
    "StudyWarning",
    "WarnedStudy",
    "WarningView",
    "create_state_engine",
    "open_store",
    "utcnow",
    "writer",
]

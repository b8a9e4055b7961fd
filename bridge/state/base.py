"""Shared plumbing of the state store: engine, transactions, clock, error translation."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from fractions import Fraction
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Connection, Engine, insert, text
from sqlalchemy.exc import InterfaceError, OperationalError

from bridge.state import statements
from bridge.state.engine import writer
from bridge.state.enums import Reason
from bridge.state.errors import StateUnavailable
from bridge.state.models import AUDIT, STUDY

Clock = Callable[[], datetime]

#: keys per IN list (well under SQLite's and PostgreSQL's bound-parameter limits)
CHUNK = 500

#: share of each claim kept for bulk work while real-time work waits (``sync.bulk_share``)
DEFAULT_BULK_SHARE = 0.2


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the store's default clock)."""
    return datetime.now(UTC)


@contextmanager
def translated() -> Iterator[None]:
    """Turn database outages into :class:`StateUnavailable` (bugs pass through)."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        cause = exc.orig if exc.orig is not None else exc
        raise StateUnavailable(f"state database error: {type(cause).__name__}: {cause}") from exc


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def reason_value(value: Reason | str) -> str:
    """The stored form of a due reason; ``ValueError`` for an unknown one."""
    return Reason(value).value


def nonnegative(name: str, value: float) -> None:
    """Refuse a negative delay."""
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


class StoreBase:
    """Engine, clock and transactions shared by the parts of :class:`StateStore`."""

    def __init__(
        self, engine: Engine, *, clock: Clock = utcnow, bulk_share: float = DEFAULT_BULK_SHARE
    ) -> None:
        if not 0 <= bulk_share <= 1:
            raise ValueError(f"bulk_share must be between 0 and 1, got {bulk_share}")
        # exact arithmetic: 0.2 as 1/5, so five one-row claims owe bulk exactly one row
        self._bulk_share = Fraction(str(bulk_share))
        #: bulk slots owed by earlier claims but not given yet (always < 1; see _bulk_slots)
        self._bulk_owed = Fraction(0)
        self._bulk_lock = threading.Lock()
        self._engine = engine
        self._writer = writer(engine)
        self._clock = clock
        self._dialect = engine.dialect.name
        self._mark_due = statements.mark_due(self._dialect)
        self._mark_many_due = statements.mark_many_due(self._dialect)
        self._fingerprints = statements.fingerprints(self._dialect)
        self._set_checkpoint = statements.set_checkpoint(self._dialect)
        self._claim_pick = statements.claim_pick(self._dialect, by_archive=False)
        self._claim_pick_archive = statements.claim_pick(self._dialect, by_archive=True)
        self._claim_lease = statements.claim_lease(self._dialect, by_archive=False)
        self._claim_lease_archive = statements.claim_lease(self._dialect, by_archive=True)
        self._held_rows = statements.held(self._dialect)
        self._complete = statements.complete()
        self._complete_returning = self._complete.returning(STUDY.c.fhir_id, STUDY.c.fhir_version)
        self._insert_audit = insert(AUDIT)

    # --- lifecycle --------------------------------------------------------------------

    @property
    def bulk_share(self) -> float:
        """The share of each claim kept for bulk work while real-time work waits."""
        return float(self._bulk_share)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._dialect

    def close(self) -> None:
        """Close every pooled connection; the store must not be used afterwards."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"StateStore({self._engine.url.render_as_string(hide_password=True)!r})"

    def ping(self) -> bool:
        """Whether the database answers (for readiness checks)."""
        try:
            with self._read() as conn:
                conn.execute(text("SELECT 1"))
        except StateUnavailable:
            return False
        return True

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("the store's clock must return timezone-aware datetimes")
        return now.astimezone(UTC)

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with translated(), self._engine.connect() as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with translated(), self._writer.begin() as conn:
            yield conn

"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes in, timezone-aware UTC datetimes out.

    PostgreSQL stores ``timestamptz``.  SQLite has no time zones: values are stored as
    naive UTC text ``YYYY-MM-DD HH:MM:SS.ffffff`` (SQLAlchemy's own SQLite format, whose
    lexical order is the time order) and get ``tzinfo=UTC`` back on the way out.  Naive
    datetimes are refused so a local time can never sneak in.

    On SQLite the conversion is done here in one step (``isoformat``/``fromisoformat``,
    both in C) instead of this decorator's plus SQLAlchemy's own processor: bulk
    ``mark_many_due`` binds four datetimes per row and spent most of its time there.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return _as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name == "sqlite":
            return _sqlite_bind
        return super().bind_processor(dialect)

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        if dialect.name == "sqlite":
            return _sqlite_result
        return super().result_processor(dialect, coltype)


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: the state store needs aware UTC times")
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def _sqlite_bind(value: datetime | None) -> str | None:
    if value is None:
        return None
    return _as_utc(value).replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_result(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


class JSONDoc(TypeDecorator[Any]):
    """A JSON document: ``jsonb`` on PostgreSQL, JSON text elsewhere."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())

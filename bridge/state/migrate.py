"""Programmatic alembic migrations, run by ``open_store`` under a lock.

Several processes may open the same store at once (two workers starting together), so
the upgrade runs inside one transaction that first takes a lock: ``BEGIN IMMEDIATE`` on
SQLite (the single writer lock; SQLite's DDL is transactional), a transaction-scoped
advisory lock on PostgreSQL.  The second process waits, then finds the schema at head.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, text

from bridge.state.engine import writer

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "bridge_alembic_version"
#: arbitrary constant key of the PostgreSQL advisory lock serialising migrations
_PG_LOCK_KEY = 0x6272_6467_7374  # "brdgst"


def _config(connection: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    with writer(engine).begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        yield conn


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade the schema to ``revision`` (``head`` by default); a no-op when already there."""
    with _locked(engine) as conn:
        command.upgrade(_config(conn), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Downgrade the schema to ``revision`` (``base`` drops every table of the store)."""
    with _locked(engine) as conn:
        command.downgrade(_config(conn), revision)


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at, or ``None`` for an empty database."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()

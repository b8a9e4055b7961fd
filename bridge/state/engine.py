"""One SQLAlchemy Engine per store: SQLite (WAL) by default, PostgreSQL by URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

#: execution option naming the BEGIN flavour for SQLite transactions
SQLITE_BEGIN = "bridge_sqlite_begin"
_BEGIN_MODES = frozenset({"DEFERRED", "IMMEDIATE", "EXCLUSIVE"})


def normalize_url(url: str) -> URL:
    """Parse ``url``; a bare ``postgresql://`` URL gets the psycopg 3 driver we ship."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ValueError(
            "the state store needs a SQLite *file* (sqlite:///path/to/state.db): an in-memory "
            "database is private to one connection and would lose the queue"
        )
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported state store database {backend!r}: use SQLite or PostgreSQL")
    return parsed


def create_state_engine(url: str, *, busy_timeout: float = 30.0) -> Engine:
    """Create the store's engine, with SQLite set up for several threads and processes.

    SQLite: WAL journal (readers never block the writer), ``synchronous=NORMAL`` (durable
    at checkpoints, safe against corruption), ``busy_timeout`` so a writer waits for the
    lock instead of failing, and explicit ``BEGIN``: deferred for reads, ``BEGIN
    IMMEDIATE`` for writes (option :data:`SQLITE_BEGIN`) so a transaction never has to
    upgrade a read lock to a write lock, which is where SQLite gives up with "database is
    locked" regardless of the timeout.
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "postgresql":
        return create_engine(parsed, pool_pre_ping=True)

    assert parsed.database is not None
    Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        parsed,
        connect_args={"check_same_thread": False, "timeout": busy_timeout},
    )
    busy_ms = int(busy_timeout * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # leave transaction control to the "begin" hook below (pysqlite would otherwise
        # start transactions lazily and in deferred mode only)
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {busy_ms}")
            if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = str(conn.get_execution_options().get(SQLITE_BEGIN, "DEFERRED"))
        if mode not in _BEGIN_MODES:
            raise ValueError(f"bad SQLite BEGIN mode {mode!r}")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def writer(engine: Engine) -> Engine:
    """The same engine (and pool), whose transactions take SQLite's write lock at BEGIN."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
    return engine

"""Alembic environment of the state store.

The store runs ``upgrade head`` itself at open (``bridge.state.migrate``), handing over a
connection that already holds the migration lock; that connection arrives in
``config.attributes["connection"]``.  For development (``alembic -c
bridge/state/migrations/alembic.ini revision ...``) a URL can be given with ``-x url=...``
or the ``BRIDGE_STATE_URL`` environment variable instead.
"""

from __future__ import annotations

import logging
import os

from alembic import context
from sqlalchemy import Connection, create_engine
from sqlmodel import SQLModel

import bridge.state.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from bridge.state.migrate import VERSION_TABLE

log = logging.getLogger("bridge.state.migrations")


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        version_table=VERSION_TABLE,
        compare_type=True,
    )
    migration = context.get_context()
    before = migration.get_current_revision()
    with context.begin_transaction():
        context.run_migrations()
    after = migration.get_current_revision()
    if after != before:
        # one line when the schema changes; alembic's own INFO lines (its SQL dialect, each
        # step) are quietened by bridge.logging, as they came on every command
        log.info("state store schema migrated",
                 extra={"from_revision": before or "none", "to_revision": after or "none"})


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if isinstance(connection, Connection):
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get(
        "BRIDGE_STATE_URL", ""
    )
    if not url:
        raise RuntimeError("no database: pass -x url=... or set BRIDGE_STATE_URL")
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


_main()

"""Server-side sessions of the SMART app (SMART 2.2 security: tokens never reach the browser).

The browser holds one opaque, random cookie value (256 bits; HttpOnly, SameSite=Lax, Secure
except on plain-http loopback).  The row is keyed by the SHA-256 of that value, so a copy of
the table does not give anyone a usable cookie.  The row holds the whole SMART client state
as a plain JSON dict (as fhirclient keeps it): the pending authorization (state, PKCE
verifier, iss, endpoints) before the callback, the tokens and launch context after it.

The table lives in the bridge's state database (``state.url``; SQLite or PostgreSQL) and is
created on first use; it is the app's own and is not part of the sync's alembic history.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Float, MetaData, String, Table, Text, delete, select, update
from sqlalchemy.engine import Engine

from bridge.state.engine import create_state_engine, writer

COOKIE_NAME = "bridge_smart_session"
#: an unfinished authorization (user at the EHR's login/consent) lives this long at most
PENDING_LIFETIME = 900.0

_metadata = MetaData()
sessions_table = Table(
    "smart_app_session",
    _metadata,
    Column("id", String(64), primary_key=True),  # sha256 hex of the cookie value
    Column("data", Text, nullable=False),
    Column("expires_at", Float, nullable=False, index=True),
)


def _key(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


@dataclass
class Session:
    """One browser's SMART state.  ``data`` is JSON-serialisable; ``cookie`` is secret."""

    cookie: str
    data: dict[str, Any] = field(default_factory=dict)
    expires_at: float = 0.0

    @property
    def authenticated(self) -> bool:
        return bool(self.data.get("access_token"))

    def __repr__(self) -> str:  # no cookie, tokens or patient in logs
        return f"Session(authenticated={self.authenticated}, expires_at={self.expires_at:.0f})"


class SessionStore:
    """CRUD of sessions (synchronous; call from a thread pool in async code)."""

    def __init__(self, url: str, *, lifetime: float, engine: Engine | None = None) -> None:
        self.lifetime = lifetime
        self._own_engine = engine is None
        self.engine = engine or create_state_engine(url)
        with writer(self.engine).begin() as conn:
            _metadata.create_all(conn, tables=[sessions_table], checkfirst=True)

    def close(self) -> None:
        if self._own_engine:
            self.engine.dispose()

    def create(self, data: dict[str, Any], *, lifetime: float | None = None) -> Session:
        cookie = secrets.token_urlsafe(32)
        expires = time.time() + (self.lifetime if lifetime is None else lifetime)
        with writer(self.engine).begin() as conn:
            conn.execute(sessions_table.insert().values(
                id=_key(cookie), data=json.dumps(data), expires_at=expires))
        return Session(cookie, dict(data), expires)

    def get(self, cookie: str | None) -> Session | None:
        if not cookie or len(cookie) > 128:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(sessions_table.c.data, sessions_table.c.expires_at)
                               .where(sessions_table.c.id == _key(cookie))).first()
        if row is None:
            return None
        if row.expires_at <= time.time():
            self.delete(cookie)
            return None
        return Session(cookie, json.loads(row.data), float(row.expires_at))

    def save(self, session: Session) -> None:
        with writer(self.engine).begin() as conn:
            conn.execute(update(sessions_table).where(sessions_table.c.id == _key(session.cookie))
                         .values(data=json.dumps(session.data)))

    def delete(self, cookie: str | None) -> None:
        if not cookie:
            return
        with writer(self.engine).begin() as conn:
            conn.execute(delete(sessions_table).where(sessions_table.c.id == _key(cookie)))

    def rotate(self, old: Session, data: dict[str, Any]) -> Session:
        """A new session (new cookie) with ``data``; the old one is deleted (no fixation)."""
        new = self.create(data)
        self.delete(old.cookie)
        return new

    def purge_expired(self) -> int:
        with writer(self.engine).begin() as conn:
            result = conn.execute(delete(sessions_table)
                                  .where(sessions_table.c.expires_at <= time.time()))
        return int(result.rowcount or 0)

    def count(self) -> int:
        with self.engine.connect() as conn:
            return len(conn.execute(select(sessions_table.c.id)).all())

"""Server-side sessions of the SMART app (SMART 2.2 security: tokens never reach the browser).

The browser holds one opaque, random cookie value (256 bits; HttpOnly, SameSite=Lax, Secure
except on plain-http loopback).  The row is keyed by the SHA-256 of that value, so a copy of
the table does not give anyone a usable cookie.  The row holds the whole SMART client state
as a JSON dict (as fhirclient keeps it): the tokens and launch context of a completed
launch.  A launch in progress is not a session: see :mod:`smart_app.pending`.

That dict is stored encrypted (AES-256-GCM; SMART App Launch 2.x "App Protection": the
app must protect the tokens it holds) under a key derived from the cookie value itself
(HMAC-SHA256 with a fixed label, so it is unrelated to the row key), with the row key as
associated data.  Nobody holding the database (a backup, a read-only replica, a SQL
injection elsewhere) can read a token or a patient id without the browser's cookie, and
there is no server-side key to manage or rotate.  Rows written before encryption (plain
JSON) are still read, and encrypted when next saved.

The table lives in the bridge's state database (``state.url``; SQLite or PostgreSQL) and is
created on first use; it is the app's own and is not part of the sync's alembic history.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Column, Float, MetaData, String, Table, Text, delete, select, update
from sqlalchemy.engine import Engine

from bridge.state import create_state_engine, writer

COOKIE_NAME = "bridge_smart_session"

_metadata = MetaData()
sessions_table = Table(
    "smart_app_session",
    _metadata,
    Column("id", String(64), primary_key=True),  # sha256 hex of the cookie value
    Column("data", Text, nullable=False),
    Column("expires_at", Float, nullable=False, index=True),
)


def row_key(cookie: str) -> str:
    """The row id of a cookie value (its SHA-256, hex)."""
    return hashlib.sha256(cookie.encode()).hexdigest()


def session_id(session: Session) -> str:
    """The session's row key: names it (e.g. in a viewer token's ``sid``) without being
    the cookie, which it does not reveal (SHA-256 preimage) nor decrypt the row with."""
    return row_key(session.cookie)


_SEALED = "v1:"
_LABEL = b"imaging-bridge smart_app session data v1"
_FORM_LABEL = b"imaging-bridge smart_app form token v1"


def _cipher(cookie: str) -> AESGCM:
    return AESGCM(hmac.new(cookie.encode(), _LABEL, hashlib.sha256).digest())


def seal(cookie: str, data: dict[str, Any]) -> str:
    """``data`` encrypted for the row of ``cookie`` (96-bit random nonce, NIST SP 800-38D)."""
    nonce = os.urandom(12)
    sealed = _cipher(cookie).encrypt(nonce, json.dumps(data).encode(),
                                     row_key(cookie).encode())
    return _SEALED + base64.b64encode(nonce + sealed).decode("ascii")


def unseal(cookie: str, stored: str) -> dict[str, Any] | None:
    """The dict of a row, or None when it does not decrypt under this cookie."""
    if not stored.startswith(_SEALED):
        data = json.loads(stored)  # written before encryption
        return data if isinstance(data, dict) else None
    raw = base64.b64decode(stored[len(_SEALED):])
    try:
        plain = _cipher(cookie).decrypt(raw[:12], raw[12:], row_key(cookie).encode())
    except InvalidTag:
        return None
    data = json.loads(plain)
    return data if isinstance(data, dict) else None


@dataclass
class Session:
    """One browser's SMART state.  ``data`` is JSON-serialisable; ``cookie`` is secret."""

    cookie: str
    data: dict[str, Any] = field(default_factory=dict)
    expires_at: float = 0.0

    @property
    def authenticated(self) -> bool:
        return bool(self.data.get("access_token"))

    @property
    def form_token(self) -> str:
        """The anti-CSRF token of this session's forms (sign-out): an HMAC of the cookie
        value, so it needs no storage, differs per session and cannot be computed without
        the cookie (OWASP CSRF cheat sheet, "HMAC based token")."""
        digest = hmac.new(self.cookie.encode(), _FORM_LABEL, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def check_form_token(self, value: str | None) -> bool:
        return bool(value) and hmac.compare_digest(self.form_token.encode(),
                                                   str(value).encode())

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
                id=row_key(cookie), data=seal(cookie, data), expires_at=expires))
        return Session(cookie, dict(data), expires)

    def get(self, cookie: str | None) -> Session | None:
        if not cookie or len(cookie) > 128:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(sessions_table.c.data, sessions_table.c.expires_at)
                               .where(sessions_table.c.id == row_key(cookie))).first()
        if row is None:
            return None
        if row.expires_at <= time.time():
            self.delete(cookie)
            return None
        data = unseal(cookie, row.data)
        if data is None:
            return None
        return Session(cookie, data, float(row.expires_at))

    def is_open(self, session_key: str) -> bool:
        """Whether the session of this row key (:func:`session_id`) exists, unexpired."""
        with self.engine.connect() as conn:
            row = conn.execute(select(sessions_table.c.expires_at)
                               .where(sessions_table.c.id == session_key)).first()
        return row is not None and float(row.expires_at) > time.time()

    def save(self, session: Session) -> None:
        with writer(self.engine).begin() as conn:
            conn.execute(update(sessions_table)
                         .where(sessions_table.c.id == row_key(session.cookie))
                         .values(data=seal(session.cookie, session.data)))

    def delete(self, cookie: str | None) -> None:
        if not cookie:
            return
        with writer(self.engine).begin() as conn:
            conn.execute(delete(sessions_table).where(sessions_table.c.id == row_key(cookie)))

    def purge_expired(self) -> int:
        with writer(self.engine).begin() as conn:
            result = conn.execute(delete(sessions_table)
                                  .where(sessions_table.c.expires_at <= time.time()))
        return int(result.rowcount or 0)

    def count(self) -> int:
        with self.engine.connect() as conn:
            return len(conn.execute(select(sessions_table.c.id)).all())

"""Launches in progress: the authorization request a browser has been sent to the EHR with
(state, PKCE verifier, nonce, endpoints), until its callback (SMART App Launch 2.2 "App
Launch: Launch and Authorization", steps 3-4).

A pending launch is not a session.  It has its own cookie (``bridge_smart_launch``, path
``/smart``) and its own table, so starting a launch never touches the session the browser
may already have: only a callback that matches its own launch's ``state`` replaces that
session (RFC 6749 10.12: another site can start a launch or forge a callback, but neither
may sign the user out).

``GET /smart/launch`` needs no authentication, so the table is bounded: a row is written
only once the launch is valid and the EHR's discovery answered, rows expire after
:data:`PENDING_LIFETIME`, and at most ``capacity`` are kept; the oldest make room (a user
whose launch was pushed out starts again, rather than everyone being refused while the
table is full).  Under concurrent inserts the bound may be passed by the number of
launches in flight, never more.  Rows are sealed like sessions (:func:`seal`), under the
launch cookie.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import Column, Float, MetaData, String, Table, Text, delete, func, select
from sqlalchemy.engine import Engine

from bridge.clock import SYSTEM_CLOCK, Clock
from bridge.state import writer
from smart_app.sessions import row_key, seal, unseal

LAUNCH_COOKIE = "bridge_smart_launch"
#: an unfinished authorization (user at the EHR's login/consent) lives this long at most
PENDING_LIFETIME = 900.0

_metadata = MetaData()
launches_table = Table(
    "smart_app_launch",
    _metadata,
    Column("id", String(64), primary_key=True),  # sha256 hex of the launch cookie
    Column("data", Text, nullable=False),
    Column("expires_at", Float, nullable=False, index=True),
)


class PendingLaunches:
    """The bounded store of launches in progress (synchronous; call from a thread pool).
    Rows are dated by ``clock``'s wall time: every process sharing the table reads them."""

    def __init__(self, engine: Engine, *, capacity: int,
                 lifetime: float = PENDING_LIFETIME,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.engine = engine
        self.capacity = capacity
        self.lifetime = lifetime
        self._clock = clock
        with writer(self.engine).begin() as conn:
            _metadata.create_all(conn, tables=[launches_table], checkfirst=True)

    def create(self, data: dict[str, Any]) -> str:
        """Store ``data``; the new launch cookie (256 random bits)."""
        cookie = secrets.token_urlsafe(32)
        now = self._clock.time()
        t = launches_table
        with writer(self.engine).begin() as conn:
            conn.execute(delete(t).where(t.c.expires_at <= now))
            held = int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            excess = held - self.capacity + 1
            if excess > 0:  # equal lifetimes: the earliest expiry is the oldest launch
                oldest = select(t.c.id).order_by(t.c.expires_at).limit(excess)
                conn.execute(delete(t).where(t.c.id.in_(oldest.scalar_subquery())))
            conn.execute(t.insert().values(id=row_key(cookie), data=seal(cookie, data),
                                           expires_at=now + self.lifetime))
        return cookie

    def get(self, cookie: str | None) -> dict[str, Any] | None:
        """The launch of this cookie, or None (unknown, expired, or not this cookie's)."""
        if not cookie or len(cookie) > 128:
            return None
        t = launches_table
        with self.engine.connect() as conn:
            row = conn.execute(select(t.c.data, t.c.expires_at)
                               .where(t.c.id == row_key(cookie))).first()
        if row is None or float(row.expires_at) <= self._clock.time():
            return None
        return unseal(cookie, row.data)

    def delete(self, cookie: str | None) -> None:
        if not cookie:
            return
        with writer(self.engine).begin() as conn:
            conn.execute(delete(launches_table).where(launches_table.c.id == row_key(cookie)))

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(launches_table))
                       .scalar_one())

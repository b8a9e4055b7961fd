"""Replay memory of signed notifications: each signature is accepted once per window.

One row per accepted signature in ``bridge_webhook_signature``, shared by every process
using the store.  "First time" is one statement, atomic on both databases::

    INSERT ... VALUES (:signature, :expires)
    ON CONFLICT (signature) DO UPDATE SET expires_at = excluded.expires_at
        WHERE bridge_webhook_signature.expires_at <= :now
    RETURNING signature

A row comes back when the signature was new, or only known from an expired row (reused);
none when a live row holds it: a replay.  PostgreSQL makes a concurrent insert of the same
key wait for the first one's commit and then evaluates the ``WHERE`` on the committed row
(docs, INSERT "ON CONFLICT DO UPDATE ... guarantees an atomic INSERT or UPDATE outcome"),
so of two processes receiving the same request at once exactly one gets the row.  SQLite
runs the statement under the store's ``BEGIN IMMEDIATE`` write lock.
"""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, delete
from sqlalchemy.dialects import postgresql, sqlite

from bridge.state.base import StoreBase
from bridge.state.models import WEBHOOK_SIGNATURE
from bridge.state.sqltypes import UTCDateTime

#: the column's width: the hex of an HMAC-SHA256
MAX_SIGNATURE = 64


@functools.cache
def _remember(dialect: str) -> Any:
    """The upsert above; parameters signature, expires, now."""
    table = WEBHOOK_SIGNATURE
    ins = (postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)).values(
        signature=bindparam("signature"), expires_at=bindparam("expires", type_=UTCDateTime())
    )
    return ins.on_conflict_do_update(
        index_elements=[table.c.signature],
        set_={"expires_at": ins.excluded.expires_at},
        where=table.c.expires_at <= bindparam("now", type_=UTCDateTime()),
    ).returning(table.c.signature)


class SignatureOps(StoreBase):
    """Signatures of accepted notifications (part of :class:`StateStore`)."""

    def remember_signature(self, signature: str, *, ttl_seconds: float) -> bool:
        """Record ``signature`` as used for ``ttl_seconds``; ``False`` if it already was.

        ``True`` the first time, and again once the earlier use has expired; ``False`` for
        a replay within the time to live, whichever process saw the signature first.
        """
        if not signature or len(signature) > MAX_SIGNATURE:
            raise ValueError(f"a signature is 1 to {MAX_SIGNATURE} characters")
        if ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be > 0, got {ttl_seconds}")
        now = self._now()
        params = {
            "signature": signature,
            "expires": now + timedelta(seconds=ttl_seconds),
            "now": now,
        }
        with self._write() as conn:
            row = conn.execute(_remember(self._dialect), params).first()
        return row is not None

    def purge_signatures(self) -> int:
        """Delete expired signatures (a range scan of their index); returns how many."""
        expired = delete(WEBHOOK_SIGNATURE).where(WEBHOOK_SIGNATURE.c.expires_at <= self._now())
        with self._write() as conn:
            return int(conn.execute(expired).rowcount)

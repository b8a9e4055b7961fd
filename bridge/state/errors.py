"""The state store's addition to the exception tree of :mod:`bridge.errors`."""

from __future__ import annotations

from bridge.errors import Retryable


class StateUnavailable(Retryable):
    """The state database did not answer (connection lost, lock wait timed out, disk full).

    Raised from SQLAlchemy's ``OperationalError``/``InterfaceError`` (kept as the cause).
    Nothing was recorded by the failing call; the caller may retry it later.  Programming
    errors (integrity violations, bad SQL) are not translated: they are bugs.
    """

    kind = "state-unavailable"

"""What the outbound auth last saw, per remote, for ``/status`` (issue: token errors must not
leave the service "deployed but syncing nothing" without saying why).

Only messages are kept (what the token endpoint answered), never tokens or assertions.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class AuthFailure:
    remote: str
    message: str
    at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"remote": self.remote, "message": self.message, "at": self.at.isoformat()}


class AuthHealth:
    """Unresolved authentication failures, keyed by remote; a later success clears one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: dict[str, AuthFailure] = {}

    def failed(self, remote: str, message: str) -> None:
        with self._lock:
            self._failures[remote] = AuthFailure(remote, message, datetime.now(UTC))

    def succeeded(self, remote: str) -> None:
        with self._lock:
            self._failures.pop(remote, None)

    def last_failure(self) -> AuthFailure | None:
        """The most recent failure not yet followed by a success on the same remote."""
        with self._lock:
            if not self._failures:
                return None
            return max(self._failures.values(), key=lambda f: f.at)

    def clear(self) -> None:
        with self._lock:
            self._failures.clear()


#: the process-wide record shown by ``/status`` as ``last_auth_error``
AUTH_HEALTH = AuthHealth()

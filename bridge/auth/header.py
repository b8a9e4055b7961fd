"""The outbound ``Authorization`` header as a value, for HTTP clients other than httpx.

The gateway streams archive answers with aiohttp (see :mod:`bridge.gateway.proxy` for
why), so it cannot use the httpx ``Auth`` flows of :mod:`bridge.auth.outbound`.  This
wraps the same credentials: Basic is computed once; token kinds reuse
:class:`~bridge.auth.outbound.RenewingBearerAuth` (same cache, same renew-before-expiry,
same single renewal when many requests are refused at once).
"""

from __future__ import annotations

import base64

from bridge.auth.outbound import RenewingBearerAuth, build_auth
from bridge.config import AuthKind, AuthSettings


class AuthorizationHeader:
    """``await value()`` -> the header value to send (None: send none)."""

    def __init__(self, settings: AuthSettings, *, timeout: float = 30.0,
                 base_url: str | None = None) -> None:
        self._static: str | None = None
        self._bearer: RenewingBearerAuth | None = None
        if settings.kind is AuthKind.BASIC:
            assert settings.username is not None and settings.password is not None
            # RFC 7617 2: base64 of user-id ":" password, UTF-8 (the charset httpx uses too)
            pair = f"{settings.username}:{settings.password.get_secret_value()}"
            self._static = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        elif settings.kind is not AuthKind.NONE:
            auth = build_auth(settings, timeout=timeout, base_url=base_url)
            assert isinstance(auth, RenewingBearerAuth)
            self._bearer = auth

    @property
    def renewable(self) -> bool:
        """True when a 401 is worth one retry with a renewed token."""
        return self._bearer is not None

    async def value(self, *, refused: str | None = None) -> str | None:
        """The header value; ``refused`` is a value the server just answered 401 to (the
        token is renewed unless another request renewed it already)."""
        if self._bearer is None:
            return self._static
        stale = refused.removeprefix("Bearer ") if refused else None
        return "Bearer " + await self._bearer.current(refused=stale)

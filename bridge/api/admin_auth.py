"""Authentication of the admin routes (``/status``, ``/metrics``, ``/studies/{uid}``).

They tell whether a study exists and its FHIR id, the queue and the sources' health, so
they answer only requests carrying one of ``api.admin_auth``'s credentials: a bearer token
(RFC 6750 2.1) or basic user (RFC 7617), compared in constant time by the same check as
the STOW-RS proxy's.  Anything else is 401 with a challenge per configured scheme
(RFC 9110 11.6.1), the same for a study that exists and one that does not.  With no
credentials configured the routes stay closed; only ``api.admin_auth: none`` opens them, and
then every start-up says so loudly.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Literal

from fastapi import HTTPException, Request

from bridge.auth.inbound import authenticate
from bridge.config import InboundAuthSettings

log = logging.getLogger(__name__)

AdminAuth = InboundAuthSettings | Literal["none"]


def _challenges(auth: InboundAuthSettings, *, presented: str | None) -> str:
    schemes = []
    if auth.basic_users or not auth.bearer_tokens:
        schemes.append('Basic realm="admin"')
    if auth.bearer_tokens or not auth.basic_users:
        # RFC 6750 3.1: a bearer token was presented and is not valid
        error = ', error="invalid_token"' if (presented or "").lower().startswith(
            "bearer ") else ""
        schemes.append(f'Bearer realm="admin"{error}')
    return ", ".join(schemes)


def admin_guard(auth: AdminAuth) -> Callable[[Request], Awaitable[None]]:
    """A FastAPI dependency refusing (401) requests without admin credentials."""

    async def guard(request: Request) -> None:
        if auth == "none":
            return
        header = request.headers.get("authorization")
        if authenticate(header, auth) is not None:
            return
        configured = bool(auth.bearer_tokens or auth.basic_users)
        # no path: it may name a study; never the header: it may be a near-miss credential
        log.warning("admin request refused",
                    extra={"status": 401, "error_type": "auth" if configured
                           else "not-configured"})
        detail = ("authentication required (Bearer token or Basic credentials of "
                  "api.admin_auth)" if configured
                  else "the admin API has no credentials configured (api.admin_auth)")
        raise HTTPException(status_code=401, detail=detail,
                            headers={"WWW-Authenticate": _challenges(auth, presented=header)})

    return guard


def announce(auth: AdminAuth, *, listener: str) -> None:
    """Say at start-up how the admin routes are protected; loudly when they are not."""
    if auth == "none":
        log.warning("ADMIN API UNAUTHENTICATED: api.admin_auth is none; /status, /metrics "
                    "and /studies/{uid} answer anyone who reaches the listener",
                    extra={"listener": listener})
    elif not (auth.bearer_tokens or auth.basic_users):
        log.warning("admin API closed: api.admin_auth has no credentials; /status, "
                    "/metrics and /studies/{uid} answer 401", extra={"listener": listener})

"""The gateway's typed errors, each carrying the HTTP status it is answered with.

PS3.18 8.6 (status codes): 400 for a malformed request, 401 when the bearer token is
missing or invalid (RFC 6750 3.1 ``invalid_token``), 403 when a valid token may not see
the resource (SMART Imaging Access: a patient mismatch is 403, never an empty result),
404 for an unknown study (IID only; the gateway answers 403 instead for patient tokens),
406 for an unsupported media type, 500 when the gateway is misconfigured (the EHR refuses
its own credentials), 502 when the archive failed the request (500: retrying will not help,
e.g. a transcoding it cannot do), 503 (+ Retry-After) when the archive is down or busy.

Each error carries that status as ``http_status`` (:mod:`bridge.errors`).  A refusal of the
client's request is :class:`~bridge.errors.Permanent` (the same request is refused again);
the EHR's token service being down is an :class:`~bridge.errors.Outage` (503 + Retry-After).
"""

from __future__ import annotations

from bridge.errors import ConfigError, Outage, Permanent


class GatewayError(Permanent):
    """A request the gateway refuses, answered with ``http_status`` and the message."""

    kind = "gateway"
    http_status: int = 500


class InvalidToken(GatewayError):
    """Missing, malformed, expired, forged, revoked or wrong-audience token (401): the
    client's token, not our credentials (those are :class:`~bridge.errors.AuthError`)."""

    kind = "invalid-token"
    http_status = 401


class TokenServiceUnavailable(Outage):
    """The EHR's introspection endpoint or JWKS could not be reached (503 + Retry-After)."""

    kind = "token-service-unavailable"
    http_status = 503

    def __init__(self, message: str, *, retry_after: float = 5.0) -> None:
        super().__init__(message, retry_after=retry_after)


class GatewayMisconfigured(GatewayError, ConfigError):
    """The gateway's own settings stop it from answering, e.g. the EHR's introspection
    endpoint refuses the gateway's credentials (500, RFC 9110 15.6.1; no Retry-After:
    unlike an outage, retrying will not help until an administrator fixes the settings)."""

    kind = "gateway-misconfigured"
    http_status = 500


class Forbidden(GatewayError):
    """A valid token that may not see this resource (403)."""

    kind = "forbidden"
    http_status = 403
    #: RFC 6750 3.1 error code for WWW-Authenticate, when one applies
    oauth_error: str | None = None


class InsufficientScope(Forbidden):
    """The token's scopes do not cover the request (403 ``insufficient_scope``)."""

    kind = "insufficient-scope"
    oauth_error = "insufficient_scope"


class BadRequest(GatewayError):
    """A malformed request; ``parameter`` names the offending query parameter (400)."""

    kind = "bad-request"
    http_status = 400

    def __init__(self, message: str, *, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


class InvalidQueryParameter(BadRequest):
    """A malformed QIDO-RS parameter (PS3.18 8.3.4): 400 for every token, since the check
    is syntactic and says nothing about what the archive holds."""

    kind = "invalid-query-parameter"


class NotFound(GatewayError):
    """The resource does not exist (404)."""

    kind = "not-found"
    http_status = 404


class NotAcceptable(GatewayError):
    """The client's Accept names no media type the gateway can answer with (406)."""

    kind = "not-acceptable"
    http_status = 406


class ArchiveRefused(GatewayError):
    """The archive refused the request with a 4xx or 501: the client gets that status and
    the gateway's message, never the archive's error body (which names its internals)."""

    kind = "archive-refused"

    def __init__(self, message: str, *, http_status: int) -> None:
        super().__init__(message)
        self.http_status = http_status


class ArchiveFailed(GatewayError):
    """The archive answered this request with an internal error (500): the gateway says so
    (502, RFC 9110 15.6.3) without the archive's error body, which names its internals.
    Not 503: the archive is up, and the same request would fail again."""

    kind = "archive-failed"
    http_status = 502

"""SMART discovery: ``{fhir base}/.well-known/smart-configuration`` (SMART App Launch 2.2
"Conformance"), read once for both SMART clients of the product.

The sync's backend-services client (:mod:`bridge.auth.smart_backend`) needs the token
endpoint and what client authentication it accepts; the SMART launch app
(:mod:`smart_app.launch`) needs the authorization and token endpoints, PKCE methods,
capabilities, the OpenID issuer and the revocation endpoint.  Both fetch and read the
document here; each then checks what its own flow requires and words the failure for its
audience (an administrator's :class:`~bridge.errors.AuthError`, a user's error page), so
:func:`discover` reports a failure as a :class:`DiscoveryProblem` value, not an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

WELL_KNOWN = "/.well-known/smart-configuration"


@dataclass(frozen=True, slots=True)
class SmartConfiguration:
    """The fields of a smart-configuration document the bridge reads (SMART 2.2
    "Conformance"); a field absent or of the wrong JSON type reads as absent."""

    url: str
    token_endpoint: str
    authorization_endpoint: str | None
    capabilities: frozenset[str]
    code_challenge_methods: frozenset[str]
    #: ``token_endpoint_auth_methods_supported``; None when the document does not say
    token_endpoint_auth_methods: tuple[str, ...] | None
    #: ``token_endpoint_auth_signing_alg_values_supported``; None when not said
    token_endpoint_auth_signing_algs: tuple[str, ...] | None
    issuer: str | None
    revocation_endpoint: str | None


@dataclass(frozen=True, slots=True)
class DiscoveryProblem:
    """Why no configuration was read: the server could not be reached (``detail``: the
    exception's type), answered another status than 200 (``detail``: the status), sent no
    JSON, or a document without a ``token_endpoint``."""

    reason: Literal["unreachable", "status", "not-json", "no-token-endpoint"]
    url: str
    detail: str = ""
    #: the transport or decoding error, for ``raise ... from problem.cause``
    cause: Exception | None = None


def _strings(value: Any) -> tuple[str, ...] | None:
    return tuple(str(v) for v in value) if isinstance(value, list) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def read_configuration(url: str, body: Mapping[str, Any]) -> SmartConfiguration | None:
    """The document's fields, or None without a ``token_endpoint`` (REQUIRED)."""
    token = _text(body.get("token_endpoint"))
    if token is None:
        return None
    return SmartConfiguration(
        url=url, token_endpoint=token,
        authorization_endpoint=_text(body.get("authorization_endpoint")),
        capabilities=frozenset(_strings(body.get("capabilities")) or ()),
        code_challenge_methods=frozenset(_strings(body.get("code_challenge_methods_supported"))
                                         or ()),
        token_endpoint_auth_methods=_strings(body.get("token_endpoint_auth_methods_supported")),
        token_endpoint_auth_signing_algs=_strings(
            body.get("token_endpoint_auth_signing_alg_values_supported")),
        issuer=_text(body.get("issuer")),
        revocation_endpoint=_text(body.get("revocation_endpoint")),
    )


async def discover(client: httpx.AsyncClient, fhir_base: str
                   ) -> SmartConfiguration | DiscoveryProblem:
    """GET the FHIR server's smart-configuration and read it."""
    url = fhir_base.rstrip("/") + WELL_KNOWN
    try:
        resp = await client.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        return DiscoveryProblem("unreachable", url, type(exc).__name__, exc)
    if resp.status_code != 200:
        return DiscoveryProblem("status", url, str(resp.status_code))
    try:
        body = resp.json()
    except ValueError as exc:
        return DiscoveryProblem("not-json", url, cause=exc)
    config = read_configuration(url, body) if isinstance(body, dict) else None
    return config if config is not None else DiscoveryProblem("no-token-endpoint", url)

"""Outbound authentication for the archive and the FHIR server."""

from __future__ import annotations

from bridge.auth.health import AUTH_HEALTH, AuthHealth
from bridge.auth.keys import SigningKey, generate_signing_key, load_signing_key, write_key_files
from bridge.auth.outbound import RenewingBearerAuth, build_auth
from bridge.auth.smart_backend import DEFAULT_BACKEND_SCOPE, sign_client_assertion

__all__ = [
    "AUTH_HEALTH",
    "DEFAULT_BACKEND_SCOPE",
    "AuthHealth",
    "RenewingBearerAuth",
    "SigningKey",
    "build_auth",
    "generate_signing_key",
    "load_signing_key",
    "sign_client_assertion",
    "write_key_files",
]

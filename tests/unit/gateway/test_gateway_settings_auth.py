"""Gateway settings that decide how EHR tokens are checked (issue 12, items 10 and 11).

* JWKS mode needs ``audience`` and ``issuer``: without them a JWT the EHR issued for another
  resource server, or any issuer whose keys happen to be in the set, would be accepted
  (RFC 8725 3.8 / 3.9, RFC 9068 4: the resource server MUST check ``iss`` and ``aud``);
* introspection authenticates the gateway as configured in ``introspection_auth``
  (RFC 7662 2.1 leaves the method open): Basic from ``client_id``/``client_secret`` as
  before, a static bearer token, or SMART Backend Services; an endpoint without any client
  authentication is refused (RFC 7662 2.1: "MUST also require some form of authorization").
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from bridge.config import AuthKind, GatewaySettings, load_settings
from bridge.errors import ConfigError

SECRET = "s" * 40
JWKS = {"enabled": True, "viewer_token_secret": SECRET, "validation": "jwks",
        "jwks_uri": "https://ehr.example.org/jwks"}
INTROSPECTION = {"enabled": True, "viewer_token_secret": SECRET,
                 "introspection_url": "https://ehr.example.org/introspect"}


@pytest.mark.parametrize(("given", "missing"), [
    ({}, "audience, issuer"),
    ({"issuer": "https://ehr.example.org"}, "audience"),
    ({"audience": "https://ehr.example.org/fhir"}, "issuer"),
])
def test_jwks_validation_without_audience_or_issuer_refuses_to_start_naming_the_keys(
    given: dict[str, str], missing: str
) -> None:
    with pytest.raises(ValidationError, match=f"gateway validation 'jwks' needs: {missing}"):
        GatewaySettings(**JWKS, **given)
    # the same through the whole Settings, as `imaging-bridge serve` loads them
    with pytest.raises(ConfigError, match=rf"gateway.*needs: {missing}"):
        load_settings(archives=[{"name": "pacs", "base_url": "http://pacs:8042/dicom-web"}],
                      gateway={**JWKS, **given})


def test_jwks_validation_with_audience_and_issuer_starts() -> None:
    settings = GatewaySettings(**JWKS, issuer="https://ehr.example.org",
                               audience="https://ehr.example.org/fhir")
    assert settings.audience == "https://ehr.example.org/fhir"


def test_introspection_with_client_secret_authenticates_with_basic_as_before() -> None:
    settings = GatewaySettings(**INTROSPECTION, client_id="gw",
                               client_secret="gateway-secret-" + "x" * 20)
    auth = settings.introspection_credentials()
    assert auth.kind is AuthKind.BASIC and auth.username == "gw"
    assert auth.password is not None
    assert auth.password.get_secret_value() == "gateway-secret-" + "x" * 20


@pytest.mark.parametrize("auth", [
    {"kind": "bearer", "token": "static-token-" + "t" * 20},
    {"kind": "smart_backend", "client_id": "gw", "private_key_file": "/keys/gw.pem",
     "token_url": "https://ehr.example.org/token"},
    {"kind": "client_credentials", "client_id": "gw", "client_secret": "c" * 24,
     "token_url": "https://ehr.example.org/token"},
])
def test_introspection_auth_may_be_a_bearer_token_or_backend_services(auth: dict[str, Any]
                                                                      ) -> None:
    settings = GatewaySettings(**INTROSPECTION, introspection_auth=auth)
    assert settings.introspection_credentials().kind.value == auth["kind"]


@pytest.mark.parametrize(("auth", "message"), [
    (None, "introspection_auth, or client_id and client_secret"),
    ({"kind": "none"}, "introspection_auth.kind 'none'"),
    # Backend Services for introspection: no FHIR base to discover the token endpoint at
    ({"kind": "smart_backend", "client_id": "gw", "private_key_file": "/k.pem"},
     "introspection_auth.token_url"),
])
def test_introspection_without_usable_gateway_credentials_refuses_to_start(
    auth: dict[str, Any] | None, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        GatewaySettings(**INTROSPECTION, introspection_auth=auth)

"""The gateway's validation cache and JWKS refresh on an injected clock (issue 18): a result
is reused for ``cache_ttl`` and never past the token's ``exp``; a revocation is seen once
the entry expires; the JWKS is refetched for an unknown kid at most every 30 s and trusted
five minutes at most; the patient directory and the compartment look again after
``cache_ttl``.  Time is advanced, never slept out.  The same behaviours against the
real sandbox EHR: tests/integration/gateway/test_gateway_tokens.py and
test_gateway_access.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from bridge.clock import ManualClock
from bridge.config import GatewaySettings
from bridge.gateway.compartment import Compartment, PatientDirectory
from bridge.gateway.errors import Forbidden, InvalidToken
from bridge.gateway.tokens import TokenValidator
from bridge.gateway.viewer_tokens import ViewerTokens

SECRET = "s" * 40
AUD = "https://bridge.example.org/dicom-web"
ISSUER = "https://ehr.example.org"
FHIR = "https://ehr.example.org/fhir"
TTL = 30.0


@dataclass
class Ehr:
    """Introspection answers and a JWKS, counting how often each is asked."""

    clock: ManualClock
    active: bool = True
    exp_in: float = 3600.0
    keys: list[RSAKey] = field(default_factory=list)
    introspections: int = 0
    jwks_fetches: int = 0
    signed: int = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/introspect":
            self.introspections += 1
            body: dict[str, Any] = {"active": self.active}
            if self.active:
                body.update({"scope": "patient/ImagingStudy.rs", "patient": "123",
                             "client_id": "app", "exp": int(self.clock.time() + self.exp_in)})
            return httpx.Response(200, json=body)
        if request.url.path == "/jwks":
            self.jwks_fetches += 1
            return httpx.Response(200, json={"keys": [k.as_dict(private=False)
                                                      for k in self.keys]})
        return httpx.Response(404)

    def sign(self, key: RSAKey) -> str:
        """A new token (its own jti, so never a cached one) signed with ``key``."""
        now = int(self.clock.time())
        self.signed += 1
        claims = {"iss": ISSUER, "aud": FHIR, "exp": now + 3600, "iat": now,
                  "jti": str(self.signed), "scope": "patient/ImagingStudy.rs",
                  "patient": "123", "client_id": "app"}
        return jwt.encode({"alg": "RS384", "kid": key.kid}, claims, key, algorithms=["RS384"])


def _validator(ehr: Ehr, **settings: Any) -> TokenValidator:
    mode: dict[str, Any] = (
        {"validation": "jwks", "jwks_uri": f"{ISSUER}/jwks", "issuer": ISSUER, "audience": FHIR}
        if settings.pop("jwks", False) else
        {"introspection_url": f"{ISSUER}/introspect",
         "introspection_auth": {"kind": "bearer", "token": "gw-" + "t" * 30}})
    config = GatewaySettings(enabled=True, viewer_token_secret=SECRET,
                             **{"cache_ttl": TTL, **mode, **settings})
    return TokenValidator(config, viewer=ViewerTokens(secret=SECRET, audience=AUD,
                                                      clock=ehr.clock),
                          transport=httpx.MockTransport(ehr.handler), clock=ehr.clock)


async def test_a_result_is_reused_for_cache_ttl_then_a_revocation_is_seen() -> None:
    ehr = Ehr(ManualClock())
    validator = _validator(ehr)
    assert (await validator.validate("ehr-token")).patient == "123"
    ehr.active = False  # revoked at the EHR
    ehr.clock.advance(TTL - 0.001)
    assert (await validator.validate("ehr-token")).patient == "123"  # the cached answer
    assert ehr.introspections == 1
    ehr.clock.advance(0.001)
    with pytest.raises(InvalidToken, match="not active"):
        await validator.validate("ehr-token")
    assert ehr.introspections == 2
    await validator.aclose()


async def test_a_refusal_is_cached_too_for_cache_ttl() -> None:
    ehr = Ehr(ManualClock(), active=False)
    validator = _validator(ehr)
    for _ in range(3):
        with pytest.raises(InvalidToken, match="not active"):
            await validator.validate("bad-token")
    assert ehr.introspections == 1
    ehr.active = True  # e.g. the EHR was wrong for a moment
    ehr.clock.advance(TTL)
    assert (await validator.validate("bad-token")).patient == "123"
    assert ehr.introspections == 2
    await validator.aclose()


async def test_a_cached_result_never_outlives_the_tokens_exp() -> None:
    ehr = Ehr(ManualClock(), exp_in=10.0)  # expires well within cache_ttl
    validator = _validator(ehr)
    await validator.validate("short-token")
    ehr.clock.advance(9.999)
    await validator.validate("short-token")
    assert ehr.introspections == 1
    ehr.clock.advance(0.001)
    ehr.active = False  # the EHR says what it says of an expired token
    with pytest.raises(InvalidToken):
        await validator.validate("short-token")
    await validator.aclose()


async def test_a_cache_ttl_of_zero_asks_every_time() -> None:
    ehr = Ehr(ManualClock())
    validator = _validator(ehr, cache_ttl=0.0)
    for _ in range(3):
        await validator.validate("ehr-token")
    assert ehr.introspections == 3
    await validator.aclose()


async def test_a_viewer_token_ends_at_its_exp_on_the_injected_clock() -> None:
    ehr = Ehr(ManualClock())
    validator = _validator(ehr)
    token = validator.viewer.mint(patient="Patient/1", lifetime=60)
    assert (await validator.validate(token)).kind == "viewer"
    ehr.clock.advance(59)
    assert (await validator.validate(token)).patient == "Patient/1"
    # RFC 7519 4.1.4 with the verifier's 5 s leeway for clock skew: good until exp + 5 s
    ehr.clock.advance(5.999)
    assert (await validator.validate(token)).patient == "Patient/1"
    ehr.clock.advance(0.001)
    with pytest.raises(InvalidToken, match="viewer token rejected"):
        await validator.validate(token)
    await validator.aclose()


async def test_the_jwks_is_refetched_for_an_unknown_kid_at_most_every_30_seconds() -> None:
    ehr = Ehr(ManualClock())
    first = RSAKey.generate_key(2048, private=True, auto_kid=True)
    ehr.keys = [first]
    validator = _validator(ehr, jwks=True)
    assert (await validator.validate(ehr.sign(first))).patient == "123"
    assert ehr.jwks_fetches == 1
    second = RSAKey.generate_key(2048, private=True, auto_kid=True)
    ehr.keys = [second, first]  # the EHR rotates: a new kid, the old key still published
    ehr.clock.advance(30)  # fetched exactly 30 s ago: not yet again
    with pytest.raises(InvalidToken, match="signature"):
        await validator.validate(ehr.sign(second))
    assert ehr.jwks_fetches == 1
    ehr.clock.advance(0.001)
    assert (await validator.validate(ehr.sign(second))).patient == "123"
    assert ehr.jwks_fetches == 2
    await validator.aclose()


async def test_a_key_withdrawn_from_the_jwks_stops_being_accepted_after_five_minutes() -> None:
    ehr = Ehr(ManualClock())
    old = RSAKey.generate_key(2048, private=True, auto_kid=True)
    ehr.keys = [old]
    validator = _validator(ehr, jwks=True)
    await validator.validate(ehr.sign(old))
    ehr.keys = [RSAKey.generate_key(2048, private=True, auto_kid=True)]  # old withdrawn
    ehr.clock.advance(300)  # five minutes: the JWKS is still trusted
    assert (await validator.validate(ehr.sign(old))).patient == "123"  # a new token, same key
    assert ehr.jwks_fetches == 1
    ehr.clock.advance(0.001)
    with pytest.raises(InvalidToken, match="signature"):
        await validator.validate(ehr.sign(old))
    assert ehr.jwks_fetches == 2
    await validator.aclose()


class _Fhir:
    def __init__(self) -> None:
        self.reads = 0

    async def read(self, resource_type: str, rid: str) -> dict[str, Any]:
        self.reads += 1
        return {"identifier": [{"system": "urn:mrn", "value": f"mrn-{self.reads}"}]}


async def test_the_patient_directory_reads_the_ehr_again_once_its_entry_expires() -> None:
    clock, fhir = ManualClock(), _Fhir()
    directory = PatientDirectory(fhir=fhir, ttl=TTL, size=16, clock=clock)  # type: ignore[arg-type]
    assert await directory.identifiers_of("Patient/9") == {("urn:mrn", "mrn-1")}
    clock.advance(TTL - 1)
    assert await directory.identifiers_of("9") == {("urn:mrn", "mrn-2")}  # another key
    assert await directory.identifiers_of("Patient/9") == {("urn:mrn", "mrn-1")}
    clock.advance(1)
    assert await directory.identifiers_of("Patient/9") == {("urn:mrn", "mrn-3")}
    assert fhir.reads == 3


class _Archive:
    """QIDO-RS answers of one study whose patient the test changes."""

    def __init__(self) -> None:
        self.patient = "P1"
        self.queries = 0

    async def qido_json(self, path: str, params: Any) -> list[dict[str, Any]]:
        self.queries += 1
        return [{"0020000D": {"vr": "UI", "Value": ["1.2.3"]},
                 "00100020": {"vr": "LO", "Value": [self.patient]}}]


class _Mapper:
    def key_of(self, row: dict[str, Any]) -> tuple[str, str]:
        return ("urn:mrn", str(row["00100020"]["Value"][0]))


async def test_a_study_moved_to_another_patient_is_seen_within_cache_ttl() -> None:
    clock, archive = ManualClock(), _Archive()
    compartment = Compartment(archive=archive, mapper=_Mapper(),  # type: ignore[arg-type]
                              ttl=TTL, size=16, clock=clock)
    await compartment.check_study(frozenset({("urn:mrn", "P1")}), "1.2.3")
    archive.patient = "P2"  # corrected at the archive
    clock.advance(TTL - 1)
    await compartment.check_study(frozenset({("urn:mrn", "P1")}), "1.2.3")  # cached
    assert archive.queries == 1
    clock.advance(1)
    with pytest.raises(Forbidden):
        await compartment.check_study(frozenset({("urn:mrn", "P1")}), "1.2.3")
    assert archive.queries == 2

"""Gateway token validation in JWKS mode and system tokens, against the real sandbox EHR
(issue 8; docker/local/sandbox_ehr issues RFC 9068 JWT access tokens and publishes a JWKS).

Proves, with tokens the sandbox really issues (authorization code + PKCE, client_credentials
with ``private_key_jwt`` or a client secret):

* ``gateway.validation: jwks``: a patient token reads its own patient's studies and gets 403
  for another's; a token signed by another key under the sandbox's kid, an expired one, one
  of another issuer or audience, ``alg: none`` and an HMAC token keyed with the public key
  (algorithm confusion) each get 401 ``invalid_token``; a key rotation (new kid) is
  followed by refetching the JWKS (at most every 30 s), and a key withdrawn from the JWKS
  stops being accepted once the JWKS is five minutes old; a revocation at the EHR is not
  visible to a JWT (RFC 9068 tokens are self-contained), but the token's ``exp`` ends it
  even inside the validation cache.  What happens over time is proven on the gateway's
  token validator with a clock the test advances (issue 18), never by sleeping;
* system tokens (SMART Backend Services), under introspection and under jwks: a client
  listed in ``gateway.system_clients`` searches and reads across patients; the same token
  from an unlisted client is 403; a system token without ``system/ImagingStudy`` read or
  search is 403 ``insufficient_scope``.

Revocation under introspection (401 once ``cache_ttl`` passes) is proven in
test_gateway_access.py and not repeated here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from sandbox_ehr import SandboxEhr

from bridge.auth.keys import SigningKey, generate_signing_key
from bridge.clock import ManualClock
from bridge.config import GatewaySettings
from bridge.gateway.errors import InvalidToken
from bridge.gateway.tokens import TokenValidator
from tests.integration.gateway.conftest import GATEWAY_CLIENT, VIEWER_APP
from tests.integration.gateway.gateway_helpers import (
    VIEWER_SECRET,
    World,
    ehr_patient_token,
    ehr_system_token,
    gateway_settings,
    multipart_parts,
    token_validator,
)
from tests.support.ports import free_port
from tests.support.servers import RunningGateway

DICOM_ALL = 'multipart/related; type="application/dicom"; transfer-syntax=*'
#: listed in gateway.system_clients by both bridges (the conftest ``bridge`` lists it too);
#: authenticates with private_key_jwt (SMART Backend Services)
SYSTEM_CLIENT = "pacs-admin-tool"
#: a confidential client (client_secret_basic) that may get system/ tokens at the EHR but
#: is not listed in gateway.system_clients
OUTSIDER = ("reporting-robot", "robot-secret-" + "r" * 24)


def _uids(rows: list[dict[str, Any]]) -> set[str]:
    return {r["0020000D"]["Value"][0] for r in rows}


def _get(bridge: RunningGateway, path: str, token: str, *,
         params: dict[str, str] | None = None, accept: str = "application/dicom+json"
         ) -> httpx.Response:
    return httpx.get(f"{bridge.dicomweb}/{path}", params=params, timeout=60,
                     headers={"Authorization": f"Bearer {token}", "Accept": accept})


def _jwks_settings(ehr: SandboxEhr) -> dict[str, Any]:
    return {"validation": "jwks", "jwks_uri": ehr.jwks_url, "issuer": ehr.issuer,
            # what the sandbox puts in aud (RFC 9068 3: the resource server, its FHIR base)
            "audience": ehr.fhir_url, "system_clients": [SYSTEM_CLIENT]}


def _patient_token(ehr: SandboxEhr, patient: str, scope: str = "patient/ImagingStudy.rs"
                   ) -> str:
    return ehr_patient_token(ehr, client_id=VIEWER_APP[0], secret=VIEWER_APP[1],
                             redirect_uri=VIEWER_APP[2], patient=patient, scope=scope)


@pytest.fixture(scope="module")
def jwks_bridge(orthanc: Any, hapi: Any, ehr: SandboxEhr,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    """The app with the gateway verifying EHR tokens as JWTs against the sandbox's JWKS
    (no introspection endpoint configured at all)."""
    port = free_port()
    settings = gateway_settings(orthanc, hapi, tmp_path_factory.mktemp("gateway-jwks"),
                                port=port, **_jwks_settings(ehr))
    running = RunningGateway(settings).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def system_key(ehr: SandboxEhr) -> SigningKey:
    """SYSTEM_CLIENT's private_key_jwt key (bridge.auth.keys), registered with the sandbox
    together with the OUTSIDER client."""
    key = generate_signing_key("RS384")
    ehr.register_client(SYSTEM_CLIENT, jwks=key.public_jwks())
    ehr.register_client(OUTSIDER[0], secret=OUTSIDER[1])
    return key


@pytest.fixture(scope="module", params=["introspection", "jwks"])
def any_bridge(request: pytest.FixtureRequest) -> RunningGateway:
    """Each validation mode in turn: the conftest ``bridge`` (RFC 7662 introspection at the
    sandbox) and ``jwks_bridge``."""
    running: RunningGateway = request.getfixturevalue(
        "bridge" if request.param == "introspection" else "jwks_bridge")
    return running


# --- JWKS mode: patient tokens ----------------------------------------------------------------


def test_jwks_mode_patient_token_reads_its_patients_studies_and_gets_403_for_anothers(
    jwks_bridge: RunningGateway, world: World, ehr: SandboxEhr
) -> None:
    token = _patient_token(ehr, world.a.fhir_id)
    assert jwt.decode(token, ehr.server.verification_keys()).header["typ"] == "at+jwt"
    rows = _get(jwks_bridge, "studies", token)
    assert rows.status_code == 200, rows.text
    assert _uids(rows.json()) == set(world.a.studies)
    own = _get(jwks_bridge, f"studies/{world.a.studies[0]}", token, accept=DICOM_ALL)
    assert own.status_code == 200 and multipart_parts(own)
    other = world.b.studies[0]
    for path, params in [(f"studies/{other}", None), (f"studies/{other}/metadata", None),
                         ("studies", {"PatientID": world.b.value,
                                      "IssuerOfPatientID": world.b.issuer})]:
        resp = _get(jwks_bridge, path, token, params=params, accept="*/*")
        assert resp.status_code == 403, (path, resp.status_code, resp.text[:200])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hs256_with_public_key(header: dict[str, Any], claims: dict[str, Any], key: RSAKey
                           ) -> str:
    """Algorithm confusion: an HMAC token whose secret is the RSA public key (PEM)."""
    signing_input = (_b64(json.dumps(header).encode()) + "."
                     + _b64(json.dumps(claims).encode()))
    mac = hmac.new(key.as_pem(private=False), signing_input.encode(), hashlib.sha256)
    return signing_input + "." + _b64(mac.digest())


def test_jwks_mode_refuses_forged_expired_wrong_issuer_and_wrong_audience_tokens_with_401(
    jwks_bridge: RunningGateway, world: World, ehr: SandboxEhr
) -> None:
    real = _patient_token(ehr, world.a.fhir_id)
    claims = dict(jwt.decode(real, ehr.server.verification_keys()).claims)
    key = ehr.server.signing_key
    header = {"alg": "RS256", "typ": "at+jwt", "kid": key.kid}
    now = int(time.time())

    def sandbox_signed(**changes: Any) -> str:  # as the EHR would sign it, one claim changed
        body = {**claims, "jti": uuid.uuid4().hex, **changes}
        return jwt.encode(header, {k: v for k, v in body.items() if v is not None}, key)

    # control: the sandbox's key with unchanged claims passes, so each refusal below is
    # caused by the one thing that differs
    control = _get(jwks_bridge, "studies", sandbox_signed())
    assert control.status_code == 200, control.text
    assert _uids(control.json()) == set(world.a.studies)

    impostor = RSAKey.generate_key(2048, private=True)
    cases = {
        "forged (other key, sandbox kid)": jwt.encode(
            header, {**claims, "jti": uuid.uuid4().hex}, impostor),
        "expired": sandbox_signed(iat=now - 3600, exp=now - 60),
        "no exp": sandbox_signed(exp=None),
        "not yet valid": sandbox_signed(nbf=now + 600),
        "wrong issuer": sandbox_signed(iss="http://127.0.0.1:1"),
        "wrong audience": sandbox_signed(aud="http://elsewhere.example/fhir"),
        # issuer and audience are required settings in jwks mode (issue 12 item 10), so a
        # token that names neither is refused too
        "no issuer": sandbox_signed(iss=None),
        "no audience": sandbox_signed(aud=None),
        "alg none": _b64(json.dumps({"alg": "none", "kid": key.kid}).encode()) + "."
        + _b64(json.dumps({**claims, "jti": uuid.uuid4().hex}).encode()) + ".",
        "HS256 keyed with the public key": _hs256_with_public_key(
            {**header, "alg": "HS256"}, {**claims, "jti": uuid.uuid4().hex}, key),
    }
    failures = []
    for name, token in cases.items():
        resp = _get(jwks_bridge, "studies", token)
        challenge = resp.headers.get("www-authenticate", "")
        if resp.status_code != 401 or not challenge.startswith("Bearer") \
                or 'error="invalid_token"' not in challenge:
            failures.append((name, resp.status_code, challenge, resp.text[:200]))
    assert not failures, failures


async def test_jwks_mode_follows_a_key_rotation_and_drops_a_withdrawn_key(
    world: World, hapi: Any
) -> None:
    # an EHR of its own: rotating the module's sandbox key would disturb the other tests
    with SandboxEhr(hapi.fhir_url, auto_approve=True) as ehr:
        ehr.register_client(VIEWER_APP[0], secret=VIEWER_APP[1], redirect_uris=[VIEWER_APP[2]])
        settings = GatewaySettings(enabled=True, viewer_token_secret=VIEWER_SECRET,
                                   cache_ttl=1.0, **_jwks_settings(ehr))
        # the gateway's validator on a clock the test moves: the refetch interval (30 s)
        # and the JWKS's five minutes are advanced, not slept out or patched
        clock = ManualClock.from_system()
        validator = token_validator(settings, clock)
        try:
            await _rotate_and_withdraw(validator, clock, ehr, world)
        finally:
            await validator.aclose()


async def _rotate_and_withdraw(validator: TokenValidator, clock: ManualClock,
                               ehr: SandboxEhr, world: World) -> None:
    def kid(token: str) -> str:
        return str(jwt.decode(token, ehr.server.verification_keys()).header["kid"])

    async def patient_of(token: str) -> str | None:
        return (await validator.validate(token)).patient

    first = _patient_token(ehr, world.a.fhir_id)
    assert await patient_of(first) == world.a.fhir_id  # JWKS fetched: the first key only

    ehr.rotate_signing_key()  # new kid; the first key stays published
    second = _patient_token(ehr, world.a.fhir_id)
    assert kid(second) != kid(first)
    with pytest.raises(InvalidToken, match="signature"):  # JWKS fetched 0 s ago: not again
        await patient_of(second)
    clock.advance(30.001)  # an unknown kid refetches the JWKS at most every 30 s
    assert await patient_of(second) == world.a.fhir_id
    clock.advance(validator.settings.cache_ttl)  # validated afresh, not from the cache
    assert await patient_of(first) == world.a.fhir_id  # still published: still good

    # both keys withdrawn (as after a compromise): trusted until the JWKS is five minutes
    # old, then let go.  The old tokens first: a new-kid token would refresh it by itself
    ehr.rotate_signing_key(keep_old=False)
    clock.advance(300 - validator.settings.cache_ttl - 0.5)
    assert await patient_of(first) == world.a.fhir_id
    clock.advance(1)
    for token in (first, second):
        with pytest.raises(InvalidToken, match="signature"):
            await patient_of(token)
    third = _patient_token(ehr, world.a.fhir_id)
    assert await patient_of(third) == world.a.fhir_id


async def test_jwks_mode_token_ends_at_its_exp_and_a_revocation_at_the_ehr_is_not_seen(
    jwks_bridge: RunningGateway, world: World, ehr: SandboxEhr
) -> None:
    token = _patient_token(ehr, world.a.fhir_id)
    exp = float(jwt.decode(token, ehr.server.verification_keys()).claims["exp"])
    assert _get(jwks_bridge, "studies", token).status_code == 200
    # the running gateway's validator, on a clock the test moves
    clock = ManualClock.from_system()
    validator = token_validator(jwks_bridge.settings.gateway, clock)
    try:
        assert (await validator.validate(token)).patient == world.a.fhir_id
        # revoked at the EHR: its introspection says inactive ...
        assert ehr.expire_tokens() >= 1
        answer = httpx.post(ehr.introspection_url, data={"token": token}, auth=GATEWAY_CLIENT,
                            timeout=30).json()
        assert answer["active"] is False
        # ... but a self-contained JWT (RFC 9068) checked against the JWKS still verifies,
        # after the cache entry is gone too: choose introspection where revocation must be
        # prompt
        clock.advance(jwks_bridge.settings.gateway.cache_ttl)
        assert (await validator.validate(token)).patient == world.a.fhir_id
        assert _get(jwks_bridge, "studies", token).status_code == 200
        # its exp ends it (RFC 7519 4.1.4), the validation cache notwithstanding
        clock.advance(exp - clock.time() - 1)
        assert (await validator.validate(token)).patient == world.a.fhir_id
        clock.advance(1.5)
        with pytest.raises(InvalidToken, match="expired"):
            await validator.validate(token)
    finally:
        await validator.aclose()


# --- system tokens (SMART Backend Services), both validation modes ------------------------------


def test_system_token_of_a_listed_client_searches_and_reads_across_patients(
    any_bridge: RunningGateway, world: World, ehr: SandboxEhr, system_key: SigningKey
) -> None:
    token = ehr_system_token(ehr, client_id=SYSTEM_CLIENT, key=system_key,
                             scope="system/ImagingStudy.rs")
    both = set(world.a.studies) | set(world.b.studies)
    # one search spanning both patients (UID list matching, PS3.4 C.2.2.2.2)
    rows = _get(any_bridge, "studies", token, params={"StudyInstanceUID": ",".join(both)})
    assert rows.status_code == 200, rows.text
    assert _uids(rows.json()) == both
    # naming a patient, which a patient token may only do for its own
    named = _get(any_bridge, "studies", token,
                 params={"PatientID": world.b.value, "IssuerOfPatientID": world.b.issuer})
    assert named.status_code == 200 and _uids(named.json()) == set(world.b.studies)
    for study in (world.a.studies[0], world.b.studies[0]):
        meta = _get(any_bridge, f"studies/{study}/metadata", token)
        assert meta.status_code == 200 and meta.json(), meta.text[:200]
        whole = _get(any_bridge, f"studies/{study}", token, accept=DICOM_ALL)
        assert whole.status_code == 200 and multipart_parts(whole)
    # other forms of the same permission (SMART v2 wildcard, v1 read)
    for scope in ("system/*.rs", "system/ImagingStudy.read"):
        other = ehr_system_token(ehr, client_id=SYSTEM_CLIENT, key=system_key, scope=scope)
        resp = _get(any_bridge, f"studies/{world.b.studies[0]}/metadata", other)
        assert resp.status_code == 200, (scope, resp.status_code, resp.text[:200])


def test_system_scoped_token_of_a_client_not_in_system_clients_gets_403(
    any_bridge: RunningGateway, world: World, ehr: SandboxEhr, system_key: SigningKey
) -> None:
    token = ehr_system_token(ehr, client_id=OUTSIDER[0], secret=OUTSIDER[1],
                             scope="system/ImagingStudy.rs")
    assert ehr.introspect(token)["active"] is True  # a good token: refused for who it is
    for path in ("studies", f"studies/{world.a.studies[0]}/metadata",
                 f"studies/{world.b.studies[0]}"):
        resp = _get(any_bridge, path, token, accept="*/*")
        assert resp.status_code == 403, (path, resp.status_code, resp.text[:200])
        assert world.a.value not in resp.text and world.b.value not in resp.text


def test_system_token_without_imaging_read_or_search_scope_gets_403_insufficient_scope(
    any_bridge: RunningGateway, world: World, ehr: SandboxEhr, system_key: SigningKey
) -> None:
    study = world.b.studies[0]
    # scope -> (QIDO allowed, WADO allowed): QIDO is a search (s), WADO a read (r)
    table = {"system/Patient.r": (False, False), "system/ImagingStudy.s": (True, False),
             "system/ImagingStudy.r": (False, True), "system/ImagingStudy.cud": (False, False)}
    failures = []
    for scope, (qido_ok, wado_ok) in table.items():
        token = ehr_system_token(ehr, client_id=SYSTEM_CLIENT, key=system_key, scope=scope)
        for kind, path, ok in [("qido", f"studies?StudyInstanceUID={study}", qido_ok),
                               ("wado", f"studies/{study}/metadata", wado_ok)]:
            resp = _get(any_bridge, path, token)
            challenge = resp.headers.get("www-authenticate", "")
            if ok and resp.status_code != 200:
                failures.append((scope, kind, resp.status_code, resp.text[:200]))
            if not ok and (resp.status_code != 403
                           or 'error="insufficient_scope"' not in challenge):
                failures.append((scope, kind, resp.status_code, challenge))
    assert not failures, failures

"""Builders for the gateway tests: two patients' studies, gateway settings, EHR tokens."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from bridge.clock import ManualClock
from bridge.config import GatewaySettings, Settings
from bridge.gateway.tokens import TokenValidator
from bridge.gateway.viewer_tokens import ViewerTokens
from samples.generator import GeneratedStudy, generate_studies
from samples.load import load_studies
from samples.seed_ehr import seed_ehr
from tests.integration.sync_helpers import bridge_settings, fhir_search

VIEWER_SECRET = "viewer-" + "k" * 40


@dataclass
class PatientData:
    fhir_id: str
    system: str
    value: str
    issuer: str
    studies: list[str] = field(default_factory=list)
    accessions: list[str] = field(default_factory=list)


@dataclass
class World:
    """Two patients (A and B) with their studies in Orthanc and their Patients in HAPI."""

    a: PatientData
    b: PatientData
    studies: list[GeneratedStudy]


def build_world(orthanc: Any, hapi: Any) -> World:
    token = uuid.uuid4().hex[:6].upper()
    seed = int(token, 16)
    studies = list(generate_studies(6, seed=seed, profile="small", patients=2,
                                    id_prefix=token, every_patient=True))
    result = load_studies(studies, url=orthanc.dicomweb_url, username=orthanc.username,
                          password=orthanc.password)
    assert result.failed_studies == 0, result.errors
    seed_ehr([s.truth for s in studies], fhir_url=hapi.fhir_url, patients_fraction=1.0,
             seed=seed)
    people: dict[tuple[str, str], PatientData] = {}
    for s in studies:
        t = s.truth
        key = (t.patient_system, t.patient_id)
        if key not in people:
            found = fhir_search(hapi, "Patient", {"identifier": f"{key[0]}|{key[1]}"})
            assert len(found) == 1
            people[key] = PatientData(found[0]["id"], key[0], key[1], t.patient_issuer)
        people[key].studies.append(t.study_uid)
        people[key].accessions.append(t.accession_number)
    assert len(people) == 2, "the generator should give two patients"
    a, b = sorted(people.values(), key=lambda p: p.value)
    return World(a, b, studies)


def token_validator(settings: GatewaySettings, clock: ManualClock) -> TokenValidator:
    """The gateway's token validator for ``settings`` on a clock the test moves, so a test
    of what the cache and the JWKS refresh do over time advances it instead of sleeping
    (the running app reads the system clock).  ``aclose()`` it."""
    viewer = ViewerTokens(secret=VIEWER_SECRET, audience="http://127.0.0.1:1/dicom-web",
                          clock=clock)
    return TokenValidator(settings, viewer=viewer, clock=clock)


def gateway_settings(orthanc: Any, hapi: Any, tmp_path: Path, *, port: int,
                     **gateway: Any) -> Settings:
    settings = bridge_settings(orthanc, hapi, tmp_path)
    settings.api.port = port
    config: dict[str, Any] = {
        "enabled": True,
        "public_url": f"http://127.0.0.1:{port}/dicom-web",
        "viewer_token_secret": VIEWER_SECRET,
        "cache_ttl": 1.0,
        **gateway,
    }
    settings.gateway = GatewaySettings(**config)
    return settings


def ehr_patient_token(ehr: Any, *, client_id: str, secret: str, redirect_uri: str,
                      patient: str, scope: str) -> str:
    """A SMART access token from the sandbox EHR by a standalone launch (auth code + PKCE)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(24)
    with httpx.Client(timeout=30, follow_redirects=False) as client:
        resp = client.get(ehr.authorize_url, params={
            "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
            "scope": f"launch/patient {scope}", "state": state, "aud": ehr.fhir_url,
            "code_challenge": challenge, "code_challenge_method": "S256", "patient": patient,
        })
        assert resp.status_code in (302, 303), resp.text[:300]
        query = parse_qs(urlsplit(resp.headers["location"]).query)
        assert query["state"] == [state]
        token = client.post(ehr.token_url, data={
            "grant_type": "authorization_code", "code": query["code"][0],
            "redirect_uri": redirect_uri, "code_verifier": verifier,
        }, auth=(client_id, secret))
        assert token.status_code == 200, token.text
        body: dict[str, Any] = token.json()
        assert body.get("patient") == patient
        return str(body["access_token"])


def multipart_parts(resp: httpx.Response) -> list[bytes]:
    """The bodies of a multipart/related answer (PS3.18 8.7.3), headers stripped."""
    ctype = resp.headers["content-type"]
    boundary = next(p.split("=", 1)[1].strip('"') for p in ctype.split(";")
                    if p.strip().startswith("boundary="))
    parts = []
    for chunk in resp.content.split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break
        _head, _, body = chunk.partition(b"\r\n\r\n")
        parts.append(body[:-2] if body.endswith(b"\r\n") else body)
    return parts


def dump(obj: Any) -> str:
    return json.dumps(obj)[:300]


def ehr_system_token(ehr: Any, *, client_id: str, scope: str, key: Any = None,
                     secret: str | None = None) -> str:
    """A SMART Backend Services access token from the sandbox EHR (client_credentials, RFC
    6749 4.4): authenticated by ``private_key_jwt`` (RFC 7523, signed with the bridge's own
    :func:`bridge.auth.smart_backend.sign_client_assertion`) when ``key`` (a
    :class:`bridge.auth.keys.SigningKey`) is given, else by ``client_secret_basic``."""
    from bridge.auth.smart_backend import ASSERTION_TYPE, sign_client_assertion

    data = {"grant_type": "client_credentials", "scope": scope}
    auth: tuple[str, str] | None = None
    if key is not None:
        data["client_assertion_type"] = ASSERTION_TYPE
        data["client_assertion"] = sign_client_assertion(key, client_id=client_id,
                                                         token_endpoint=ehr.token_url)
    else:
        assert secret is not None
        auth = (client_id, secret)
    resp = httpx.post(ehr.token_url, data=data, auth=auth, timeout=30)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    assert "patient" not in body and body["scope"] == scope, body
    return str(body["access_token"])

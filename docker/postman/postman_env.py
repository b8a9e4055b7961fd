"""A filled-in Postman environment for the collection in this folder, and its STOW body.

Used by ``docker/local/demo.py`` (it writes ``.run/demo/postman/``) and by the newman test
(``tests/integration/test_postman_collection.py``).  :func:`prepare` registers a client at
the sandbox EHR, gets a SMART patient access token for one patient (authorization code with
PKCE, the consent approved in the same POST the consent page would send), writes a
multipart/related STOW-RS body holding one real image (a new study of that patient, unique
UIDs) and the environment JSON naming everything the collection's requests use.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from samples.generator import SamplePatient, StudyTruth
from samples.real_images import real_studies

HERE = Path(__file__).resolve().parent
COLLECTION = HERE / "imaging-bridge.postman_collection.json"
STOW_BOUNDARY = "imaging-bridge-postman-boundary"
STOW_FILE = "stow-body.mpr"
CLIENT_ID = "postman"
REDIRECT_URI = "http://127.0.0.1/postman-callback"  # never opened: the code is read off it
SCOPE = "launch/patient patient/ImagingStudy.rs patient/Endpoint.rs patient/Patient.rs"
#: environment keys whose values Postman should mask
SECRET_KEYS = frozenset({"token", "admin_password", "stow_token", "webhook_secret"})


@dataclass(frozen=True)
class Prepared:
    """What :func:`prepare` wrote."""

    environment: Path
    workdir: Path  # newman's --working-dir: the STOW body file is there
    stow_study_uid: str
    stow_sop_uid: str


def patient_token(ehr: Any, *, client_id: str, secret: str, patient: str,
                  scope: str = SCOPE, redirect_uri: str = REDIRECT_URI) -> str:
    """A SMART access token for ``patient`` from the sandbox EHR (RFC 6749 4.1 with PKCE,
    RFC 7636 S256): the consent form posted with ``decision=approve``."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(16)
    with httpx.Client(timeout=30, follow_redirects=False) as client:
        resp = client.post(ehr.authorize_url, data={
            "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
            "scope": scope, "state": state, "aud": ehr.fhir_url, "code_challenge": challenge,
            "code_challenge_method": "S256", "patient": patient, "decision": "approve",
        })
        if resp.status_code not in (302, 303):
            raise RuntimeError(f"authorize answered {resp.status_code}: {resp.text[:200]}")
        query = parse_qs(urlsplit(resp.headers["location"]).query)
        if query.get("state") != [state] or "code" not in query:
            raise RuntimeError(f"authorize redirected without a code: {query}")
        token = client.post(ehr.token_url, auth=(client_id, secret), data={
            "grant_type": "authorization_code", "code": query["code"][0],
            "redirect_uri": redirect_uri, "code_verifier": verifier,
        })
        token.raise_for_status()
        return str(token.json()["access_token"])


def stow_body(patient: SamplePatient, *, id_prefix: str) -> tuple[bytes, str, str]:
    """(multipart/related body, Study UID, SOP Instance UID): one real image (MR, JPEG 2000)
    as a new study of ``patient``; ``id_prefix`` makes its UIDs and accession unique."""
    (study,) = real_studies([patient], seed=13, id_prefix=id_prefix, keys=["mr-jpeg2000"])
    part10 = next(study.part10())
    sop_uid = str(study.dataset().SOPInstanceUID)
    body = (f"--{STOW_BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            + part10 + f"\r\n--{STOW_BOUNDARY}--\r\n".encode())
    return body, study.study_uid, sop_uid


def environment(values: dict[str, str], *, name: str = "imaging-bridge") -> dict[str, Any]:
    """A Postman environment (the format Postman exports and newman's ``-e`` reads)."""
    return {
        "id": "0b0a3b9e-6d1c-4f4a-9a53-1d2b5f0e7c13",
        "name": name,
        "values": [{"key": k, "value": v, "type": "secret" if k in SECRET_KEYS else "default",
                    "enabled": True} for k, v in values.items()],
        "_postman_variable_scope": "environment",
    }


def prepare(workdir: Path, *, bridge: str, ehr: Any, patient: SamplePatient,
            patient_fhir_id: str, other_study_uid: str, admin_user: str, admin_password: str,
            stow_token: str, webhook_secret: str, name: str = "imaging-bridge") -> Prepared:
    """Register the ``postman`` client at ``ehr`` (a running ``SandboxEhr``), get the patient
    token, write the STOW body and ``imaging-bridge.postman_environment.json`` in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(24)
    ehr.register_client(CLIENT_ID, secret=secret, redirect_uris=[REDIRECT_URI], name="Postman")
    token = patient_token(ehr, client_id=CLIENT_ID, secret=secret, patient=patient_fhir_id)
    body, study_uid, sop_uid = stow_body(patient, id_prefix=secrets.token_hex(3).upper())
    (workdir / STOW_FILE).write_bytes(body)
    values = {
        "bridge": bridge.rstrip("/"), "fhir": ehr.fhir_url.rstrip("/"), "token": token,
        "patient_fhir_id": patient_fhir_id, "patient_id": patient.patient_id,
        "patient_issuer": patient.issuer, "other_study_uid": other_study_uid,
        "admin_user": admin_user, "admin_password": admin_password, "stow_token": stow_token,
        "stow_file": STOW_FILE, "stow_sop_uid": sop_uid, "webhook_secret": webhook_secret,
    }
    path = workdir / "imaging-bridge.postman_environment.json"
    path.write_text(json.dumps(environment(values, name=name), indent=2) + "\n", "utf-8")
    return Prepared(path, workdir, study_uid, sop_uid)


def prepare_demo(workdir: Path, *, bridge: str, ehr: Any, fhir_url: str,
                 truths: Sequence[StudyTruth], admin_password: str, stow_token: str,
                 webhook_secret: str) -> Prepared:
    """:func:`prepare` for the demo: the first study's patient (looked up in the EHR's FHIR
    server ``fhir_url`` by identifier) and a study of another patient (or, when there is
    only one patient, a study UID that exists nowhere)."""
    first = truths[0]
    found = httpx.get(f"{fhir_url}/Patient", timeout=60, params={
        "identifier": f"{first.patient_system}|{first.patient_id}"}).json()
    patient_fhir_id = str(found["entry"][0]["resource"]["id"])
    # a study of another patient; with a single patient, a UID no archive has: the gateway
    # gives both the same 403 (no existence oracle)
    other = next((t.study_uid for t in truths
                  if (t.patient_issuer, t.patient_id) != (first.patient_issuer, first.patient_id)),
                 f"2.25.{uuid.uuid4().int}")
    patient = SamplePatient(first.patient_id, first.patient_issuer, first.patient_name,
                            first.charset, first.patient_birth_date, first.patient_sex)
    return prepare(workdir, bridge=bridge, ehr=ehr, patient=patient,
                   patient_fhir_id=patient_fhir_id, other_study_uid=other, admin_user="admin",
                   admin_password=admin_password, stow_token=stow_token,
                   webhook_secret=webhook_secret, name="imaging-bridge demo")

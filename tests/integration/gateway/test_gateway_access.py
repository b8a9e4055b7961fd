"""The DICOMweb gateway against the real Orthanc, HAPI and the sandbox EHR (issue 8).

Proves: an independent DICOMweb client (dicomweb-client) gets through the gateway exactly
the bytes Orthanc serves; a patient token never reaches another patient's data (every
attempt 403); bad tokens are 401; EHR SMART tokens are validated by RFC 7662 introspection
at the sandbox EHR (docker/local/sandbox_ehr), and a revocation there is seen once the
validation cache's entry expires (on a clock the test advances, issue 18).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from dicomweb_client.api import DICOMwebClient
from joserfc import jwt
from joserfc.jwk import OctKey

from bridge.clock import ManualClock
from bridge.gateway.errors import InvalidToken
from tests.integration.gateway.conftest import VIEWER_APP
from tests.integration.gateway.gateway_helpers import (
    VIEWER_SECRET,
    World,
    ehr_patient_token,
    multipart_parts,
    token_validator,
)
from tests.support.servers import RunningGateway

DICOM_ALL = 'multipart/related; type="application/dicom"; transfer-syntax=*'
FRAMES = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
Attempt = tuple[str, str, dict[str, str] | list[tuple[str, str]] | None]


def _uids(rows: list[dict[str, Any]], tag: str) -> set[str]:
    return {r[tag]["Value"][0] for r in rows}


def _orthanc(orthanc: Any) -> httpx.Client:
    return httpx.Client(base_url=orthanc.dicomweb_url + "/", timeout=60,
                        auth=(orthanc.username, orthanc.password))


def _hierarchy(orthanc: Any, study: str) -> tuple[str, str]:
    with _orthanc(orthanc) as c:
        series = c.get(f"studies/{study}/series").json()[0]["0020000E"]["Value"][0]
        inst = c.get(f"studies/{study}/series/{series}/instances").json()[0]
        return series, inst["00080018"]["Value"][0]


@pytest.fixture(scope="module")
def viewer_a(bridge: RunningGateway, world: World) -> str:
    token: str = bridge.gateway.viewer.mint(patient=f"Patient/{world.a.fhir_id}")
    return token


def _client(bridge: RunningGateway, token: str) -> httpx.Client:
    return httpx.Client(base_url=bridge.dicomweb + "/", timeout=60,
                        headers={"Authorization": f"Bearer {token}"})


# --- an independent client gets the archive's bytes --------------------------------------


def test_dicomweb_client_gets_byte_identical_instances_through_the_gateway(
    bridge: RunningGateway, world: World, orthanc: Any, viewer_a: str
) -> None:
    via = DICOMwebClient(url=bridge.dicomweb, headers={"Authorization": f"Bearer {viewer_a}"})
    direct = DICOMwebClient(url=orthanc.dicomweb_url)
    direct._session.auth = (orthanc.username, orthanc.password)

    found = via.search_for_studies()
    assert _uids(found, "0020000D") == set(world.a.studies)  # only A's studies, all of them
    for study in world.a.studies:
        got = via.retrieve_study(study)
        want = direct.retrieve_study(study)
        key = lambda ds: ds.SOPInstanceUID  # noqa: E731
        assert [d.SOPInstanceUID for d in sorted(got, key=key)] == \
            [d.SOPInstanceUID for d in sorted(want, key=key)]
        series = via.search_for_series(study)
        assert series
        meta = via.retrieve_study_metadata(study)
        assert len(meta) == len(want)
        assert all(bridge.settings.archives[0].base_url not in str(m) for m in meta)
    # raw multipart bodies: part for part, byte for byte
    with _client(bridge, viewer_a) as gw, _orthanc(orthanc) as arc:
        for study in world.a.studies:
            a = gw.get(f"studies/{study}", headers={"Accept": DICOM_ALL})
            b = arc.get(f"studies/{study}", headers={"Accept": DICOM_ALL})
            assert a.status_code == b.status_code == 200
            assert sorted(multipart_parts(a)) == sorted(multipart_parts(b))
            assert "authorization" not in {k.lower() for k in a.headers}


def test_frames_and_rendered_pass_through_for_the_patients_own_instance(
    bridge: RunningGateway, world: World, orthanc: Any, viewer_a: str
) -> None:
    study = world.a.studies[0]
    series, inst = _hierarchy(orthanc, study)
    base = f"studies/{study}/series/{series}/instances/{inst}"
    with _client(bridge, viewer_a) as gw, _orthanc(orthanc) as arc:
        for path, accept in [(f"{base}/frames/1", FRAMES), (f"{base}/rendered", "image/jpeg"),
                             (base, DICOM_ALL), (f"{base}/metadata", "application/dicom+json")]:
            a = gw.get(path, headers={"Accept": accept})
            b = arc.get(path, headers={"Accept": accept})
            assert a.status_code == b.status_code == 200, (path, a.text[:200])
            if "multipart" in accept:
                assert multipart_parts(a) == multipart_parts(b)
            elif accept == "image/jpeg":
                assert a.content == b.content


def test_transfer_syntax_negotiation_is_the_archives(
    bridge: RunningGateway, world: World, orthanc: Any, viewer_a: str
) -> None:
    """PS3.18 8.7.3: the client's transfer-syntax parameter reaches the archive unchanged,
    and the archive's answer (transcoded, or refused) comes back unchanged."""
    study = world.a.studies[0]
    series, inst = _hierarchy(orthanc, study)
    path = f"studies/{study}/series/{series}/instances/{inst}"
    explicit_le = "1.2.840.10008.1.2.1"
    with _client(bridge, viewer_a) as gw, _orthanc(orthanc) as arc:
        seen = set()
        for syntax in (explicit_le, "1.2.840.10008.1.2", "1.2.840.10008.1.2.4.50", "9.9.9"):
            accept = f'multipart/related; type="application/dicom"; transfer-syntax={syntax}'
            a = gw.get(path, headers={"Accept": accept})
            b = arc.get(path, headers={"Accept": accept})
            # an archive that fails the transcoding (Orthanc: 500) -> 502 without its body
            want = 502 if b.status_code == 500 else b.status_code
            assert a.status_code == want, (syntax, a.text[:200], b.text[:200])
            if want == 502:
                assert "Retry-After" not in a.headers and "OrthancError" not in a.text
            seen.add(a.status_code)
            if a.status_code == 200:
                if syntax != "1.2.840.10008.1.2.4.50":
                    # lossless: the same bytes (a lossy transcoding gets a new SOP Instance
                    # UID each time, PS3.3 C.12.1.1.1, so two are never byte-identical)
                    assert multipart_parts(a) == multipart_parts(b), syntax
                # the part is the archive's encoding in the syntax asked for (0002,0010)
                assert syntax.encode() in multipart_parts(a)[0][:1024], syntax
        assert 200 in seen


# --- cross-patient attempts: every one 403 ------------------------------------------------


def _attempts(world: World, orthanc: Any) -> list[Attempt]:
    b_study = world.b.studies[0]
    a_study = world.a.studies[0]
    series, inst = _hierarchy(orthanc, b_study)
    a_series, _ = _hierarchy(orthanc, a_study)
    b_inst = f"studies/{b_study}/series/{series}/instances/{inst}"
    other, mine = world.b.value, world.a.value
    # the generator may give both patients the same PatientID under different issuers
    # (IssuerOfPatientID decides): name B by PatientID *and* issuer
    b_issuer = world.b.issuer
    guessed = "1.2.826.0.1.3680043.8.498.12345678901234567890"
    return [
        ("qido other PatientID", "studies", {"PatientID": other, "IssuerOfPatientID": b_issuer}),
        ("qido other PatientID by tag", "studies",
         {"00100020": other, "00100021": b_issuer}),
        ("qido PatientID twice", "studies", [("PatientID", mine), ("PatientID", other)]),
        ("qido PatientID wildcard", "studies", {"PatientID": "*"}),
        ("qido PatientID prefix wildcard", "studies", {"PatientID": other[:4] + "*"}),
        ("qido PatientID multi-value", "studies", {"PatientID": f"{mine}\\{other}"}),
        ("qido PatientID with includefield", "studies",
         [("PatientID", other), ("IssuerOfPatientID", b_issuer), ("includefield", "all")]),
        ("qido PatientID fuzzy", "studies", [("PatientID", other),
                                             ("IssuerOfPatientID", b_issuer),
                                             ("fuzzymatching", "true")]),
        ("qido issuer twice", "studies", [("PatientID", mine), ("IssuerOfPatientID", b_issuer),
                                          ("00100021", world.a.issuer)]),
        ("qido other issuer", "studies", {"PatientID": mine, "IssuerOfPatientID": "HOSP_Z"}),
        ("qido OtherPatientIDsSequence", "studies", {"OtherPatientIDsSequence.PatientID": other}),
        ("qido other study uid", "studies", {"StudyInstanceUID": b_study}),
        ("qido uid list mixing", "studies", {"StudyInstanceUID": f"{a_study},{b_study}"}),
        ("qido other accession", "studies", {"AccessionNumber": world.b.accessions[0]}),
        ("qido accession wildcard", "studies", {"AccessionNumber": "*"}),
        ("qido series of other study", f"studies/{b_study}/series", None),
        ("qido instances of other study", f"studies/{b_study}/instances", None),
        ("qido other series uid", "series", {"SeriesInstanceUID": series}),
        ("qido other sop uid", "instances", {"SOPInstanceUID": inst}),
        ("qido guessed study uid", "studies", {"StudyInstanceUID": guessed}),
        ("wado other study", f"studies/{b_study}", None),
        ("wado other study metadata", f"studies/{b_study}/metadata", None),
        ("wado other series", f"studies/{b_study}/series/{series}", None),
        ("wado other instance", b_inst, None),
        ("wado other frames", f"{b_inst}/frames/1", None),
        ("wado other instance metadata", f"{b_inst}/metadata", None),
        ("wado other rendered", f"{b_inst}/rendered", None),
        ("wado other study rendered", f"studies/{b_study}/rendered", None),
        ("wado other bulk", f"{b_inst}/bulk/7fe00010", None),
        ("wado other series under own study", f"studies/{a_study}/series/{series}", None),
        ("wado other instance under own study",
         f"studies/{a_study}/series/{series}/instances/{inst}", None),
        ("wado other instance under own series",
         f"studies/{a_study}/series/{a_series}/instances/{inst}", None),
        ("wado guessed study", f"studies/{guessed}", None),
        ("wado dot segments", f"studies/{a_study}/../{b_study}", None),
        ("wado encoded slash", f"studies/{a_study}%2F..%2F{b_study}", None),
        ("wado smuggled PatientID param", f"studies/{b_study}", {"PatientID": mine}),
    ]


def test_every_cross_patient_attempt_is_refused_with_403(
    bridge: RunningGateway, world: World, orthanc: Any, viewer_a: str
) -> None:
    attempts = _attempts(world, orthanc)
    assert len(attempts) >= 20
    failures = []
    with _client(bridge, viewer_a) as gw:
        for name, path, params in attempts:
            resp = gw.get(path, params=params, headers={"Accept": "*/*"})
            if resp.status_code != 403:
                failures.append((name, resp.status_code, resp.text[:200]))
            elif world.b.value in resp.text or "Value" in resp.text:
                failures.append((name, "leaked data in a 403", resp.text[:200]))
    assert not failures, failures


def test_patient_qido_filters_to_the_tokens_patient_and_allows_own_keys(
    bridge: RunningGateway, world: World, viewer_a: str
) -> None:
    with _client(bridge, viewer_a) as gw:
        all_rows = gw.get("studies").json()
        assert _uids(all_rows, "0020000D") == set(world.a.studies)
        own = gw.get("studies", params={"PatientID": world.a.value}).json()
        assert _uids(own, "0020000D") == set(world.a.studies)
        own = gw.get("studies", params={"PatientID": world.a.value,
                                        "IssuerOfPatientID": world.a.issuer}).json()
        assert _uids(own, "0020000D") == set(world.a.studies)
        if world.b.value == world.a.value:  # same PatientID, other issuer: still only A's
            same = gw.get("studies", params={"PatientID": world.b.value}).json()
            assert _uids(same, "0020000D") == set(world.a.studies)
        by_acc = gw.get("studies", params={"AccessionNumber": world.a.accessions[0]}).json()
        assert _uids(by_acc, "0020000D") == {world.a.studies[0]}
        by_uid = gw.get("studies", params={"StudyInstanceUID": world.a.studies[0]}).json()
        assert _uids(by_uid, "0020000D") == {world.a.studies[0]}
        series = gw.get("series").json()
        assert series and _uids(series, "0020000D") <= set(world.a.studies)
        instances = gw.get("instances", params={"limit": "1000"}).json()
        assert instances and _uids(instances, "0020000D") <= set(world.a.studies)


# --- bad tokens: 401 ------------------------------------------------------------------------


def _forge(claims: dict[str, Any], key: bytes) -> str:
    return jwt.encode({"alg": "HS256", "typ": "bridge-viewer+jwt"}, claims, OctKey.import_key(key))


def test_missing_expired_forged_wrong_audience_and_revoked_tokens_get_401(
    bridge: RunningGateway, world: World, ehr: Any
) -> None:
    now = int(time.time())
    base = {"iss": "bridge", "aud": bridge.dicomweb, "sub": f"Patient/{world.a.fhir_id}",
            "patient": f"Patient/{world.a.fhir_id}", "scope": "patient/ImagingStudy.rs",
            "iat": now, "exp": now + 60, "jti": "x1"}
    secret = VIEWER_SECRET.encode()
    ehr_token = ehr_patient_token(ehr, client_id=VIEWER_APP[0], secret=VIEWER_APP[1],
                                  redirect_uri=VIEWER_APP[2], patient=world.a.fhir_id,
                                  scope="patient/ImagingStudy.rs")
    with _client(bridge, ehr_token) as gw:  # the sandbox's tokens are good: control
        assert gw.get("studies").status_code == 200
    cases: dict[str, str | None] = {
        "missing": None,
        "garbage": "not-a-token",
        "expired viewer": _forge({**base, "iat": now - 400, "exp": now - 100}, secret),
        "forged viewer": _forge(base, b"another-key-" + b"x" * 32),
        "wrong audience viewer": _forge({**base, "aud": "http://elsewhere/dicom-web"}, secret),
        "wrong issuer viewer": _forge({**base, "iss": "someone"}, secret),
        "unknown EHR token": "eyJhbGciOiJub25lIn0.eyJwYXRpZW50IjoiMSJ9.",
    }
    for name, token in cases.items():
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = httpx.get(f"{bridge.dicomweb}/studies", headers=headers, timeout=30)
        assert resp.status_code == 401, (name, resp.status_code, resp.text)
        challenge = resp.headers["www-authenticate"]
        assert challenge.startswith("Bearer"), name
        if token:
            assert 'error="invalid_token"' in challenge, name
    # revoked at the EHR (introspection answers active=false) -> 401; a token the gateway
    # validated before is refused once its cache entry expires (the next test)
    revoked = ehr_patient_token(ehr, client_id=VIEWER_APP[0], secret=VIEWER_APP[1],
                                redirect_uri=VIEWER_APP[2], patient=world.a.fhir_id,
                                scope="patient/ImagingStudy.rs")
    assert ehr.expire_tokens() >= 1
    resp = httpx.get(f"{bridge.dicomweb}/studies", timeout=30,
                     headers={"Authorization": f"Bearer {revoked}"})
    assert resp.status_code == 401
    assert 'error="invalid_token"' in resp.headers["www-authenticate"]


async def test_a_revoked_token_is_refused_once_its_validation_cache_entry_expires(
    bridge: RunningGateway, world: World, ehr: Any
) -> None:
    token = ehr_patient_token(ehr, client_id=VIEWER_APP[0], secret=VIEWER_APP[1],
                              redirect_uri=VIEWER_APP[2], patient=world.a.fhir_id,
                              scope="patient/ImagingStudy.rs")
    # the running gateway's validator (introspection at the sandbox) on a clock the test
    # moves: the cache's time to live is advanced, not slept out
    clock = ManualClock.from_system()
    validator = token_validator(bridge.settings.gateway, clock)
    ttl = bridge.settings.gateway.cache_ttl
    try:
        assert (await validator.validate(token)).patient == world.a.fhir_id
        assert ehr.expire_tokens() >= 1
        clock.advance(ttl - 0.5)
        assert (await validator.validate(token)).patient == world.a.fhir_id  # the cache's
        clock.advance(1)
        with pytest.raises(InvalidToken, match="not active"):
            await validator.validate(token)
    finally:
        await validator.aclose()


# --- EHR SMART tokens (introspection at the sandbox EHR) --------------------------------------


def test_ehr_smart_token_sees_only_its_patient_and_scopes_are_checked(
    bridge: RunningGateway, world: World, ehr: Any, orthanc: Any
) -> None:
    def token(scope: str, patient: str = world.b.fhir_id) -> str:
        return ehr_patient_token(ehr, client_id=VIEWER_APP[0], secret=VIEWER_APP[1],
                                 redirect_uri=VIEWER_APP[2], patient=patient, scope=scope)

    v2 = token("patient/ImagingStudy.rs")
    with _client(bridge, v2) as gw:
        rows = gw.get("studies").json()
        assert _uids(rows, "0020000D") == set(world.b.studies)
        resp = gw.get(f"studies/{world.b.studies[0]}", headers={"Accept": DICOM_ALL})
        assert resp.status_code == 200 and multipart_parts(resp)
        assert gw.get(f"studies/{world.a.studies[0]}").status_code == 403
        # A named by PatientID *and* issuer: the generator may give B the same PatientID
        assert gw.get("studies", params={"PatientID": world.a.value,
                                         "IssuerOfPatientID": world.a.issuer}
                      ).status_code == 403
    for scope, ok in [("patient/ImagingStudy.read", True), ("patient/*.rs", True),
                      ("patient/Observation.rs", False), ("patient/ImagingStudy.s", False),
                      ("user/ImagingStudy.rs", False)]:
        with _client(bridge, token(scope)) as gw:
            status = gw.get(f"studies/{world.b.studies[0]}/metadata").status_code
            assert (status == 200) is ok, (scope, status)


async def test_archive_down_is_503_with_retry_after(
    world: World, orthanc: Any, hapi: Any, tmp_path: Any, ehr: Any
) -> None:
    from bridge.api.app import create_app
    from tests.integration.gateway.gateway_helpers import gateway_settings
    from tests.support.ports import free_port

    dead = free_port()
    settings = gateway_settings(orthanc, hapi, tmp_path, port=free_port(),
                                introspection_url=ehr.introspection_url,
                                client_id="x", client_secret="y" * 20)
    settings.archives[0].base_url = f"http://127.0.0.1:{dead}/dicom-web"
    app = create_app(settings, run_sync=False)
    token = app.state.gateway.viewer.mint(patient=f"{world.a.system}|{world.a.value}")
    # no lifespan needed: the gateway is built in create_app
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://gw") as client:
        for path in ("studies", f"studies/{world.a.studies[0]}"):
            resp = await client.get(f"/dicom-web/{path}",
                                    headers={"Authorization": f"Bearer {token}"})
            assert resp.status_code == 503, resp.text
            assert int(resp.headers["retry-after"]) > 0
    await app.state.gateway.aclose()

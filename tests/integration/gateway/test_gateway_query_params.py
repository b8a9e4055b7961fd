"""Malformed QIDO-RS parameters are the client's mistake, not an archive outage (issue 12
item 12), through the gateway to the real Orthanc.

Before: Orthanc answered ``limit=abc``, ``offset=abc``, ``limit=1e20`` and
``fuzzymatching=maybe`` with 400, the gateway called that an outage (503 + Retry-After);
``limit=-5`` made Orthanc fail (500, gateway 502); system tokens got Orthanc's raw error
JSON.  Now each is 400 naming the parameter (PS3.18 8.3.4), for patient and system tokens
alike, and no archive error body reaches a client.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sandbox_ehr import SandboxEhr

from tests.integration.gateway.conftest import VIEWER_APP
from tests.integration.gateway.gateway_helpers import (
    PatientData,
    World,
    ehr_patient_token,
    ehr_system_token,
)
from tests.support.servers import RunningGateway

#: listed in gateway.system_clients by the conftest ``bridge``
SYSTEM_CLIENT = ("pacs-admin-tool", "pacs-admin-secret-" + "p" * 24)
#: words of Orthanc's error bodies ({"HttpError": ..., "OrthancError": ..., "Details": ...})
ARCHIVE_WORDS = ("OrthancError", "OrthancStatus", "HttpError", "plugin engine",
                 "Bad file format", "WADO-RS")

BAD = [
    ("limit", [("limit", "abc")]),
    ("offset", [("offset", "abc")]),
    ("limit", [("limit", "1e20")]),
    ("limit", [("limit", "-5")]),
    ("limit", [("limit", "")]),
    ("limit", [("limit", "5"), ("limit", "6")]),
    ("fuzzymatching", [("fuzzymatching", "maybe")]),
    ("fuzzymatching", [("fuzzymatching", "TRUE")]),
    ("emptyvaluematching", [("emptyvaluematching", "1")]),
    ("includefield", [("includefield", "NoSuchKeyword")]),
    ("includefield", [("includefield", "00100010,")]),
    ("NoSuchKeyword", [("NoSuchKeyword", "x")]),
]


def _rich(world: World) -> PatientData:
    """The world's patient with more studies: six studies over two patients give one of them
    at least three, whichever the generator's draw (``world.a`` alone had one in a CI run,
    and a limit cannot be seen to limit one study)."""
    return max((world.a, world.b), key=lambda p: len(p.studies))


@pytest.fixture(scope="module")
def tokens(ehr: SandboxEhr, world: World) -> dict[str, str]:
    ehr.register_client(SYSTEM_CLIENT[0], secret=SYSTEM_CLIENT[1])
    return {
        "patient": ehr_patient_token(ehr, client_id=VIEWER_APP[0], secret=VIEWER_APP[1],
                                     redirect_uri=VIEWER_APP[2], patient=_rich(world).fhir_id,
                                     scope="patient/ImagingStudy.rs"),
        "system": ehr_system_token(ehr, client_id=SYSTEM_CLIENT[0], secret=SYSTEM_CLIENT[1],
                                   scope="system/ImagingStudy.rs"),
    }


def _get(bridge: RunningGateway, path: str, token: str, params: list[tuple[str, str]],
         accept: str = "application/dicom+json") -> httpx.Response:
    return httpx.get(f"{bridge.dicomweb}/{path}", params=params, timeout=60,
                     headers={"Authorization": f"Bearer {token}", "Accept": accept})


def _no_archive_body(resp: httpx.Response) -> bool:
    return not any(word in resp.text for word in ARCHIVE_WORDS)


@pytest.mark.parametrize("kind", ["patient", "system"])
@pytest.mark.parametrize("path", ["studies", "series", "instances"])
def test_malformed_qido_parameters_are_400_naming_the_parameter_not_an_outage(
    bridge: RunningGateway, world: World, tokens: dict[str, str], kind: str, path: str
) -> None:
    failures: list[Any] = []
    for parameter, params in BAD:
        resp = _get(bridge, path, tokens[kind], params)
        detail = resp.json().get("detail", "") if resp.headers.get(
            "content-type", "").startswith("application/json") else ""
        if resp.status_code != 400 or parameter not in detail \
                or "retry-after" in resp.headers or not _no_archive_body(resp):
            failures.append((params, resp.status_code, dict(resp.headers), resp.text[:300]))
    assert not failures, failures


@pytest.mark.parametrize("kind", ["patient", "system"])
def test_well_formed_control_parameters_still_reach_the_archive(
    bridge: RunningGateway, world: World, tokens: dict[str, str], kind: str
) -> None:
    token = tokens[kind]
    rich = _rich(world)
    own = [("PatientID", rich.value), ("IssuerOfPatientID", rich.issuer)]
    everything = _get(bridge, "studies", token, own)
    assert everything.status_code == 200, everything.text
    assert len(everything.json()) == len(rich.studies) >= 3
    one = _get(bridge, "studies", token, [*own, ("limit", "1"), ("offset", "0"),
                                           ("fuzzymatching", "false"),
                                           ("includefield", "StudyDescription,00080060")])
    assert one.status_code == 200, one.text
    assert len(one.json()) == 1
    # a limit above what any archive serves is the archive's maximum (PS3.18 8.3.4.4),
    # an offset that large skips everything: Orthanc itself fails on both above 2^31
    huge = _get(bridge, "studies", token, [*own, ("limit", "99999999999999999999")])
    assert huge.status_code == 200, huge.text
    assert len(huge.json()) == len(rich.studies)
    past = _get(bridge, "studies", token, [*own, ("offset", "99999999999999999999")])
    assert past.status_code in (200, 204), past.text
    assert past.status_code == 204 or past.json() == []


def test_a_system_token_gets_the_gateways_words_not_the_archives_error_body(
    bridge: RunningGateway, world: World, tokens: dict[str, str]
) -> None:
    unknown = "1.2.826.0.1.3680043.8.498.99999999999999999999"
    resp = _get(bridge, f"studies/{unknown}/metadata", tokens["system"], [])
    assert resp.status_code == 404, resp.text
    assert _no_archive_body(resp), resp.text
    assert "retry-after" not in resp.headers
    series = _get(bridge, f"studies/{unknown}/series", tokens["system"], [])
    assert series.status_code in (200, 204, 404), series.text
    assert _no_archive_body(series), series.text

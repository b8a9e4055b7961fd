"""Every configured archive behind the gateway (issue 8), without servers: settings that
refuse unroutable archive names, the Endpoint each archive gets, the IHE IID Endpoint, and
the ``/dicom-web/{archive}`` routes against two small DICOMweb archives on a loopback port
with a viewer token naming the patient by identifier."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.config import Settings, load_settings
from bridge.errors import ConfigError
from bridge.gateway.routes import dicomweb_router
from bridge.gateway.service import Gateway
from bridge.sync.endpoints import REQUIRES_ACCESS_TOKEN
from tests.support.servers import ServedApp
from tests.support.wiring import archive_base, gateway_endpoint_hooks, gateway_of, iid_endpoint

SECRET = "s" * 40
ROOT = "https://bridge.example.org/dicom-web"
MAIN, CARDIO = "http://main.test/dicom-web", "http://cardio.test/dicom-web"
GATEWAY = {"enabled": True, "public_url": ROOT, "viewer_token_secret": SECRET,
           "validation": "jwks", "jwks_uri": "https://ehr/jwks", "issuer": "https://ehr",
           "audience": "https://ehr/fhir"}


def _settings(*, archive: str | None = None, main: str = MAIN, cardio: str = CARDIO,
              **gateway: Any) -> Settings:
    return load_settings(
        archives=[{"name": "main", "base_url": main}, {"name": "cardio", "base_url": cardio}],
        api={"public_url": "https://bridge.example.org"},
        gateway={**GATEWAY, "archive": archive, **gateway})


# --- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["studies", "series", "instances", "Studies", "..", "."])
def test_archive_names_that_collide_with_gateway_routes_are_refused_naming_the_field(
    name: str
) -> None:
    with pytest.raises(ConfigError, match=r"archives\.1\.name: .*reserved"):
        load_settings(archives=[{"name": "main", "base_url": MAIN},
                                {"name": name, "base_url": CARDIO}])


@pytest.mark.parametrize("name", ["a/b", "a b", "café", "x?y", ""])
def test_archive_names_that_are_not_url_safe_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match=r"archives\.0\.name"):
        load_settings(archives=[{"name": name, "base_url": MAIN}])


def test_gateway_archive_must_name_a_configured_archive() -> None:
    with pytest.raises(ConfigError, match=r"gateway\.archive 'nope' is not a configured"):
        _settings(archive="nope")
    assert _settings(archive="cardio").gateway.archive == "cardio"


# --- Endpoints -----------------------------------------------------------------------------


@dataclass
class _Archive:
    name: str
    base_url: str


def test_each_archive_endpoint_points_at_its_gateway_base_with_requires_access_token() -> None:
    hooks = gateway_endpoint_hooks(_settings())
    assert hooks["endpoint_for"](_Archive("main", MAIN)).address == ROOT  # default: the root
    assert hooks["endpoint_for"](_Archive("cardio", CARDIO)).address == f"{ROOT}/cardio"
    for name in ("main", "cardio"):
        resource = hooks["endpoint_resource"](name, {"resourceType": "Endpoint"})
        assert resource["extension"] == [{"url": REQUIRES_ACCESS_TOKEN, "valueBoolean": True}]
    # gateway.archive moves the root to another archive; the first gets its own path
    other = _settings(archive="cardio")
    assert archive_base(other, "cardio") == ROOT
    assert archive_base(other, "main") == f"{ROOT}/main"


def test_iid_endpoint_is_published_only_with_iid_enabled() -> None:
    hooks = gateway_endpoint_hooks(_settings())
    [iid] = hooks["extra_endpoints"]
    assert iid == iid_endpoint(_settings())
    assert iid["address"] == "https://bridge.example.org/IHEInvokeImageDisplay"
    assert iid["identifier"] == [{"system": "urn:ietf:rfc:3986", "value": iid["address"]}]
    assert iid["connectionType"] == {
        "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
        "code": "ihe-iid", "display": "IHE IID"}
    assert iid["status"] == "active" and iid["payloadType"]
    assert "extra_endpoints" not in gateway_endpoint_hooks(_settings(iid_enabled=False))
    assert iid_endpoint(_settings(iid_enabled=False)) is None


# --- routing: two archives over HTTP ------------------------------------------------------


@dataclass
class FakeArchives:
    """Two DICOMweb archives under one loopback server (``/{name}/dicom-web``): study UID ->
    PatientID, metadata naming the archive's own base URL."""

    studies: dict[str, dict[str, str]]
    requests: list[str] = field(default_factory=list)

    def app(self) -> Starlette:
        async def dicomweb(request: Request) -> Response:
            name, path = request.path_params["name"], request.path_params["path"]
            held = self.studies[name]
            self.requests.append(f"{name} {path}")
            base = f"{request.base_url}{name}/dicom-web"  # base_url ends with "/"
            if path == "studies":
                uids = request.query_params.getlist("StudyInstanceUID") or list(held)
                pid = request.query_params.get("PatientID")
                rows = [_row(u, held[u]) for u in uids if u in held
                        and (pid is None or held[u] == pid)]
                return Response(json.dumps(rows), media_type="application/dicom+json")
            parts = path.split("/")
            if len(parts) < 2 or parts[1] not in held:
                return Response(status_code=404)
            if path.endswith("/metadata"):
                bulk = f"{base}/{path.removesuffix('/metadata')}/bulk/1"
                meta = [{"7FE00010": {"vr": "OB", "BulkDataURI": bulk}}]
                return Response(json.dumps(meta), media_type="application/dicom+json")
            return Response(f"--b\r\n\r\n{name}\r\n--b--",
                            media_type="multipart/related; boundary=b")

        return Starlette(routes=[Route("/{name}/dicom-web/{path:path}", dicomweb)])


def _row(uid: str, patient_id: str) -> dict[str, Any]:
    return {"0020000D": {"vr": "UI", "Value": [uid]},
            "00100020": {"vr": "LO", "Value": [patient_id]}}


@dataclass
class Rig:
    client: httpx.AsyncClient
    gateway: Gateway
    archives: FakeArchives
    patient: str


@pytest.fixture(scope="module")
def served_archives() -> Iterator[tuple[FakeArchives, str]]:
    archives = FakeArchives(studies={"main": {"1.1.1": "PA", "1.1.2": "PB"},
                                     "cardio": {"2.2.1": "PA", "2.2.2": "PB"}})
    served = ServedApp(archives.app()).start()
    yield archives, served.url
    served.stop()


@pytest.fixture
async def rig(served_archives: tuple[FakeArchives, str]) -> AsyncIterator[Rig]:
    archives, url = served_archives
    gateway = gateway_of(_settings(main=f"{url}/main/dicom-web", cardio=f"{url}/cardio/dicom-web"))
    app = FastAPI()
    app.state.gateway = gateway
    app.include_router(dicomweb_router(gateway))
    key = gateway.mapper.key_of({"00100020": {"vr": "LO", "Value": ["PA"]}})
    assert key is not None
    patient = f"{key[0]}|{key[1]}"  # a viewer token may name the patient by identifier
    token = gateway.viewer.mint(patient=patient)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://gw",
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        yield Rig(client, gateway, archives, patient)
    await gateway.aclose()


async def test_each_archive_is_served_by_name_and_checked_in_its_own_archive(rig: Rig) -> None:
    c = rig.client
    own = await c.get("/dicom-web/cardio/studies/2.2.1")
    assert own.status_code == 200 and b"cardio" in own.content
    assert (await c.get("/dicom-web/cardio/studies/2.2.2")).status_code == 403  # B's
    # the root is the default archive: the cardio study is not there, so not provably A's
    assert (await c.get("/dicom-web/studies/2.2.1")).status_code == 403
    root = await c.get("/dicom-web/studies/1.1.1")
    assert root.status_code == 200 and b"main" in root.content
    by_name = await c.get("/dicom-web/main/studies/1.1.1")
    assert by_name.status_code == 200 and b"main" in by_name.content
    assert (await c.get("/dicom-web/main/studies/1.1.2")).status_code == 403
    # the compartment of cardio asked cardio, never main, about 2.2.x
    assert not [r for r in rig.archives.requests if r.startswith("main") and "2.2." in r]


async def test_qido_per_archive_and_urls_rewritten_to_that_archives_base(rig: Rig) -> None:
    c = rig.client
    rows = (await c.get("/dicom-web/cardio/studies")).json()
    assert [r["0020000D"]["Value"][0] for r in rows] == ["2.2.1"]
    rows = (await c.get("/dicom-web/studies")).json()
    assert [r["0020000D"]["Value"][0] for r in rows] == ["1.1.1"]
    meta = (await c.get("/dicom-web/cardio/studies/2.2.1/metadata")).json()
    assert meta[0]["7FE00010"]["BulkDataURI"] == f"{ROOT}/cardio/studies/2.2.1/bulk/1"
    meta = (await c.get("/dicom-web/studies/1.1.1/metadata")).json()
    assert meta[0]["7FE00010"]["BulkDataURI"] == f"{ROOT}/studies/1.1.1/bulk/1"


async def test_unknown_archive_is_404_and_one_token_audience_serves_all(rig: Rig) -> None:
    assert (await rig.client.get("/dicom-web/nope/studies")).status_code == 404
    assert rig.gateway.viewer.audience == ROOT
    no_token = await rig.client.get("/dicom-web/cardio/studies",
                                    headers={"Authorization": ""})
    assert no_token.status_code == 401


async def test_archive_for_finds_the_patients_study_and_its_viewer_path(rig: Rig) -> None:
    cardio = await rig.gateway.archive_for(rig.patient, ["2.2.1"])
    assert (cardio.name, cardio.data_source_path) == ("cardio", "/cardio")
    main = await rig.gateway.archive_for(rig.patient, ["1.1.1"])
    assert (main.name, main.data_source_path) == ("main", "")
    # another patient's study, or an unknown one: the default (the viewer is refused there)
    assert (await rig.gateway.archive_for(rig.patient, ["2.2.2"])).name == "main"
    assert (await rig.gateway.archive_for(rig.patient, ["9.9.9"])).name == "main"

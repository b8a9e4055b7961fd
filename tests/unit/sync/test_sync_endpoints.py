"""The Endpoints an ImagingStudy references when the gateway is on (issue 8): the archive's
gateway Endpoint and the IHE IID Endpoint, each created once; the content hash covers the
list, so an unchanged study is not written again and a changed configuration is."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bridge.config import Settings, load_settings
from bridge.sync.assemble import BRIDGE_TAG
from bridge.sync.endpoints import REQUIRES_ACCESS_TOKEN
from tests.support.wiring import gateway_endpoint_hooks
from tests.unit.sync.fakes import ARCHIVE, FakeArchive, FakeFhir, Rig, studies

ROOT = "https://bridge.example.org"


def _settings(*, iid: bool) -> Settings:
    return load_settings(
        archives=[{"name": ARCHIVE, "base_url": "http://archive.test/dicom-web"}],
        api={"public_url": ROOT},
        gateway={"enabled": True, "viewer_token_secret": "s" * 40, "validation": "jwks",
                 "jwks_uri": "https://ehr/jwks", "issuer": "https://ehr",
                 "audience": "https://ehr/fhir", "iid_enabled": iid})


def _endpoint(fhir: FakeFhir, code: str) -> dict[str, Any]:
    [found] = [e for e in fhir.endpoints.values() if e["connectionType"]["code"] == code]
    return found


async def test_iid_endpoint_is_created_once_referenced_and_unchanged_studies_are_skipped(
    rig_factory: Callable[..., Rig], archive: FakeArchive, fhir: FakeFhir
) -> None:
    rig = rig_factory(runner_options=gateway_endpoint_hooks(_settings(iid=True)))
    batch = studies(3)
    for s in batch:
        archive.add(s)
        fhir.patients.add(f"{s.truth.patient_system}|{s.truth.patient_id}")
    rig.mark(*(s.study_uid for s in batch))
    assert (await rig.runner.drain()).synced == 3

    wado, iid = _endpoint(fhir, "dicom-wado-rs"), _endpoint(fhir, "ihe-iid")
    assert wado["address"] == f"{ROOT}/dicom-web"
    assert {"url": REQUIRES_ACCESS_TOKEN, "valueBoolean": True} in wado["extension"]
    assert iid["address"] == f"{ROOT}/IHEInvokeImageDisplay"
    assert iid["status"] == "active" and iid["payloadType"] == [{"text": "DICOM IID"}]
    assert iid["connectionType"]["system"] == (
        "http://terminology.hl7.org/CodeSystem/endpoint-connection-type")
    assert BRIDGE_TAG in iid["meta"]["tag"] and BRIDGE_TAG in wado["meta"]["tag"]
    assert fhir.endpoint_posts == 2  # one conditional create each, for the whole batch
    for s in batch:
        refs = [e["reference"] for e in fhir.stored[s.study_uid]["endpoint"]]
        assert refs == [f"Endpoint/{wado['id']}", f"Endpoint/{iid['id']}"]

    rig.mark(*(s.study_uid for s in batch))  # a second run: nothing changed, nothing written
    stats = await rig.runner.drain()
    assert (stats.synced, stats.unchanged) == (0, 3)
    assert len(fhir.writes) == 3 and fhir.endpoint_posts == 2


async def test_turning_iid_off_and_on_rewrites_the_study_with_the_new_endpoint_list(
    rig_factory: Callable[..., Rig], archive: FakeArchive, fhir: FakeFhir
) -> None:
    [s] = studies(1)
    archive.add(s)
    fhir.patients.add(f"{s.truth.patient_system}|{s.truth.patient_id}")

    def run_with(iid: bool) -> Rig:  # a restart with another configuration
        return rig_factory(runner_options=gateway_endpoint_hooks(_settings(iid=iid)))

    def refs() -> list[str]:
        return [e["reference"] for e in fhir.stored[s.study_uid]["endpoint"]]

    first = run_with(False)
    first.mark(s.study_uid)
    assert (await first.runner.drain()).synced == 1
    assert len(refs()) == 1

    second = run_with(True)
    second.mark(s.study_uid)
    assert (await second.runner.drain()).synced == 1
    assert refs()[0] == "Endpoint/ep-1" and len(refs()) == 2  # the same WADO-RS Endpoint

    third = run_with(True)  # after a restart the conditional create finds both again
    third.mark(s.study_uid)
    assert (await third.runner.drain()).unchanged == 1

    fourth = run_with(False)
    fourth.mark(s.study_uid)
    assert (await fourth.runner.drain()).synced == 1
    assert refs() == ["Endpoint/ep-1"]
    assert fhir.stored[s.study_uid]["meta"]["versionId"] == "3"

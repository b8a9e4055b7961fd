"""Reconciliation with the gateway on (the demo's configuration), against a dedicated Orthanc
and the real HAPI (issue 20 item 2).

With the gateway on, our Endpoints point at the gateway, not at the archive; reconcile used
to match Endpoint addresses against the archive's base URL, found "0 ImagingStudy of
ours" and reported no drift with a duplicate present.  ``--fix`` of an ImagingStudy deleted
in the EHR then skipped the write (the content hash was unchanged) and never recreated it.
"""

from __future__ import annotations

import asyncio
import copy
import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bridge.config import load_settings
from tests.integration.realtime.realtime_helpers import (
    drain,
    imaging_study,
    make_studies,
    realtime_settings,
    reconcile_cli,
    series_instances,
    store_in_orthanc,
)


def _with_gateway(config: Path) -> Any:
    data = json.loads(config.read_text())
    data["gateway"] = {
        "enabled": True, "public_url": "http://gateway.test/dicom-web",
        "introspection_url": "http://127.0.0.1:9/introspect", "client_id": "gateway",
        "client_secret": secrets.token_urlsafe(24),
        "viewer_token_secret": secrets.token_urlsafe(40),
    }
    config.write_text(json.dumps(data))
    return load_settings(config)


def test_reconcile_with_the_gateway_on_finds_a_duplicate_and_fix_recreates_a_deleted_study(
    orthanc_factory: Callable[..., Any], hapi: Any, ns: Any, tmp_path: Path
) -> None:
    server = orthanc_factory()
    dup, deleted, fine = make_studies(hapi, ns, count=3)
    for s in (dup, deleted, fine):
        store_in_orthanc(server, series_instances(s, series=1, per_series=1))
    realtime_settings(server, hapi, tmp_path, ns)
    config = tmp_path / "bridge.yaml"
    settings = _with_gateway(config)
    stats = asyncio.run(drain(settings, [s.study_uid for s in (dup, deleted, fine)]))
    assert stats.synced == 3
    ours = imaging_study(hapi, dup.study_uid)
    assert ours is not None
    assert "gateway.test" in json.dumps(ours) or ours.get("endpoint")  # premise

    code, reports = reconcile_cli(config)
    assert code == 0 and reports[0]["drift"] == [], reports
    assert reports[0]["fhir_studies"] == 3  # was 0: the Endpoints point at the gateway

    with httpx.Client(timeout=30) as client:
        copy_ = copy.deepcopy(ours)
        copy_.pop("id")
        copy_["meta"] = {"tag": ours["meta"]["tag"]}
        assert client.post(f"{hapi.fhir_url}/ImagingStudy", json=copy_).status_code == 201
        victim = imaging_study(hapi, deleted.study_uid)
        assert victim is not None
        assert client.delete(f"{hapi.fhir_url}/ImagingStudy/{victim['id']}").status_code in (
            200, 204)

    code, reports = reconcile_cli(config)
    assert code == 3
    kinds = {(x["kind"], x["study_uid"]) for x in reports[0]["drift"]}
    assert kinds == {("duplicate", dup.study_uid), ("missing-in-fhir", deleted.study_uid)}, kinds

    code, reports = reconcile_cli(config, "--fix")
    asyncio.run(drain(settings))
    recreated = imaging_study(hapi, deleted.study_uid)
    assert recreated is not None and recreated["id"] != victim["id"]  # written again
    code, reports = reconcile_cli(config)
    kinds = {(x["kind"], x["study_uid"]) for x in reports[0]["drift"]}
    assert kinds == {("duplicate", dup.study_uid)}, kinds  # a human chooses which to keep

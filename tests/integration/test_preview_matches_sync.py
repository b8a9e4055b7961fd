"""``imaging-bridge preview`` shows what the sync writes (issue 20 item 4).

A real study is synced from Orthanc to HAPI with the gateway on (its Endpoint with
``requires-access-token`` and the ``ihe-iid`` Endpoint), then previewed: the ImagingStudy,
the Endpoints and the content hash must be the ones HAPI holds and the store recorded, but
for what the server assigns (id, meta).  Preview used to show an Endpoint at the raw
archive and the mapping's own hash.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path
from typing import Any

import httpx
import typer
from typer.testing import CliRunner

from bridge.cli_mapping import register
from bridge.config import Settings, load_settings
from bridge.sync.endpoints import REQUIRES_ACCESS_TOKEN
from tests.integration.sync_helpers import bridge_settings, load_and_seed, study_by_uid
from tests.support.wiring import sync_context

app = typer.Typer()
register(app)


def _with_gateway(config: Path, token: str) -> Settings:
    data = json.loads(config.read_text())
    # hosts unique to this test: the Endpoints it creates are its own on the shared HAPI
    data["api"] = {"public_url": f"http://bridge-{token}.test"}
    data["gateway"] = {
        "enabled": True, "public_url": f"http://gateway-{token}.test/dicom-web",
        "introspection_url": "http://127.0.0.1:9/introspect", "client_id": "gateway",
        "client_secret": secrets.token_urlsafe(24),
        "viewer_token_secret": secrets.token_urlsafe(40),
    }
    config.write_text(json.dumps(data))
    return load_settings(config)


async def _sync(settings: Settings, uid: str) -> str | None:
    """Sync one study; return the content hash the store recorded."""
    archive = settings.archives[0].name
    async with sync_context(settings) as ctx:
        ctx.store.mark_many_due(archive, [(uid, None)], reason="manual")
        stats = await ctx.runner.drain()
        assert (stats.synced, stats.failed, stats.retried) == (1, 0, 0), stats
        row = ctx.store.get_study(archive, uid)
        assert row is not None
        return row.content_hash


def _server_free(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource without what the server assigns (R4 Resource.id, Resource.meta)."""
    return {k: v for k, v in resource.items() if k not in ("id", "meta")}


def test_preview_shows_the_resource_endpoints_and_hash_the_sync_wrote(
    orthanc: Any, hapi: Any, ns: Any, tmp_path: Path
) -> None:
    [study] = load_and_seed(orthanc, hapi, ns, count=1).studies
    uid = study.truth.study_uid
    bridge_settings(orthanc, hapi, tmp_path)
    config = tmp_path / "bridge.yaml"
    settings = _with_gateway(config, ns.token)

    def preview() -> dict[str, Any]:
        result = CliRunner().invoke(app, ["preview", uid, "--config", str(config), "--json"])
        assert result.exit_code == 0, result.output
        document: dict[str, Any] = json.loads(result.stdout)
        return document

    # before the sync: the Endpoints do not exist yet, and the preview says so
    before = preview()
    assert before["references"]["lookedUp"] is True
    pending = before["references"]["pending"]
    assert len(pending) == 2, pending  # the gateway's and the ihe-iid Endpoint
    assert all(p.startswith("no Endpoint with identifier urn:ietf:rfc:3986|http://")
               and p.endswith("the sync creates it first") for p in pending), pending
    assert before["imagingStudy"]["subject"]["reference"].startswith("Patient/")

    recorded = asyncio.run(_sync(settings, uid))
    [written] = study_by_uid(hapi, uid)

    after = preview()
    assert after["references"] == {"lookedUp": True, "pending": []}
    assert after["contentHash"] == recorded != before["contentHash"]
    assert _server_free(after["imagingStudy"]) == _server_free(written)
    assert after["imagingStudy"]["meta"]["tag"] == written["meta"]["tag"]
    # the Endpoints: the gateway's (with requires-access-token) first, then ihe-iid, each
    # as HAPI holds the one the ImagingStudy references
    with httpx.Client(base_url=hapi.fhir_url, timeout=30) as client:
        held = [client.get(ref["reference"]).json() for ref in written["endpoint"]]
    assert [_server_free(e) for e in after["endpoints"]] == [_server_free(e) for e in held]
    gateway, iid = after["endpoints"]
    assert gateway["address"] == f"http://gateway-{ns.token}.test/dicom-web"
    assert {"url": REQUIRES_ACCESS_TOKEN, "valueBoolean": True} in gateway["extension"]
    assert iid["connectionType"]["code"] == "ihe-iid"

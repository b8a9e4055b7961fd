"""``imaging-bridge preview --offline`` of local files with a configured archive behind the
gateway: the Endpoints and the ImagingStudy.endpoint are the sync's, references are by
identifier, and nothing is looked up (issue 20 item 4)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
import typer
from mapping_helpers import DEFAULT_YAML
from pydicom.data import get_testdata_file
from typer.testing import CliRunner

from bridge.cli_mapping import register
from bridge.mapping import content_hash
from bridge.sync.endpoints import REQUIRES_ACCESS_TOKEN

app = typer.Typer()
register(app)
runner = CliRunner()


@pytest.fixture
def gateway_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "bridge.yaml"
    config.write_text(json.dumps({
        "archives": [{"name": "pacs", "base_url": "http://pacs.invalid/dicom-web"}],
        # nothing listens here: --offline must not try
        "fhir": {"base_url": "http://127.0.0.1:9/fhir"},
        "api": {"public_url": "https://bridge.example.org"},
        "mapping": {"files": [str(DEFAULT_YAML)]},
        "gateway": {
            "enabled": True, "introspection_url": "http://127.0.0.1:9/introspect",
            "client_id": "gateway", "client_secret": secrets.token_urlsafe(24),
            "viewer_token_secret": secrets.token_urlsafe(40),
        },
    }))
    monkeypatch.setenv("BRIDGE_CONFIG_FILE", str(config))
    return config


def test_offline_preview_of_files_shows_the_gateway_endpoints_by_identifier(
    gateway_config: Path,
) -> None:
    path = get_testdata_file("CT_small.dcm")
    assert path is not None
    result = runner.invoke(app, ["preview", path, "--json", "--offline"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["references"] == {"lookedUp": False, "pending": []}
    gateway, iid = document["endpoints"]
    assert gateway["address"] == "https://bridge.example.org/dicom-web"
    assert {"url": REQUIRES_ACCESS_TOKEN, "valueBoolean": True} in gateway["extension"]
    assert iid["address"] == "https://bridge.example.org/IHEInvokeImageDisplay"
    study = document["imagingStudy"]
    assert study["endpoint"] == [
        {"type": "Endpoint", "identifier": e["identifier"][0]} for e in (gateway, iid)]
    unhashed = {k: v for k, v in study.items() if k != "meta"}
    assert document["contentHash"] == content_hash(unhashed)

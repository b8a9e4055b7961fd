"""A backfill or sync whose FHIR credentials are refused says why and exits 2 (issue 12 item
14), against the sandbox EHR (SMART Backend Services, a key it does not know) in front of
the real HAPI, and a dedicated Orthanc.

Before, both printed "synced 0, ..., retry later N" and exited 0: a cron job saw success
while nothing could ever be written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox_ehr import SandboxEhr
from typer.testing import CliRunner

from bridge.auth.health import AUTH_HEALTH
from bridge.auth.keys import generate_signing_key, write_key_files
from bridge.cli import app as cli_app
from bridge.state import open_store
from tests.integration.sync_helpers import REPO_ROOT, load_and_seed
from tests.support.settings import archive_entry


def _config(tmp_path: Path, archive: dict[str, Any], ehr: SandboxEhr, client_id: str) -> Path:
    """A config whose FHIR auth is SMART Backend Services with a key the EHR never saw."""
    key = write_key_files(generate_signing_key("ES384"), tmp_path / "keys")
    config = {
        "archives": [archive],
        "fhir": {"base_url": ehr.fhir_url, "batch_size": 2,
                 "auth": {"kind": "smart_backend", "client_id": client_id,
                          "private_key_file": str(key.private_key)}},
        "state": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
        "sync": {"backoff_base": 0.2, "backoff_max": 1.0, "claim_batch": 2,
                 "backfill_window_days": 3650},
        "mapping": {"files": [str(REPO_ROOT / "mappings" / "default.yaml")]},
    }
    path = tmp_path / "bridge.yaml"
    path.write_text(json.dumps(config))
    return path


def _assert_refused(result: Any) -> None:
    assert result.exit_code == 2, result.output
    assert "invalid_client" in result.stderr, result.stderr  # what the EHR answered
    assert "synced 0" not in result.stdout  # no success-looking summary


def test_backfill_with_refused_fhir_credentials_says_why_and_exits_2(
    orthanc_factory: Callable[..., Any], hapi: Any, ns: Any, sandbox_ehr: SandboxEhr,
    tmp_path: Path,
) -> None:
    AUTH_HEALTH.clear()
    archive = orthanc_factory()
    loaded = load_and_seed(archive, hapi, ns, count=2)
    config = _config(tmp_path, archive_entry(archive, ns.name("arc")), sandbox_ehr,
                     ns.name("unregistered"))
    start, end = loaded.dates
    result = CliRunner().invoke(cli_app, ["backfill", "--config", str(config), "--from",
                                          start.isoformat(), "--to", end.isoformat(),
                                          "--settle", "5"])
    _assert_refused(result)


def test_sync_once_with_refused_fhir_credentials_says_why_and_exits_2(
    orthanc_factory: Callable[..., Any], hapi: Any, ns: Any, sandbox_ehr: SandboxEhr,
    tmp_path: Path,
) -> None:
    AUTH_HEALTH.clear()
    archive = orthanc_factory()
    loaded = load_and_seed(archive, hapi, ns, count=2)
    name = ns.name("arc")
    config = _config(tmp_path, archive_entry(archive, name), sandbox_ehr,
                     ns.name("unregistered"))
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:  # work waiting in the queue, as a poll or a notification leaves it
        store.mark_many_due(name, [(t.study_uid, None) for t in loaded.truths], reason="manual")
    finally:
        store.close()
    result = CliRunner().invoke(cli_app, ["sync", "--once", "--config", str(config)])
    _assert_refused(result)

"""``imaging-bridge serve`` with sharing enabled (issue 14): the sync's follow-up wakes the
sharing-publisher room, which publishes the study's manifest to the registry with no
command run: the product path as deployed (own Orthanc, the shared HAPI as EHR and
registry)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.serve_helpers import ServeProcess, serve_config
from tests.integration.sharing.sharing_sites import (
    GATEWAY_A,
    document_ids,
    load_study,
    register_patient,
    write_policy,
)
from tests.support.waits import wait_until

pytestmark = pytest.mark.integration


def test_serve_publishes_a_synced_study_through_its_sharing_room(
        orthanc_factory: Any, hapi: Any, ns: Any, tmp_path: Path) -> None:
    orthanc = orthanc_factory()
    study = load_study(orthanc, hapi, ns)
    identifier = register_patient(hapi, ns, study)
    config = serve_config(
        orthanc, hapi, tmp_path, ns,
        gateway={"enabled": True, "public_url": GATEWAY_A,
                 "viewer_token_secret": "v" * 40,
                 "introspection_url": "https://site-a.example.org/introspect",
                 "client_id": "gateway-a", "client_secret": "s" * 32},
        sharing={"enabled": True, "registry": {"base_url": hapi.fhir_url},
                 "policy_file": str(write_policy(tmp_path / "sharing.yaml", ns)),
                 "worker": {"poll_interval": 60.0}})  # only the sync's wake-up is in time
    config["sync"]["poll_window_days"] = 20000  # the first poll finds the study
    with ServeProcess(config, tmp_path) as serve:
        [document] = wait_until(lambda: document_ids(hapi, identifier, "current") or None,
                                timeout=45, what=f"the manifest registered ({serve.log})")
    assert document

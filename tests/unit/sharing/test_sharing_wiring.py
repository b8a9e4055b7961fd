"""Sharing in the composition root and the CLI: what start-up refuses, the publication
worker in serve's rooms, and the ``imaging-bridge sharing`` commands on a state store."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from bridge import assembly
from bridge.cli import app
from bridge.config import Settings, load_settings
from bridge.errors import ConfigError
from bridge.sections.base import TaskPace
from bridge.sections.sharing import SharingSettings
from bridge.sharing.errors import SharingConfigError
from bridge.sharing.service import PublicationService, publication_worker
from bridge.state import open_store
from bridge.sync.signal import FollowUpSignals
from tests.unit.cli.cli_helpers import clear_bridge_env

REGISTRY = "http://127.0.0.1:9/registry/fhir"


def config(tmp_path: Path, *, gateway: bool = True, **sharing: Any) -> Path:
    data: dict[str, Any] = {
        "archives": [{"name": "main", "base_url": "http://127.0.0.1:9/main/dicom-web"},
                     {"name": "cardio", "base_url": "http://127.0.0.1:9/cardio/dicom-web"}],
        "fhir": {"base_url": "http://127.0.0.1:9/fhir"},
        "state": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
        "api": {"public_url": "https://site-a.example.org"},
        "sharing": {"enabled": True, "registry": {"base_url": REGISTRY}, **sharing},
    }
    if gateway:
        data["gateway"] = {
            "enabled": True, "viewer_token_secret": "viewer-" + "o" * 40,
            "introspection_url": "http://127.0.0.1:9/introspect", "client_id": "gateway",
            "client_secret": "gateway-secret-" + "o" * 20}
    path = tmp_path / "bridge.yaml"
    path.write_text(json.dumps(data))
    return path


def settings_of(path: Path) -> Settings:
    return load_settings(path)


class FakeSync:
    """What the sharing builders read of the sync (clients are opened later, by run)."""

    def __init__(self) -> None:
        self.archives: dict[str, Any] = {}
        self.store = None
        self.follow_up_signal = FollowUpSignals()
        self.runner = SimpleNamespace(worker_id="w1")


def test_sharing_needs_the_gateway_for_the_manifests_retrieve_url(tmp_path: Path) -> None:
    settings = settings_of(config(tmp_path, gateway=False))
    with pytest.raises(ConfigError, match=r"sharing\.enabled needs gateway\.enabled"):
        assembly.sharing_publisher(settings, sync=FakeSync())  # type: ignore[arg-type]


def test_an_invalid_policy_is_refused_at_start_up_naming_the_field(tmp_path: Path) -> None:
    policy = tmp_path / "sharing.yaml"
    policy.write_text("source:\n  source_id: 1.2.3\n  retrieve_location_uid: 1.2.3\n")
    settings = settings_of(config(tmp_path, policy_file=str(policy)))
    with pytest.raises(SharingConfigError) as caught:
        assembly.room_services(settings, sync=FakeSync(),  # type: ignore[arg-type]
                               urls=assembly.public_urls(settings))
    assert caught.value.fields == ("source.source_id",)


def test_serve_runs_the_publication_worker_when_sharing_is_enabled(tmp_path: Path) -> None:
    settings = settings_of(config(tmp_path))
    urls = assembly.public_urls(settings)
    rooms = assembly.room_services(settings, sync=FakeSync(), urls=urls)  # type: ignore[arg-type]
    assert [r.name for r in rooms] == ["sharing-publisher"]
    settings.sharing.enabled = False
    assert assembly.room_services(settings, sync=FakeSync(),  # type: ignore[arg-type]
                                  urls=urls) == []
    # the Retrieve URL of each archive is the gateway's public root for it
    assert urls.archive("main") == "https://site-a.example.org/dicom-web"
    assert urls.archive("cardio") == "https://site-a.example.org/dicom-web/cardio"


def test_publish_queues_requested_publications_and_status_lists_failures(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clear_bridge_env(monkeypatch)
    path = config(tmp_path)
    open_store(f"sqlite:///{tmp_path / 'state.db'}").close()  # the store a sync made
    runner = CliRunner()
    done = runner.invoke(app, ["sharing", "publish", "1.2.3", "1.2.4", "--archive",
                               "cardio", "--config", str(path)])
    assert done.exit_code == 0, done.output
    assert "2 publications queued (archive cardio)" in done.output

    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        task = store.task("share.publish", "cardio/1.2.3")
        assert task is not None and task.payload == {"requested": True}
        [claimed, _] = store.claim_tasks("share.publish", limit=2, worker="t",
                                         lease_seconds=60)
        store.fail_task(claimed, worker="t", error="registry-rejected: ... at date: ...")
    finally:
        store.close()

    status = runner.invoke(app, ["sharing", "status", "--config", str(path)])
    assert status.exit_code == 0, status.output
    assert "due 0, leased 1, done 0, failed 1" in status.output
    assert f"failed {claimed.key} (attempts 1): registry-rejected" in status.output

    again = runner.invoke(app, ["sharing", "retry", "--config", str(path)])
    assert "1 failed publications due again" in again.output


def test_publish_refuses_an_unknown_archive_and_sharing_off(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clear_bridge_env(monkeypatch)
    runner = CliRunner()
    path = config(tmp_path)
    wrong = runner.invoke(app, ["sharing", "publish", "1.2.3", "--archive", "nope",
                                "--config", str(path)])
    assert wrong.exit_code == 2 and "no archive named 'nope'" in wrong.output
    off = config(tmp_path, enabled=False)
    refused = runner.invoke(app, ["sharing", "publish", "1.2.3", "--config", str(off)])
    assert refused.exit_code == 2 and "sharing is not enabled" in refused.output


def test_outside_wants_system_bar_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    clear_bridge_env(monkeypatch)
    result = CliRunner().invoke(app, ["sharing", "outside", "--patient", "MRN-1",
                                      "--config", str(config(tmp_path))])
    assert result.exit_code == 2 and "SYSTEM|VALUE" in result.output


async def test_the_publication_service_runs_the_queue_until_serve_stops(tmp_path: Path
                                                                        ) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    store.enqueue_task("share.publish", "main/1.2.3")
    stop = asyncio.Event()
    handled: list[str] = []
    opened: list[str] = []

    class Handler:
        async def handle(self, task: Any) -> dict[str, Any]:
            handled.append(task.key)
            stop.set()  # serve shuts down once the first publication ran
            return {"shared": False, "reason": "policy-all"}

    @contextlib.asynccontextmanager
    async def publisher() -> AsyncIterator[Any]:
        opened.append("open")
        yield Handler()
        opened.append("closed")

    service = PublicationService(
        publisher=publisher(),
        worker=lambda pub: publication_worker(
            store, pub, SharingSettings(worker=TaskPace(poll_interval=0.05)), worker_id="t"))
    try:
        await asyncio.wait_for(service.run(stop), timeout=30)
        task = store.task("share.publish", "main/1.2.3")
        assert handled == ["main/1.2.3"] and opened == ["open", "closed"]
        assert task is not None and task.status == "done"
        assert task.result == {"shared": False, "reason": "policy-all"}
    finally:
        store.close()

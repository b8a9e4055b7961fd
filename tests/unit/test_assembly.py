"""The composition root wires the parts through their constructors (issue 18)."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest

from bridge import assembly
from bridge.config import (
    GatewaySettings,
    OrthancChangesSettings,
    RealtimeSettings,
    Settings,
    SmartSettings,
    load_settings,
)
from bridge.errors import ConfigError


def _settings(tmp_path: Path, *, public_url: str | None = "https://bridge.example.org/"
              ) -> Settings:
    config = {
        "archives": [{"name": "main", "base_url": "http://127.0.0.1:9/main/dicom-web"},
                     {"name": "cardio", "base_url": "http://127.0.0.1:9/cardio/dicom-web"}],
        "fhir": {"base_url": "http://127.0.0.1:9/fhir"},
        "state": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
        "api": {"public_url": public_url} if public_url else {},
    }
    path = tmp_path / "bridge.yaml"
    path.write_text(json.dumps(config))
    settings = load_settings(path)
    settings.gateway = GatewaySettings(
        enabled=True, viewer_token_secret="viewer-" + "o" * 40,
        introspection_url="http://127.0.0.1:9/introspect", client_id="gateway",
        client_secret="gateway-secret-" + "o" * 20, audience="http://127.0.0.1:9/fhir")
    settings.smart = SmartSettings(enabled=True, client_id="app",
                                   iss_allowlist=["http://127.0.0.1:9/fhir"])
    return settings


async def test_the_gateway_is_built_with_the_smart_apps_session_lookups(tmp_path: Path
                                                                       ) -> None:
    parts = assembly.public_parts(_settings(tmp_path))
    assert parts.smart is not None and parts.gateway is not None
    try:
        # handed in at construction: nothing installs them later
        assert parts.gateway.session_resolver is not None
        assert parts.gateway.tokens.session_alive == parts.smart.session_alive
        assert parts.gateway.audit is parts.audit
    finally:
        await parts.gateway.aclose()


async def test_public_urls_are_computed_once_for_every_part(tmp_path: Path) -> None:
    parts = assembly.public_parts(_settings(tmp_path))
    assert parts.gateway is not None and parts.smart is not None
    try:
        assert parts.urls.api == "https://bridge.example.org"
        assert parts.gateway.public_base == parts.urls.gateway \
            == "https://bridge.example.org/dicom-web"
        assert parts.smart.redirect_uri == "https://bridge.example.org/smart/callback"
        assert [s.root for s in parts.sources] == ["https://bridge.example.org/dicom-web",
                                                  "https://bridge.example.org/dicom-web/cardio"]
    finally:
        await parts.gateway.aclose()


def test_endpoints_point_at_the_gateway_and_iid_next_to_the_api(tmp_path: Path) -> None:
    options = assembly.endpoint_options(_settings(tmp_path, public_url=None))
    assert options["extra_endpoints"][0]["address"] \
        == "http://127.0.0.1:8400/IHEInvokeImageDisplay"


def _realtime(settings: Settings, *, changes_archive: str) -> Settings:
    settings.realtime = RealtimeSettings(
        stow_archive="cardio",
        orthanc_changes=OrthancChangesSettings(archive=changes_archive,
                                               url="http://127.0.0.1:9/orthanc-rest"))
    return settings


async def test_the_root_builds_the_realtime_clients_and_the_changes_feed(tmp_path: Path
                                                                        ) -> None:
    settings = _realtime(_settings(tmp_path), changes_archive="main")
    async with assembly.services(settings, urls=assembly.public_urls(settings)) as running:
        rt = running.realtime
        # built before any use and handed in: looking them up creates nothing
        assert set(rt.orthanc) == {"main", "cardio"}
        assert rt.orthanc_api("main") is rt.orthanc["main"]
        assert rt.orthanc["main"].url == "http://127.0.0.1:9/orthanc-rest"
        assert rt.orthanc["cardio"].url == "http://127.0.0.1:9/cardio"
        assert rt.stow is not None and rt.stow_forwarder() is rt.stow
        assert rt.stow.archive is rt.sync.archives["cardio"]
        assert running.feed is not None and running.feed.api is rt.orthanc["main"]
        assert running.feed.rt is rt


async def test_a_changes_feed_on_an_unknown_archive_fails_at_start_up(tmp_path: Path
                                                                     ) -> None:
    settings = _realtime(_settings(tmp_path), changes_archive="nowhere")
    with pytest.raises(ConfigError, match="nowhere"):
        async with assembly.services(settings, urls=assembly.public_urls(settings)):
            pass


class _Room:
    """A room service that records its run and waits for ``stop`` (or fails at once)."""

    def __init__(self, name: str, *, fail: bool = False) -> None:
        self.name = name
        self.fail = fail
        # set on the app's loop thread, read by the test's: a thread-safe event
        self.started = threading.Event()
        self.stopped = False

    async def run(self, stop: asyncio.Event) -> None:
        self.started.set()
        if self.fail:
            raise RuntimeError("room broke")
        await stop.wait()
        self.stopped = True


def test_the_app_runs_each_rooms_service_until_shutdown_and_one_failure_ends_only_itself(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from fastapi.testclient import TestClient

    from bridge.api.app import create_app

    settings = _settings(tmp_path)
    settings.gateway.enabled = False
    settings.smart.enabled = False
    healthy, broken = _Room("healthy"), _Room("broken", fail=True)
    monkeypatch.setattr(assembly, "room_services",
                        lambda settings, *, sync, urls: [broken, healthy])
    with TestClient(create_app(settings, run_sync=True)):
        assert healthy.started.wait(10) and broken.started.wait(10)
        assert not healthy.stopped
    assert healthy.stopped
    assert any(r.getMessage() == "room service stopped on an error"
               and getattr(r, "room", None) == "broken" for r in caplog.records)


def test_no_room_service_runs_when_no_room_is_enabled(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert not (settings.sharing.enabled or settings.record.enabled
                or settings.worklist.enabled or settings.migration.sources)
    assert assembly.room_services(settings, sync=None, urls=assembly.public_urls(settings)) \
        == []  # type: ignore[arg-type]

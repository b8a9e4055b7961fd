"""``/status`` and ``/metrics`` show the work queue's lanes (issue 19): depth and oldest
wait of the real-time and bulk lanes, and the configured bulk share."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from bridge.api import create_app
from bridge.config import InboundAuthSettings, Settings
from tests.support.servers import app_client

TOKEN = "admin-" + uuid.uuid4().hex


@pytest.fixture
async def app_and_client(tmp_path: Path) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    settings = Settings(
        archives=[{"name": "arc", "base_url": "http://archive.test/dicom-web"}],
        state={"url": f"sqlite:///{tmp_path / 'state.db'}"},
        sync={"bulk_share": 0.25},
        api={"admin_auth": InboundAuthSettings(bearer_tokens=[SecretStr(TOKEN)])},
    )
    app = create_app(settings, run_sync=False)
    async with app_client(app, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield app, client


def _queue_some_work(app: Any) -> None:
    store = app.state.ctx.store
    root = f"2.25.{uuid.uuid4().int % 10**20}"
    store.mark_many_due("arc", [(f"{root}.1.{n}", None) for n in range(5)], reason="backfill")
    for n in range(2):
        store.mark_due("arc", f"{root}.2.{n}", reason="stow")


async def test_status_shows_depth_and_oldest_wait_per_lane_and_the_bulk_share(
    app_and_client: tuple[Any, httpx.AsyncClient],
) -> None:
    app, client = app_and_client
    _queue_some_work(app)

    body = (await client.get("/status")).json()

    assert body["bulk_share"] == 0.25
    assert {lane: figures["depth"] for lane, figures in body["lanes"].items()} == {
        "realtime": 2, "bulk": 5}
    assert all(figures["oldest_age_seconds"] >= 0 for figures in body["lanes"].values())
    assert body["queue_depth"] == 7


async def test_metrics_show_depth_and_oldest_wait_per_lane_and_the_bulk_share(
    app_and_client: tuple[Any, httpx.AsyncClient],
) -> None:
    app, client = app_and_client
    _queue_some_work(app)

    text = (await client.get("/metrics")).text

    samples = {
        (s.name, s.labels.get("lane")): s.value
        for family in text_string_to_metric_families(text) for s in family.samples
    }
    assert samples[("bridge_queue_lane_depth", "realtime")] == 2
    assert samples[("bridge_queue_lane_depth", "bulk")] == 5
    assert samples[("bridge_queue_lane_oldest_age_seconds", "bulk")] >= 0
    assert samples[("bridge_queue_bulk_share", None)] == 0.25

"""Each change source queues its studies in its lane of the work queue (issue 19,
"Priority lanes"), and the service opens the store with the configured bulk share."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from bridge.config import ConfigError, Settings, SyncSettings, load_settings
from bridge.state import Lane, StateStore
from bridge.sync.backfill import mark_history
from bridge.sync.poller import poll_window
from bridge.sync.service import sweep_undated
from tests.support.wiring import sync_context
from tests.unit.sync.test_backfill_undated_and_outage import (
    DATED,
    ODD_DATES,
    client_of,
    date_archive,
)

TODAY = date(2026, 12, 1)


def lanes(store: StateStore, uids: list[str]) -> set[Lane]:
    found = set()
    for uid in uids:
        study = store.get_study("arc", uid)
        assert study is not None, uid
        found.add(study.lane)
    return found


async def test_the_sync_services_undated_sweep_queues_in_the_bulk_lane(
    store: StateStore,
) -> None:
    # the first sweep of a large archive may find thousands of undated studies: they must
    # not get ahead of the studies the STOW proxy and the notifications bring
    archive = date_archive(dict(ODD_DATES))
    async with client_of(archive) as client:
        await sweep_undated([client], store, window_days=2, today=lambda: TODAY)
    assert lanes(store, list(ODD_DATES)) == {Lane.BULK}


async def test_the_backfill_queues_in_the_bulk_lane_and_the_recent_window_poll_in_real_time(
    store: StateStore,
) -> None:
    recent = {"1.2.826.0.1.20": "20261130"}
    archive = date_archive({**DATED, **recent})
    async with client_of(archive) as client:
        await mark_history(client, store, start=date(2020, 1, 1), end=date(2024, 12, 31),
                           window_days=365)
        await poll_window(client, store, start=date(2026, 11, 29), end=TODAY)
    assert lanes(store, list(DATED)) == {Lane.BULK}
    assert lanes(store, list(recent)) == {Lane.REALTIME}


async def test_the_service_opens_the_store_with_the_configured_bulk_share(
    tmp_path: Path,
) -> None:
    settings = Settings(
        archives=[{"name": "arc", "base_url": "http://archive.test/dicom-web"}],
        state={"url": f"sqlite:///{tmp_path / 'state.db'}"},
        sync=SyncSettings(bulk_share=0.35),
    )
    async with sync_context(settings) as ctx:
        assert ctx.store.bulk_share == 0.35


def test_a_bulk_share_outside_zero_to_one_is_refused_at_start_up() -> None:
    assert SyncSettings().bulk_share == 0.2
    for share in (-0.1, 1.01):
        with pytest.raises(ConfigError, match=r"sync\.bulk_share"):
            load_settings(sync={"bulk_share": share})

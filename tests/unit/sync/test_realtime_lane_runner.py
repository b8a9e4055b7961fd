"""Real-time work does not wait behind bulk batches, on SQLite (issue 19): the scenarios of
``realtime_scenarios.py`` (PostgreSQL: ``tests/integration/test_realtime_lane_runner_pg.py``)
and the ``sync.realtime_workers`` setting."""

from __future__ import annotations

import pytest

from bridge.config import SyncSettings, load_settings
from bridge.errors import ConfigError
from bridge.state import StateStore
from tests.unit.sync.realtime_scenarios import (
    a_lane_claim_takes_only_its_lane_and_leaves_the_bulk_share_alone,
    realtime_mark_is_synced_by_the_reserved_worker_while_a_bulk_batch_is_held,
    realtime_study_of_a_mixed_claim_is_synced_while_its_bulk_write_is_held,
)


async def test_realtime_study_of_a_mixed_claim_is_synced_while_its_bulk_write_is_held(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await realtime_study_of_a_mixed_claim_is_synced_while_its_bulk_write_is_held(
        store, monkeypatch)


async def test_realtime_mark_is_synced_by_the_reserved_worker_while_a_bulk_batch_is_held(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await realtime_mark_is_synced_by_the_reserved_worker_while_a_bulk_batch_is_held(
        store, monkeypatch)


def test_a_lane_claim_takes_only_its_lane_and_leaves_the_bulk_share_alone(
    store: StateStore,
) -> None:
    a_lane_claim_takes_only_its_lane_and_leaves_the_bulk_share_alone(store)


def test_realtime_workers_default_to_two_and_a_count_out_of_range_is_refused() -> None:
    assert SyncSettings().realtime_workers == 2
    assert SyncSettings(realtime_workers=0).realtime_workers == 0
    for count in (-1, 17):
        with pytest.raises(ConfigError, match=r"sync\.realtime_workers"):
            load_settings(sync={"realtime_workers": count})

"""Real-time work does not wait behind bulk batches, on a real PostgreSQL (issue 19): the
scenarios of ``tests/unit/sync/realtime_scenarios.py`` (SQLite:
``tests/unit/sync/test_realtime_lane_runner.py``), each in a schema of its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bridge.state import StateStore, open_store
from tests.unit.state.state_helpers import FakeClock
from tests.unit.sync.realtime_scenarios import (
    a_lane_claim_takes_only_its_lane_and_leaves_the_bulk_share_alone,
    realtime_mark_is_synced_by_the_reserved_worker_while_a_bulk_batch_is_held,
    realtime_study_of_a_mixed_claim_is_synced_while_its_bulk_write_is_held,
)


@pytest.fixture
def store(pg_schema_url: str) -> Iterator[StateStore]:
    st = open_store(pg_schema_url, clock=FakeClock())
    try:
        yield st
    finally:
        st.close()


async def test_realtime_study_of_a_mixed_claim_is_synced_while_its_bulk_write_is_held_on_pg(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert store.dialect == "postgresql"
    await realtime_study_of_a_mixed_claim_is_synced_while_its_bulk_write_is_held(
        store, monkeypatch)


async def test_realtime_mark_is_synced_by_the_reserved_worker_while_bulk_is_held_on_pg(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await realtime_mark_is_synced_by_the_reserved_worker_while_a_bulk_batch_is_held(
        store, monkeypatch)


def test_a_lane_claim_takes_only_its_lane_and_leaves_the_bulk_share_alone_on_pg(
    store: StateStore,
) -> None:
    a_lane_claim_takes_only_its_lane_and_leaves_the_bulk_share_alone(store)

"""The rooms' task queue on a real PostgreSQL: the SQLite scenarios, and concurrent
claimers never sharing a task (SKIP LOCKED)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from bridge.state import StateStore, open_store
from tests.unit.state import task_scenarios as scenarios
from tests.unit.state.state_helpers import FakeClock
from tests.unit.state.test_state_tasks import SCENARIOS


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(pg_schema_url: str, clock: FakeClock) -> Iterator[StateStore]:
    st = open_store(pg_schema_url, clock=clock)
    try:
        yield st
    finally:
        st.close()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_task_queue_on_postgres(scenario: object, store: StateStore, clock: FakeClock) -> None:
    assert store.dialect == "postgresql"
    assert callable(scenario)
    scenario(store, clock)


def test_concurrent_claimers_never_share_a_task_on_postgres(store: StateStore) -> None:
    store.enqueue_tasks(scenarios.KIND, [f"a/{i}" for i in range(400)])
    claimed: dict[str, list[str]] = {}
    start = threading.Barrier(4)

    def claimer(name: str) -> None:
        start.wait()
        mine: list[str] = []
        while batch := store.claim_tasks(scenarios.KIND, limit=7, worker=name,
                                         lease_seconds=60):
            mine += [t.key for t in batch]
        claimed[name] = mine

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    keys = [k for mine in claimed.values() for k in mine]
    assert sorted(keys) == sorted(f"a/{i}" for i in range(400))
    assert len(set(keys)) == len(keys)

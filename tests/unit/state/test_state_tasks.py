"""The rooms' task queue on SQLite (issues 14-17); the same scenarios run on PostgreSQL in
tests/integration/test_state_tasks_pg.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.state import StateStore, open_store
from tests.unit.state import task_scenarios as scenarios
from tests.unit.state.state_helpers import FakeClock

SCENARIOS = [getattr(scenarios, n) for n in dir(scenarios)
             if callable(getattr(scenarios, n)) and getattr(scenarios, n).__module__
             == scenarios.__name__]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[StateStore]:
    st = open_store(f"sqlite:///{tmp_path / 'state.db'}", clock=clock)
    try:
        yield st
    finally:
        st.close()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_task_queue_on_sqlite(scenario: object, store: StateStore, clock: FakeClock) -> None:
    assert callable(scenario)
    scenario(store, clock)


def test_there_are_scenarios() -> None:
    assert len(SCENARIOS) >= 6

"""Unit-test fixtures: a state store in a SQLite file per test, with a clock we drive
(the state store's tests and those of its users, e.g. the webhook replay memory)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.state import StateStore, open_store
from tests.unit.state.state_helpers import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture
def store(db_url: str, clock: FakeClock) -> Iterator[StateStore]:
    st = open_store(db_url, clock=clock)
    try:
        yield st
    finally:
        st.close()

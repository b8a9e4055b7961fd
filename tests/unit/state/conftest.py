"""Fixtures of the state store's unit tests: a SQLite file per test and a clock we drive."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from state_helpers import FakeClock

from bridge.state import StateStore, open_store


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

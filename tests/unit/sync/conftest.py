"""Fixtures of the sync runner's unit tests: the fakes and a runner wired to them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.unit.sync.fakes import FakeArchive, FakeFhir, Rig, make_rig


@pytest.fixture
def archive() -> FakeArchive:
    return FakeArchive()


@pytest.fixture
def fhir() -> FakeFhir:
    return FakeFhir()


@pytest.fixture
async def rig_factory(
    tmp_path: Path, archive: FakeArchive, fhir: FakeFhir
) -> AsyncIterator[Callable[..., Rig]]:
    """``rig_factory(**sync_settings)``; every rig shares the test's store and fakes."""
    made: list[Rig] = []

    def make(**sync: Any) -> Rig:
        made.append(make_rig(tmp_path / "state.db", archive=archive, fhir=fhir, **sync))
        return made[-1]

    try:
        yield make
    finally:
        for rig in made:
            await rig.aclose()


@pytest.fixture
def rig(rig_factory: Callable[..., Rig]) -> Rig:
    return rig_factory()

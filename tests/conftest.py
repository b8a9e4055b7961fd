"""Test-suite wide set-up: import paths and markers.

* ``docker/local`` goes on ``sys.path`` so tests can ``import devstack`` (the module that
  starts the real Orthanc / PostgreSQL / HAPI FHIR servers), and the repository root so
  ``samples`` and friends import without installation.
* Tests are marked by directory: everything under ``tests/integration`` gets
  ``pytest.mark.integration``, ``tests/e2e`` gets ``e2e``, ``tests/bench`` gets ``bench``,
  so ``pytest -m "not integration"`` runs the fast unit tests only.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TESTS_DIR = REPO_ROOT / "tests"

for _path in (REPO_ROOT / "docker" / "local", REPO_ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

_MARKERS = {
    "integration": "needs the real servers (Orthanc, HAPI FHIR, PostgreSQL)",
    "e2e": "end-to-end scenario across the bridge and the real servers",
    "bench": "performance measurement, slow",
}


def pytest_configure(config: pytest.Config) -> None:
    for name, description in _MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            relative = item.path.resolve().relative_to(TESTS_DIR)
        except ValueError:
            continue
        top = relative.parts[0] if len(relative.parts) > 1 else ""
        if top in _MARKERS:
            item.add_marker(getattr(pytest.mark, top))


@pytest.fixture
def root_logging() -> Iterator[None]:
    """For tests running the CLI, which sets up logging on the root logger: pytest's
    handlers and level are put back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)

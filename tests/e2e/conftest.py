"""The e2e tests reuse the integration fixtures (real Orthanc, HAPI FHIR, PostgreSQL; with
``BRIDGE_TEST_STACK`` the running ones) and share one Chromium per module: ``chromium``,
and a fresh ``context`` (a 1366 x 800 viewport, :data:`NAV_TIMEOUT`) and ``page`` per
test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright import sync_api as playwright_sync

from tests.e2e.e2e_helpers import NAV_TIMEOUT, launch_chromium
from tests.integration.conftest import hapi, ns, orthanc, own_orthanc, postgres, stack_state

__all__ = ["chromium", "context", "hapi", "ns", "orthanc", "own_orthanc", "page", "postgres",
           "stack_state"]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with playwright_sync.sync_playwright() as p:
        browser = launch_chromium(p)
        yield browser
        browser.close()


@pytest.fixture
def context(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1366, "height": 800})
    context.set_default_timeout(NAV_TIMEOUT)
    yield context
    context.close()


@pytest.fixture
def page(context: Any) -> Any:
    return context.new_page()

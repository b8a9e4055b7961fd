"""The e2e tests reuse the integration fixtures (real Orthanc, HAPI FHIR, PostgreSQL; with
``BRIDGE_TEST_STACK`` the running ones).  Per module: ``world`` (two patients' studies
synced into HAPI), ``product`` (the whole product on a port; a module needing other
options overrides it) and one Chromium (``chromium``); per test a fresh ``context`` (a
1366 x 800 viewport, :data:`NAV_TIMEOUT`) and ``page``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright import sync_api as playwright_sync

from tests.e2e.e2e_helpers import (
    NAV_TIMEOUT,
    Product,
    launch_chromium,
    running_product,
    synced_world,
)
from tests.integration.conftest import hapi, ns, orthanc, own_orthanc, postgres, stack_state
from tests.integration.gateway.gateway_helpers import World

__all__ = ["chromium", "context", "hapi", "ns", "orthanc", "own_orthanc", "page", "postgres",
           "product", "stack_state", "world"]


@pytest.fixture(scope="module")
def world(orthanc: Any, hapi: Any, tmp_path_factory: pytest.TempPathFactory) -> World:
    return synced_world(orthanc, hapi, tmp_path_factory.mktemp("sync"))


@pytest.fixture(scope="module")
def product(orthanc: Any, hapi: Any, world: World,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    with running_product(orthanc, hapi, tmp_path_factory.mktemp("bridge")) as running:
        yield running


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

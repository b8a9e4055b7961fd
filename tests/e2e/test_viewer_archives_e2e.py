"""End to end in headless Chromium with two archives behind the gateway (issue 8): a
patient whose studies are only in the second archive launches the SMART app, opens a study
from the history page, and OHIF renders its first image from that archive's gateway base
(``/viewer/viewer/{archive}`` selects the data source whose root is
``/dicom-web/{archive}``; the default archive's root does not hold the study)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import devstack
import pytest

from bridge.config import ArchiveSettings, AuthSettings
from tests.e2e.e2e_helpers import (
    APP_CLIENT,
    Product,
    running_product,
    screenshot,
    wait_for_image,
)
from tests.integration.gateway.gateway_helpers import World, build_world
from tests.integration.sync_helpers import study_by_uid
from tests.support.wiring import sync_context

SECOND = "second"


@pytest.fixture(scope="module")
def second_orthanc(own_orthanc: devstack.Orthanc) -> devstack.Orthanc:
    return own_orthanc


@pytest.fixture(scope="module")
def world2(second_orthanc: devstack.Orthanc, hapi: Any) -> World:
    return build_world(second_orthanc, hapi)


@pytest.fixture(scope="module")
def product(orthanc: Any, hapi: Any, second_orthanc: devstack.Orthanc, world2: World,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    second = ArchiveSettings(name=SECOND, base_url=second_orthanc.dicomweb_url,
                             auth=AuthSettings(kind="basic", username=second_orthanc.username,
                                               password=second_orthanc.password))
    with running_product(orthanc, hapi, tmp_path_factory.mktemp("bridge"),
                         more_archives=[second]) as running:

        async def sync() -> Any:  # the sync of the product's settings: gateway Endpoints
            async with sync_context(running.settings) as ctx:
                ctx.store.mark_many_due(SECOND, [(u, None) for u in world2.a.studies],
                                        reason="manual")
                return await ctx.runner.drain()

        stats = asyncio.run(sync())
        assert stats.failed == stats.retried == 0
        for uid in world2.a.studies:
            assert len(study_by_uid(hapi, uid)) == 1
        yield running


def test_a_study_of_the_second_archive_opens_in_ohif_from_that_archive(
    product: Product, world2: World, page: Any
) -> None:
    page.goto(product.ehr.launch_url_for(APP_CLIENT, world2.a.fhir_id))
    page.wait_for_selector('button[value="approve"]')
    page.click('button[value="approve"]')
    page.wait_for_url("**/app/history*")
    page.wait_for_selector('[data-testid="study"]')
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.locator('[data-testid="open"]').first.click()
    page.wait_for_url(f"**/viewer/viewer/{SECOND}*")
    seconds = wait_for_image(page, timeout=240)
    screenshot(page, "ohif-second-archive.png")
    dicomweb = f"{product.url}/dicom-web/"
    asked = [u.removeprefix(dicomweb) for u in requests if u.startswith(dicomweb)]
    assert asked and all(u.startswith(f"{SECOND}/") for u in asked), asked[:5]
    print(f"first image from the second archive after {seconds:.1f} s")

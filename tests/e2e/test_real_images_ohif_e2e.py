"""Real images in every transfer syntax render in OHIF through the gateway (issue 13).

The real anonymized images of :mod:`samples.real_images` (one study each, re-identified as
studies of one new synthetic patient) are stored in Orthanc as they ship: JPEG 2000, JPEG-LS,
RLE, JPEG baseline / extended / lossless, Explicit VR Little Endian.  They are synced into
HAPI with the product's settings, the EHR launches the SMART app for that patient, and each
study is opened in OHIF in a fresh tab: its viewport canvas must show an image whose pixels
are not uniform (a decoder failure leaves the viewport black or a flat fill), and the frames
the gateway handed OHIF must be in the file's own transfer syntax (their Content-Type), so
the browser, not the archive, decoded them.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from playwright import sync_api as playwright_sync

from samples.generator import generate_studies
from samples.load import load_studies
from samples.real_images import REAL_IMAGES, TRANSFER_SYNTAXES, RealStudy, real_studies
from samples.seed_ehr import seed_ehr
from tests.e2e.e2e_helpers import (
    APP_CLIENT,
    NAV_TIMEOUT,
    Product,
    fhir_patient_id,
    launch_chromium,
    screenshot,
    start_product,
    stop_product,
)
from tests.integration.sync_helpers import study_by_uid
from tests.support.wiring import sync_context

IMAGE_TIMEOUT = 240.0  # s: a slow, loaded 2-core machine

#: the biggest canvas: how many sampled pixels are lit, how many distinct grey levels they
#: have and their standard deviation (a decoded image has many levels; a failed one none)
CANVAS_STATS_JS = """
() => {
  let best = null;
  for (const c of document.querySelectorAll('canvas')) {
    if (c.width < 64 || c.height < 64) continue;
    let ctx;
    try { ctx = c.getContext('2d'); } catch (e) { continue; }
    if (!ctx) continue;
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let lit = 0, sum = 0, sq = 0, n = 0;
    const levels = new Set();
    for (let i = 0; i < d.length; i += 16) {
      const y = (d[i] + d[i + 1] + d[i + 2]) / 3;
      n++; sum += y; sq += y * y;
      if (y > 10) { lit++; levels.add(Math.round(y)); }
    }
    const mean = sum / n, std = Math.sqrt(Math.max(0, sq / n - mean * mean));
    if (!best || lit > best.lit) best = {lit, levels: levels.size, std};
  }
  return best || {lit: 0, levels: 0, std: 0};
}
"""


@dataclass
class RealWorld:
    patient: str
    studies: dict[str, RealStudy]


@pytest.fixture(scope="module")
def real_world(orthanc: Any, hapi: Any) -> RealWorld:
    token = uuid.uuid4().hex[:5].upper()
    seed = int(token, 16)
    synthetic = list(generate_studies(1, seed=seed, profile="small", patients=1,
                                      id_prefix=token))
    studies = real_studies([synthetic[0].patient], seed=seed, id_prefix=token)
    loaded = load_studies([*synthetic, *studies], url=orthanc.dicomweb_url,
                          username=orthanc.username, password=orthanc.password)
    assert loaded.ok, loaded.errors
    seed_ehr([s.truth for s in [*synthetic, *studies]], fhir_url=hapi.fhir_url,
             patients_fraction=1.0, seed=seed)
    patient = synthetic[0].patient
    return RealWorld(fhir_patient_id(hapi, patient.identifier_system, patient.patient_id),
                     {s.source.key: s for s in studies})


@pytest.fixture(scope="module")
def product(orthanc: Any, hapi: Any, real_world: RealWorld,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    running = start_product(orthanc, hapi, tmp_path_factory.mktemp("bridge"))

    async def sync() -> Any:  # the product's own settings: the gateway's Endpoints
        async with sync_context(running.settings) as ctx:
            uids = [(s.study_uid, None) for s in real_world.studies.values()]
            ctx.store.mark_many_due("orthanc", uids, reason="manual")
            return await ctx.runner.drain()

    with ThreadPoolExecutor(1) as pool:  # its own event loop, away from Playwright's
        stats = pool.submit(asyncio.run, sync()).result()
    assert stats.failed == stats.retried == 0
    for study in real_world.studies.values():
        found = study_by_uid(hapi, study.study_uid)
        assert len(found) == 1 and found[0]["subject"]["reference"].endswith(
            f"Patient/{real_world.patient}"), study.source.key
    yield running
    stop_product(running)


@pytest.fixture(scope="module")
def signed_in(product: Product, real_world: RealWorld) -> Iterator[Any]:
    """A Chromium context holding the SMART app session of the patient (one EHR launch)."""
    with playwright_sync.sync_playwright() as p:
        browser = launch_chromium(p)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.set_default_timeout(NAV_TIMEOUT)
        page = context.new_page()
        page.goto(product.ehr.launch_url_for(APP_CLIENT, real_world.patient))
        page.wait_for_selector('button[value="approve"]')
        page.click('button[value="approve"]')
        page.wait_for_url("**/app/history*")
        page.wait_for_selector('[data-testid="study"]')
        shown = {page.locator('[data-testid="study"]').nth(i).get_attribute("data-study-uid")
                 for i in range(page.locator('[data-testid="study"]').count())}
        assert {s.study_uid for s in real_world.studies.values()} <= shown
        page.close()
        yield context
        context.close()
        browser.close()


def _wait_for_drawn_image(page: Any, errors: list[str]) -> tuple[float, dict[str, Any]]:
    start = time.monotonic()
    stats: dict[str, Any] = {}
    while time.monotonic() - start < IMAGE_TIMEOUT:
        try:
            stats = page.evaluate(CANVAS_STATS_JS)
        except Exception:  # navigation in progress
            stats = {}
        if stats.get("lit", 0) >= 200 and stats.get("levels", 0) >= 16 and stats["std"] > 5:
            return time.monotonic() - start, stats
        page.wait_for_timeout(100)
    raise AssertionError(f"no non-uniform image within {IMAGE_TIMEOUT:.0f} s: canvas {stats}, "
                         f"page errors {errors[:5]}")


@pytest.mark.parametrize("key", [s.key for s in REAL_IMAGES])
def test_ohif_draws_the_real_image_through_the_gateway(
    key: str, product: Product, real_world: RealWorld, signed_in: Any
) -> None:
    study = real_world.studies[key]
    page = signed_in.new_page()
    errors: list[str] = []
    frame_types: set[str] = set()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    gateway = f"{product.url}/dicom-web/"

    def seen(resp: Any) -> None:
        if resp.url.startswith(gateway) and "/frames/" in resp.url:
            ctype = resp.headers.get("content-type", "?")
            frame_types.add(";".join(p for p in ctype.split(";") if "boundary" not in p))

    page.on("response", seen)
    try:
        page.goto(f"{product.url}/app/viewer?StudyInstanceUIDs={study.study_uid}")
        page.wait_for_url(f"**/viewer/viewer?StudyInstanceUIDs={study.study_uid}*")
        seconds, stats = _wait_for_drawn_image(page, errors)
        screenshot(page, f"ohif-real-{key}.png")
    finally:
        page.close()
    # OHIF got the frames in the file's own syntax (nobody transcoded): the browser decoded it
    assert frame_types and all(f"transfer-syntax={study.transfer_syntax}" in t
                               for t in frame_types), frame_types
    print(f"{key} ({TRANSFER_SYNTAXES[study.transfer_syntax]}): drawn after {seconds:.1f} s, "
          f"canvas {stats}, frames {sorted(frame_types)}")

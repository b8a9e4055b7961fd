"""The whole product in one process for browser tests and the benchmark: studies in Orthanc,
synced into HAPI by a backfill, the sandbox EHR in front of HAPI, and the bridge app (gateway
+ SMART app + OHIF) on a real port.  Chromium is Debian's, driven by Playwright."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from sandbox_ehr import SandboxEhr

from bridge.config import ArchiveSettings, GatewaySettings, Settings, SmartSettings
from bridge.sync.backfill import mark_history
from smart_app.viewer import find_dist
from tests.integration.gateway.gateway_helpers import World, build_world
from tests.integration.sync_helpers import bridge_settings, fhir_search
from tests.support.ports import free_port
from tests.support.servers import RunningGateway
from tests.support.settings import REPO_ROOT
from tests.support.wiring import sync_context

ARTIFACTS = REPO_ROOT / ".run" / "artifacts"
NAV_TIMEOUT = 120_000  # ms: a page's load on a slow, loaded 2-core machine
CHROMIUM = os.environ.get("BRIDGE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
APP_CLIENT = "imaging-app"
GATEWAY_CLIENT = ("imaging-gateway", "gateway-secret-" + "g" * 24)
VIEWER_SECRET = "viewer-" + "k" * 40


def study_day(yyyymmdd: str) -> date:
    """The date of a DICOM StudyDate (``YYYYMMDD``, PS3.5 6.2 DA)."""
    return date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))


async def backfill(settings: Settings, start: date, end: date) -> Any:
    async with sync_context(settings) as ctx:
        archive = next(iter(ctx.archives.values()))
        await mark_history(archive, ctx.store, start=start, end=end, window_days=3650)
        return await ctx.runner.drain()


def sync_studies(orthanc: Any, hapi: Any, tmp: Path, days: list[date]) -> None:
    """Backfill the studies of these days from Orthanc into HAPI (ImagingStudy + Endpoint)."""
    settings = bridge_settings(orthanc, hapi, tmp)
    asyncio.run(backfill(settings, min(days), max(days)))


def synced_world(orthanc: Any, hapi: Any, tmp: Path) -> World:
    """Two patients' studies in Orthanc and their Patients in HAPI (:func:`build_world`),
    backfilled into HAPI."""
    world = build_world(orthanc, hapi)
    sync_studies(orthanc, hapi, tmp, [study_day(s.truth.study_date) for s in world.studies])
    return world


def fhir_patient_id(hapi: Any, system: str, value: str) -> str:
    found = fhir_search(hapi, "Patient", {"identifier": f"{system}|{value}"})
    assert len(found) == 1, f"expected one Patient for {system}|{value}"
    return str(found[0]["id"])


def touch_patient(hapi: Any, patient: str) -> None:
    """Make the Patient the most recently updated one: the sandbox's standalone picker lists
    the 50 latest, and other tests keep creating patients on the shared HAPI."""
    from datetime import UTC, datetime

    with httpx.Client(timeout=60) as client:
        resource = client.get(f"{hapi.fhir_url}/Patient/{patient}").json()
        resource["extension"] = [e for e in resource.get("extension", [])
                                 if e.get("url") != "urn:bridge:test:touched"]
        resource["extension"].append({"url": "urn:bridge:test:touched",
                                      "valueDateTime": datetime.now(UTC).isoformat()})
        resp = client.put(f"{hapi.fhir_url}/Patient/{patient}", json=resource)
        resp.raise_for_status()


def archive_study_uids(orthanc: Any, patient_id: str, issuer: str) -> set[str]:
    """The archive's own answer (QIDO-RS directly at Orthanc) for one PatientID + issuer
    (the same PatientID under another issuer is another patient)."""
    with httpx.Client(timeout=60, auth=(orthanc.username, orthanc.password)) as client:
        resp = client.get(f"{orthanc.dicomweb_url}/studies",
                          params={"PatientID": patient_id, "limit": "10000",
                                  "includefield": "00100021"})
        resp.raise_for_status()
        return {r["0020000D"]["Value"][0] for r in resp.json()
                if (r.get("00100021", {}).get("Value") or [""])[0] == issuer}


@dataclass
class Product:
    ehr: SandboxEhr
    app: RunningGateway
    settings: Settings

    @property
    def url(self) -> str:
        return self.app.url


def start_product(orthanc: Any, hapi: Any, tmp: Path, *, auto_approve: bool = False,
                  more_archives: Sequence[ArchiveSettings] = (),
                  viewer_token_lifetime: float = 300.0,
                  extra_scopes: Sequence[str] = ()) -> Product:
    """The product on a free port; ``orthanc`` is the default archive, ``more_archives``
    are served by the gateway at ``/dicom-web/{name}``; ``viewer_token_lifetime`` shortened
    to see the viewer renew its token."""
    dist = find_dist(None)
    assert dist is not None, "run docker/local/fetch_ohif.sh first (OHIF dist missing)"
    ehr = SandboxEhr(hapi.fhir_url, auto_approve=auto_approve).start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    ehr.register_client(GATEWAY_CLIENT[0], secret=GATEWAY_CLIENT[1])
    ehr.register_client(APP_CLIENT, redirect_uris=[f"{base}/smart/callback"],
                        launch_url=f"{base}/smart/launch", name="Imaging")
    settings = bridge_settings(orthanc, hapi, tmp)
    settings.archives += list(more_archives)
    settings.api.port = port
    settings.gateway = GatewaySettings(
        enabled=True, public_url=f"{base}/dicom-web", viewer_token_secret=VIEWER_SECRET,
        introspection_url=ehr.introspection_url, client_id=GATEWAY_CLIENT[0],
        client_secret=GATEWAY_CLIENT[1], audience=ehr.fhir_url,
        viewer_url_template="/app/viewer?StudyInstanceUIDs={study_uids}",
        viewer_token_lifetime=viewer_token_lifetime)
    settings.smart = SmartSettings(
        enabled=True, client_id=APP_CLIENT, iss_allowlist=[ehr.fhir_url],
        standalone_iss=ehr.fhir_url, ohif_dist_dir=dist,
        **({"extra_scopes": list(extra_scopes)} if extra_scopes else {}))
    app = RunningGateway(settings).start()
    return Product(ehr, app, settings)


def stop_product(product: Product) -> None:
    product.app.stop()
    product.ehr.stop()


@contextlib.contextmanager
def running_product(orthanc: Any, hapi: Any, tmp: Path, **options: Any) -> Iterator[Product]:
    """:func:`start_product` (``options`` are its keywords) until the block ends."""
    product = start_product(orthanc, hapi, tmp, **options)
    try:
        yield product
    finally:
        stop_product(product)


def launch_chromium(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                      headless=True)


#: counts canvases' pixels that are not (near) black; OHIF's background is black
CANVAS_PIXELS_JS = """
() => {
  let best = 0;
  for (const c of document.querySelectorAll('canvas')) {
    if (c.width < 64 || c.height < 64) continue;
    let ctx;
    try { ctx = c.getContext('2d'); } catch (e) { continue; }
    if (!ctx) continue;
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let lit = 0;
    for (let i = 0; i < d.length; i += 16) {
      if (d[i] + d[i + 1] + d[i + 2] > 30) lit++;
    }
    best = Math.max(best, lit);
  }
  return best;
}
"""


def wait_for_image(page: Any, *, timeout: float = 180.0, min_lit: int = 200) -> float:
    """Seconds until a viewport canvas shows non-background pixels (raises on timeout)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            lit = page.evaluate(CANVAS_PIXELS_JS)
        except Exception:  # navigation in progress
            lit = 0
        if lit >= min_lit:
            return time.monotonic() - start
        page.wait_for_timeout(50)
    raise AssertionError(f"no image rendered within {timeout:.0f} s")


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    return path


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

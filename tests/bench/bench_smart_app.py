"""SMART app benchmark: the history page for a patient with 200 studies, and the time from
the click on a study to OHIF's first rendered image, against the real servers.

    BRIDGE_TEST_STACK=/tmp/lead/stack.json .venv/bin/python tests/bench/bench_smart_app.py
    .venv/bin/python tests/bench/bench_smart_app.py --studies 200 --runs 15 --opens 5

* **history**: 200 ImagingStudies (shaped as the sync writes them, one Endpoint) for one
  new Patient are POSTed to HAPI in one transaction; the app is launched for that patient
  through the sandbox EHR (auto-approve), then ``GET /app/history`` is timed ``--runs``
  times (first, cold, reported apart).  Every request does the full FHIR search through the
  sandbox proxy (no caching in the app).  Target: median <= 1 s.
* **first image**: two patients' generated studies are loaded into Orthanc and synced by a
  backfill; in headless Chromium (Debian's) the app is launched, and for ``--opens`` studies
  the time from the click on "Open" to the first non-background pixels on the OHIF canvas
  is measured (the first open, with an empty browser cache, is reported apart).
  Target: <= 3 s.

Writes .run/bench/smart_app.json.  The machine is shared: the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docker" / "local"))

import devstack  # noqa: E402

from tests.e2e.e2e_helpers import (  # noqa: E402
    APP_CLIENT,
    fhir_patient_id,
    launch_chromium,
    start_product,
    stop_product,
    sync_studies,
    wait_for_image,
)
from tests.integration.gateway.gateway_helpers import build_world  # noqa: E402


def _servers() -> tuple[Any, Any]:
    path = os.environ.get("BRIDGE_TEST_STACK")
    if not path:
        raise SystemExit("set BRIDGE_TEST_STACK to a running stack (devstack.py up)")
    state = devstack.load_state(path)
    return state["orthanc"], state["hapi"]


def seed_history(hapi: Any, count: int) -> str:
    """A Patient with ``count`` ImagingStudies (CT/MR/CR/US over 20 years, each with a reason
    and a referrer; one in ten with a series the EHR shows without a body site, whose raw
    term the page then looks up in the archive); its FHIR id."""
    token = uuid.uuid4().hex[:8]
    patient_url = f"urn:uuid:{uuid.uuid4()}"
    endpoint_url = f"urn:uuid:{uuid.uuid4()}"
    entries: list[dict[str, Any]] = [
        {"fullUrl": patient_url, "resource": {
            "resourceType": "Patient", "identifier": [{"system": "urn:bench", "value": token}],
            "name": [{"family": "Bench", "given": ["History"]}], "gender": "other",
            "birthDate": "1960-01-01"}, "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": endpoint_url, "resource": {
            "resourceType": "Endpoint", "status": "active",
            "connectionType": {"system": "http://terminology.hl7.org/CodeSystem/"
                               "endpoint-connection-type", "code": "dicom-wado-rs"},
            "payloadType": [{"text": "DICOM"}], "address": "http://archive/dicom-web"},
            "request": {"method": "POST", "url": "Endpoint"}},
    ]
    mods = ["CT", "MR", "CR", "US"]
    sites = [("51185008", "Chest"), ("69536005", "Head"), ("818983003", "Abdomen")]
    for n in range(count):
        mod, (code, site) = mods[n % 4], sites[n % 3]
        series: dict[str, Any] = {
            "uid": f"2.25.{uuid.uuid4().int}", "number": 1,
            "modality": {"system": "http://dicom.nema.org/resources/ontology/DCM",
                         "code": mod}, "numberOfInstances": 20}
        if n % 10 != 9:
            series["bodySite"] = {"system": "http://snomed.info/sct", "code": code,
                                  "display": site}
        entries.append({"resource": {
            "resourceType": "ImagingStudy", "status": "available",
            "subject": {"reference": patient_url}, "endpoint": [{"reference": endpoint_url}],
            "identifier": [
                {"system": "urn:dicom:uid", "value": f"urn:oid:2.25.{uuid.uuid4().int}"},
                {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                      "code": "ACSN"}]}, "value": f"B{token}{n}"}],
            "started": f"{2005 + n % 20}-{1 + n % 12:02d}-{1 + n % 28:02d}T09:{n % 60:02d}:00Z",
            "modality": [{"system": "http://dicom.nema.org/resources/ontology/DCM",
                          "code": mod}],
            "numberOfSeries": 2, "numberOfInstances": 40, "description": f"{mod} {site}",
            "reasonCode": [{"text": f"Follow-up {n}"}],
            "referrer": {"display": "Dr. Bench"},  # display only: HAPI checks references
            "series": [series]},
            "request": {"method": "POST", "url": "ImagingStudy"}})
    with httpx.Client(timeout=600) as client:
        resp = client.post(hapi.fhir_url, json={"resourceType": "Bundle", "type": "transaction",
                                                "entry": entries},
                           headers={"Content-Type": "application/fhir+json"})
        resp.raise_for_status()
        location = resp.json()["entry"][0]["response"]["location"]
    return str(location.split("/")[1])


def launch_session(product: Any, patient: str) -> httpx.Client:
    client = httpx.Client(timeout=120, follow_redirects=True)
    resp = client.get(product.ehr.launch_url_for(APP_CLIENT, patient))
    assert resp.status_code == 200 and "/app/history" in str(resp.url), (
        resp.status_code, resp.text[resp.text.find("<h1"):][:300])
    return client


def bench_history(product: Any, hapi: Any, count: int, runs: int) -> dict[str, Any]:
    patient = seed_history(hapi, count)
    client = launch_session(product, patient)
    times = []
    for _ in range(runs + 1):
        start = time.perf_counter()
        resp = client.get(f"{product.url}/app/history")
        times.append(time.perf_counter() - start)
        assert resp.status_code == 200, resp.text[resp.text.find("<h1"):][:300]
        assert resp.text.count('data-testid="study"') == count
    client.close()
    warm = times[1:]
    return {"studies": count, "cold_s": round(times[0], 3),
            "median_s": round(statistics.median(warm), 3),
            "p90_s": round(sorted(warm)[int(0.9 * (len(warm) - 1))], 3),
            "runs": runs, "target_median_s": 1.0}


def bench_first_image(product: Any, orthanc: Any, hapi: Any, opens: int) -> dict[str, Any]:
    from datetime import date

    from playwright.sync_api import sync_playwright

    world = build_world(orthanc, hapi)
    days = [date(int(s.truth.study_date[:4]), int(s.truth.study_date[4:6]),
                 int(s.truth.study_date[6:8])) for s in world.studies]
    sync_studies(orthanc, hapi, Path(tempfile.mkdtemp()), days)
    patient = fhir_patient_id(hapi, world.a.system, world.a.value)
    times: list[float] = []
    with sync_playwright() as p:
        browser = launch_chromium(p)
        context = browser.new_context(viewport={"width": 1366, "height": 800})
        context.set_default_timeout(180_000)
        page = context.new_page()
        page.goto(product.ehr.launch_url_for(APP_CLIENT, patient))
        page.wait_for_url("**/app/history*")
        n_studies = page.locator('[data-testid="open"]').count()
        #: viewer files the browser fetched from the network (not its cache), per open
        fetched: list[list[tuple[str, int]]] = []

        def record(response: Any) -> None:
            path = response.url.split("?")[0].removeprefix(product.url)
            if path.startswith("/viewer/") and fetched and not response.from_service_worker:
                size = int(response.headers.get("content-length") or 0)
                fetched[-1].append((path, size))

        page.on("response", record)
        for i in range(opens):
            fetched.append([])
            page.goto(f"{product.url}/app/history")
            link = page.locator('[data-testid="open"]').nth(i % n_studies)
            start = time.monotonic()
            link.click()
            page.wait_for_url("**/viewer/viewer*")
            wait_for_image(page, timeout=180)
            times.append(time.monotonic() - start)
        browser.close()
    warm = times[1:] or times
    cold_files = fetched[0] if fetched else []
    return {"opens": opens, "cold_s": round(times[0], 2),
            "cold_viewer_responses": len(cold_files),
            "cold_viewer_files": sorted(p for p, _ in cold_files),
            "median_warm_s": round(statistics.median(warm), 2),
            "max_warm_s": round(max(warm), 2), "all_s": [round(t, 2) for t in times],
            "target_s": 3.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=200)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--opens", type=int, default=5, help="0: history page only")
    args = parser.parse_args()
    orthanc, hapi = _servers()
    product = start_product(orthanc, hapi, Path(tempfile.mkdtemp()), auto_approve=True)
    try:
        history = bench_history(product, hapi, args.studies, args.runs)
        print(f"history page, {history['studies']} studies: median {history['median_s']:.3f} s"
              f" (p90 {history['p90_s']:.3f} s, first {history['cold_s']:.3f} s; "
              f"target <= 1 s)")
        image: dict[str, Any] = {}
        if args.opens:  # --opens 0: the history page only
            image = bench_first_image(product, orthanc, hapi, args.opens)
            print(f"OHIF first image after click: first (cold cache) {image['cold_s']:.2f} s,"
                  f" then median {image['median_warm_s']:.2f} s, max "
                  f"{image['max_warm_s']:.2f} s (target <= 3 s)")
    finally:
        stop_product(product)
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} CPUs")
    out = ROOT / ".run" / "bench" / "smart_app.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"history": history, "first_image": image,
                               "loadavg": load}, indent=2))


if __name__ == "__main__":
    main()

"""End to end in headless Chromium, the audit trail of one real viewing (issue 20 item 9):
the EHR launches the SMART app, the clinician opens a study in OHIF, which loads it through
the gateway with dozens of requests (metadata, series, frames).  HAPI then holds the launch,
the history view, the viewer open and one gateway read of that study (not one per frame),
all for the patient, and the reads are tied to the launch (and its fhirUser) by the app
session's reference."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import REGISTRY

from tests.e2e.e2e_helpers import (
    APP_CLIENT,
    Product,
    fhir_patient_id,
    wait_for_image,
)
from tests.integration.gateway.gateway_helpers import World
from tests.integration.sync_helpers import fhir_search


def _reads() -> float:
    """Gateway WADO-RS requests answered 200 so far (QIDO-RS not counted)."""
    return sum(REGISTRY.get_sample_value("bridge_gateway_requests_total",
                                         {"kind": kind, "status": "200"}) or 0
               for kind in ("retrieve", "metadata", "frames", "rendered", "thumbnail", "bulk"))


def test_a_viewing_in_ohif_leaves_launch_history_viewer_and_one_read_per_study_in_hapi(
    product: Product, world: World, hapi: Any, page: Any
) -> None:
    patient = fhir_patient_id(hapi, world.a.system, world.a.value)
    reads_before = _reads()
    page.goto(product.ehr.launch_url_for(APP_CLIENT, patient))
    page.wait_for_selector('button[value="approve"]')
    page.click('button[value="approve"]')
    page.wait_for_url("**/app/history*")
    opened = page.locator('[data-testid="study"]').first.get_attribute("data-study-uid")
    page.locator('[data-testid="open"]').first.click()
    page.wait_for_url("**/viewer/viewer*")
    wait_for_image(page, timeout=240)
    page.context.close()  # the viewer's requests end here
    read_requests = _reads() - reads_before
    trail = product.app.app.state.audit
    asyncio.run_coroutine_threadsafe(trail.flush(), trail.loop).result(60)

    events = fhir_search(hapi, "AuditEvent", {"entity": f"Patient/{patient}",
                                              "_count": "200"})
    by_source: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        source = event["source"]["observer"]["display"].rsplit("(", 1)[1].rstrip(")")
        by_source.setdefault(source, []).append(event)
    app_events = by_source["smart-app"]
    codes = sorted(e["type"]["code"] for e in app_events)
    assert codes == ["110103", "110114", "rest"]  # viewer open, launch, history
    assert all(e["outcome"] == "0" for e in events)
    launch = next(e for e in app_events if e["type"]["code"] == "110114")
    user = next(a for a in launch["agent"] if a["requestor"])
    assert user["who"]["identifier"]["value"].startswith("Practitioner/")
    session = next(a["policy"] for a in launch["agent"] if "policy" in a)

    reads = [e for e in by_source["gateway"] if e["action"] == "R"]
    read_studies = [x["what"]["identifier"]["value"].removeprefix("urn:oid:")
                    for e in reads for x in e["entity"] if x["role"]["code"] == "3"]
    assert read_studies == [opened], read_studies  # one record for the whole study
    assert read_requests >= 2, read_requests  # metadata, frames...: one record for them all
    for event in by_source["gateway"]:  # the viewer token's reads name the launch session
        client = next(a for a in event["agent"] if a["type"]["coding"][0]["code"] == "110153")
        assert client["policy"] == session
    print(f"{read_requests:.0f} WADO-RS requests, {len(by_source['gateway'])} gateway "
          f"AuditEvents ({len(reads)} read)")

"""Orders in the real HAPI reach the running worklist SCP through the order poller, and
leave it when the EHR cancels or completes them; DCMTK's ``findscu -W`` is the modality
(issue 17: "an order created in HAPI is on the worklist within the poll interval", "a
cancelled order disappears from the worklist within one poll").

Each test searches only its own orders: their category is a code unique to the test
(``worklist.order_category``), so the shared HAPI's other orders are not read.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from bridge import assembly
from bridge.fhir.client import FhirClient
from bridge.sections.base import FhirSettings
from bridge.worklist.service import WorklistService
from tests.integration.worklist import worklist_ehr as ehr
from tests.integration.worklist.worklist_ehr import findscu

if TYPE_CHECKING:
    from tests.integration.conftest import Namespace

pytestmark = pytest.mark.integration


def _set_status(fhir: httpx.Client, order: dict[str, Any], status: str) -> None:
    changed = {**order, "status": status}
    changed.pop("meta", None)
    fhir.put(f"/ServiceRequest/{order['id']}", json=changed,
             headers=ehr.FHIR_JSON).raise_for_status()


async def _accessions(port: int, ns: Namespace, out: Path) -> list[str]:
    answer = await asyncio.to_thread(
        findscu, port, [f"PatientID={ns.patient_id()}", "AccessionNumber", "PatientName",
                        "(0040,0100)[0].Modality"], out)
    assert answer.returncode == 0, answer.output
    return sorted(str(r.AccessionNumber) for r in answer.responses)


async def test_orders_are_served_after_one_poll_and_leave_when_cancelled_or_completed(
        ns: Namespace, fhir: httpx.Client, hapi: Any, tmp_path: Path) -> None:
    async with FhirClient(FhirSettings(base_url=hapi.fhir_url)) as ehr_client:
        await _served_then_cancelled(ns, fhir, ehr_client, tmp_path)


async def _served_then_cancelled(ns: Namespace, fhir: httpx.Client, ehr_client: FhirClient,
                                 tmp_path: Path) -> None:
    service = assembly.worklist_service(ehr.worklist_settings(ns), fhir=ehr_client)
    patient = ehr.create(fhir, ehr.patient(ns, "Worklist", "Wanda"))
    first = ehr.create(fhir, ehr.my_order(ns, patient["id"], 1))
    second = ehr.create(fhir, ehr.my_order(ns, patient["id"], 2))
    third = ehr.create(fhir, ehr.my_order(ns, patient["id"], 3))
    nowhere = ehr.create(fhir, ehr.my_order(ns, patient["id"], 4, modality="ZZ"))
    service.scp.start()
    try:
        await service.poller.poll()
        assert await _accessions(service.scp.port, ns, tmp_path / "a") == \
            [ns.accession(1), ns.accession(2), ns.accession(3)]
        refused = service.poller.book.entry(nowhere["id"])
        assert refused is not None and refused.refusal is not None
        assert refused.refusal.field == "ServiceRequest.performerType"
        assert service.poller.status.refused == {"ServiceRequest.performerType": 1}

        _set_status(fhir, first, "revoked")
        _set_status(fhir, second, "completed")
        await service.poller.poll()  # one poll
        assert await _accessions(service.scp.port, ns, tmp_path / "b") == [ns.accession(3)]
        assert service.poller.book.entry(third["id"]) is not None
    finally:
        service.scp.stop()


async def test_the_running_service_serves_a_new_order_within_the_poll_interval(
        ns: Namespace, fhir: httpx.Client, hapi: Any, tmp_path: Path) -> None:
    async with FhirClient(FhirSettings(base_url=hapi.fhir_url)) as ehr_client:
        await _running_service(ns, fhir, ehr_client, tmp_path)


async def _running_service(ns: Namespace, fhir: httpx.Client, ehr_client: FhirClient,
                           tmp_path: Path) -> None:
    interval = 0.5
    service: WorklistService = assembly.worklist_service(
        ehr.worklist_settings(ns, interval=interval), fhir=ehr_client)
    stop = asyncio.Event()
    running = asyncio.create_task(service.run(stop))
    try:
        while service.poller.status.polls == 0 or service.scp._server is None:
            await asyncio.sleep(0.05)  # started: the first poll done, the SCP listening
        port = service.scp.port
        patient = ehr.create(fhir, ehr.patient(ns, "Serve", "Sam"))
        created = time.monotonic()
        ehr.create(fhir, ehr.my_order(ns, patient["id"], 1))
        polls_before = service.poller.status.polls
        # the condition: two polls after the order existed have read it
        while service.poller.status.polls < polls_before + 2:
            await asyncio.sleep(0.05)
        assert await _accessions(port, ns, tmp_path / "a") == [ns.accession(1)]
        assert time.monotonic() - created < 2 * interval + 5
    finally:
        stop.set()
        await asyncio.wait_for(running, timeout=30)
    assert service.scp._server is None  # the SCP stopped with the service

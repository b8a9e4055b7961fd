"""MPPS from a modality (the pynetdicom simulator in samples/modality.py) moves the order
through in-progress -> completed in the real HAPI; DISCONTINUED stops it with its reason;
an open step survives a restart (the state store); invalid N-SETs get their DIMSE status
(PS3.4 F.7.2.2.2; issue 17, "the simulator performs it with MPPS")."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from bridge import assembly
from bridge.fhir.client import FhirClient
from bridge.sections.base import FhirSettings
from bridge.state import StateStore, open_store
from bridge.worklist.service import WorklistService
from samples.modality import Modality
from tests.integration.worklist import worklist_ehr as ehr
from tests.integration.worklist.worklist_ehr import MODALITY_AE, SCP_AE

if TYPE_CHECKING:
    from tests.integration.conftest import Namespace

pytestmark = pytest.mark.integration

NO_CACHE = {**ehr.FHIR_JSON, "Cache-Control": "no-cache"}


def _procedures(fhir: httpx.Client, order_id: str) -> list[dict[str, Any]]:
    bundle = fhir.get("/Procedure", params={"based-on": f"ServiceRequest/{order_id}"},
                      headers=NO_CACHE).json()
    return [e["resource"] for e in bundle.get("entry") or ()]


def _order_status(fhir: httpx.Client, order_id: str) -> str:
    return str(fhir.get(f"/ServiceRequest/{order_id}", headers=NO_CACHE).json()["status"])


def _service(ns: Namespace, ehr_client: FhirClient, store: StateStore) -> WorklistService:
    service = assembly.worklist_service(ehr.worklist_settings(ns), fhir=ehr_client, store=store)
    assert service.reporter is not None
    return service


def _modality(service: WorklistService) -> Modality:
    return Modality(ae_title=MODALITY_AE, host="127.0.0.1", port=service.scp.port,
                    scp_ae=SCP_AE)


async def test_mpps_moves_the_order_through_in_progress_to_completed(
        ns: Namespace, fhir: httpx.Client, hapi: Any, tmp_path: Path) -> None:
    patient = ehr.create(fhir, ehr.patient(ns, "Mpps", "Max"))
    order = ehr.create(fhir, ehr.my_order(ns, patient["id"], 1))
    async with FhirClient(FhirSettings(base_url=hapi.fhir_url)) as ehr_client:
        with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
            service = _service(ns, ehr_client, store)
            assert service.reporter is not None
            service.scp.start()
            try:
                await service.poller.poll()
                modality = _modality(service)
                [item] = modality.worklist(PatientID=ns.patient_id())
                uid, started = modality.start(item)
                assert started.status == 0x0000
                await service.reporter.drain()
                [proc] = _procedures(fhir, order["id"])
                assert proc["status"] == "in-progress"
                assert proc["subject"]["reference"] == f"Patient/{patient['id']}"
                assert "partOf" not in proc
                assert _order_status(fhir, order["id"]) == "active"

                assert modality.finish(uid, "COMPLETED").status == 0x0000
                await service.reporter.drain()
                [proc] = _procedures(fhir, order["id"])  # the same Procedure, updated
                assert proc["status"] == "completed" and "end" in proc["performedPeriod"]
                assert _order_status(fhir, order["id"]) == "completed"
                await service.poller.poll()
                assert modality.worklist(PatientID=ns.patient_id()) == []

                again = modality.finish(uid, "DISCONTINUED")
                assert (again.status, again.error_id) == (0x0110, 0xA710)
                assert "PerformedProcedureStepStatus" in again.comment
                unknown = modality.finish("2.25.12345", "COMPLETED")
                assert unknown.status == 0x0112
            finally:
                service.scp.stop()


async def test_a_step_open_across_a_restart_is_discontinued_with_its_reason(
        ns: Namespace, fhir: httpx.Client, hapi: Any, tmp_path: Path) -> None:
    patient = ehr.create(fhir, ehr.patient(ns, "Restart", "Rita"))
    order = ehr.create(fhir, ehr.my_order(ns, patient["id"], 1))
    url = f"sqlite:///{tmp_path / 'state.db'}"
    async with FhirClient(FhirSettings(base_url=hapi.fhir_url)) as ehr_client:
        with open_store(url) as store:
            first = _service(ns, ehr_client, store)
            first.scp.start()
            try:
                await first.poller.poll()
                [item] = _modality(first).worklist(PatientID=ns.patient_id())
                uid, started = _modality(first).start(item)
                assert started.status == 0
            finally:
                first.scp.stop()
        with open_store(url) as store:  # the bridge restarted
            second = _service(ns, ehr_client, store)
            assert second.reporter is not None
            second.scp.start()
            try:
                stopped = _modality(second).finish(
                    uid, "DISCONTINUED",
                    reason=("110514", "DCM", "Incorrect worklist entry selected"))
                assert stopped.status == 0
                await second.reporter.drain()
            finally:
                second.scp.stop()
    [proc] = _procedures(fhir, order["id"])
    assert proc["status"] == "stopped"
    assert proc["statusReason"]["coding"][0]["code"] == "110514"
    assert _order_status(fhir, order["id"]) == "active"  # discontinued: not completed

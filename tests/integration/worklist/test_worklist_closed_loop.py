"""The order's whole life (issue 17, IHE RAD SWF.b): ordered in HAPI -> on the worklist ->
the modality simulator queries it, reports MPPS IN PROGRESS, acquires a study with the
item's identifiers and stores it in the shared Orthanc -> the sync writes the ImagingStudy
basedOn that ServiceRequest (a literal reference, found by the accession's system and
value the worklist handed the modality) -> MPPS COMPLETED completes the order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from bridge import assembly
from bridge.fhir.client import FhirClient
from bridge.sections.base import FhirSettings
from bridge.state import open_store
from samples.modality import Modality, acquire, stow
from tests.integration.sync_helpers import bridge_settings, study_by_uid
from tests.integration.worklist import worklist_ehr as ehr
from tests.integration.worklist.worklist_ehr import MODALITY_AE, SCP_AE
from tests.support.wiring import sync_context

if TYPE_CHECKING:
    from tests.integration.conftest import Namespace

pytestmark = pytest.mark.integration


@pytest.fixture
def fhir(hapi: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hapi.fhir_url, timeout=30) as client:
        yield client


async def test_an_order_performed_from_the_worklist_comes_back_linked_and_completed(
        ns: Namespace, fhir: httpx.Client, hapi: Any, orthanc: Any, tmp_path: Path) -> None:
    patient = ehr.create(fhir, ehr.patient(ns, "Loop", "Lena"))
    order = ehr.create(fhir, ehr.my_order(ns, patient["id"], 1))
    settings = bridge_settings(orthanc, hapi, tmp_path)
    async with FhirClient(FhirSettings(base_url=hapi.fhir_url)) as ehr_client:
        with open_store(f"sqlite:///{tmp_path / 'worklist.db'}") as store:
            service = assembly.worklist_service(ehr.worklist_settings(ns), fhir=ehr_client,
                                                store=store)
            assert service.reporter is not None
            service.scp.start()
            try:
                await service.poller.poll()
                modality = Modality(ae_title=MODALITY_AE, host="127.0.0.1",
                                    port=service.scp.port, scp_ae=SCP_AE)
                [item] = modality.worklist(PatientID=ns.patient_id(), Modality="CT")
                uid, started = modality.start(item)
                assert started.status == 0
                study_uid = str(item.StudyInstanceUID)
                stow(acquire(item), dicomweb_url=orthanc.dicomweb_url,
                     auth=(orthanc.username, orthanc.password))

                async with sync_context(settings) as ctx:
                    ctx.store.mark_due("orthanc", study_uid, reason="manual")
                    stats = await ctx.runner.drain()
                    assert (stats.failed, stats.retried) == (0, 0), stats
                [study] = study_by_uid(hapi, study_uid)
                assert study["subject"]["reference"] == f"Patient/{patient['id']}"
                assert [b.get("reference") for b in study["basedOn"]] == \
                    [f"ServiceRequest/{order['id']}"]

                assert modality.finish(uid, "COMPLETED").status == 0
                assert await service.reporter.drain() >= 1
            finally:
                service.scp.stop()
    done = fhir.get(f"/ServiceRequest/{order['id']}", headers={"Cache-Control": "no-cache"})
    assert done.json()["status"] == "completed"

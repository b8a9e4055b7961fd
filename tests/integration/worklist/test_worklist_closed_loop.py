"""The order's whole life (issue 17, IHE RAD SWF.b): ordered in HAPI -> on the worklist ->
the modality simulator queries it, reports MPPS IN PROGRESS, acquires a study with the
item's identifiers and stores it in the shared Orthanc -> the sync writes the ImagingStudy
and queues ``worklist.link`` -> the study is basedOn that ServiceRequest (a literal
reference) -> MPPS COMPLETED completes the order.  A study whose images lost the
accession's issuer is linked by the worklist's Study Instance UID; a study of another
patient is not linked and is listed as a mismatch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from pydicom.dataset import Dataset

from bridge import assembly
from bridge.state.tasks import task_key
from bridge.worklist.link import WORKLIST_LINK
from samples.modality import Modality, acquire, stow
from tests.integration.sync_helpers import bridge_settings, study_by_uid
from tests.integration.worklist import worklist_ehr as ehr
from tests.integration.worklist.worklist_ehr import MODALITY_AE, SCP_AE
from tests.support.wiring import sync_context

if TYPE_CHECKING:
    from tests.integration.conftest import Namespace

pytestmark = pytest.mark.integration


@dataclass
class Performed:
    order: dict[str, Any]
    patient: dict[str, Any]
    study: dict[str, Any]
    link: Any


async def _perform(ns: Namespace, fhir: httpx.Client, hapi: Any, orthanc: Any,
                   tmp_path: Path, *, images: Callable[[list[Dataset]], None] = lambda _: None,
                   needs_study: bool = False) -> Performed:
    """Order -> worklist -> MPPS -> images (``images`` may alter them) -> STOW -> sync ->
    the link task run -> MPPS COMPLETED reported; with ``needs_study`` the step is
    COMPLETED before the study comes back, and the order must stay active until then."""
    patient = ehr.create(fhir, ehr.patient(ns, "Loop", "Lena"))
    order = ehr.create(fhir, ehr.my_order(ns, patient["id"], 1))
    wl = ehr.worklist_settings(ns).model_copy(
        update={"complete_order_needs_study": needs_study})
    settings = bridge_settings(orthanc, hapi, tmp_path).model_copy(update={"worklist": wl})
    async with sync_context(settings) as ctx:
        service = assembly.worklist_service(wl, fhir=ctx.fhir, store=ctx.store)
        assert service.reporter is not None and service.linker is not None
        service.scp.start()
        try:
            await service.poller.poll()
            modality = Modality(ae_title=MODALITY_AE, host="127.0.0.1",
                                port=service.scp.port, scp_ae=SCP_AE)
            [item] = modality.worklist(PatientID=ns.patient_id(), Modality="CT")
            uid, started = modality.start(item)
            assert started.status == 0
            study_uid = str(item.StudyInstanceUID)
            if needs_study:
                assert modality.finish(uid, "COMPLETED").status == 0
                assert await service.reporter.drain() == 1
                assert _status(fhir, order) == "active"  # no study yet
            instances = acquire(item)
            images(instances)
            stow(instances, dicomweb_url=orthanc.dicomweb_url,
                 auth=(orthanc.username, orthanc.password))
            ctx.store.mark_due("orthanc", study_uid, reason="manual")
            stats = await ctx.runner.drain()
            assert (stats.failed, stats.retried) == (0, 0), stats
            assert await service.linker.drain() == 1  # queued by the sync
            if not needs_study:
                assert modality.finish(uid, "COMPLETED").status == 0
            assert await service.reporter.drain() >= 1  # needs_study: queued by the link
        finally:
            service.scp.stop()
        link = ctx.store.task(WORKLIST_LINK, task_key("orthanc", study_uid))
    [study] = study_by_uid(hapi, study_uid)
    return Performed(order, patient, study, link)


def _status(fhir: httpx.Client, order: dict[str, Any]) -> str:
    got = fhir.get(f"/ServiceRequest/{order['id']}", headers={"Cache-Control": "no-cache"})
    return str(got.json()["status"])


async def test_an_order_performed_from_the_worklist_comes_back_linked_and_completed(
        ns: Namespace, fhir: httpx.Client, hapi: Any, orthanc: Any, tmp_path: Path) -> None:
    done = await _perform(ns, fhir, hapi, orthanc, tmp_path)
    assert done.study["subject"]["reference"] == f"Patient/{done.patient['id']}"
    assert [b.get("reference") for b in done.study["basedOn"]] == \
        [f"ServiceRequest/{done.order['id']}"]
    assert done.link is not None and done.link.status == "done"
    assert dict(done.link.result or {})["by"] == "sync"  # the accession matched exactly
    assert _status(fhir, done.order) == "completed"


def _lose_the_accession_issuer(images: list[Dataset]) -> None:
    for ds in images:
        del ds.IssuerOfAccessionNumberSequence
        del ds.RequestAttributesSequence[0].IssuerOfAccessionNumberSequence


async def test_a_study_whose_accession_lost_its_issuer_is_linked_by_its_study_uid(
        ns: Namespace, fhir: httpx.Client, hapi: Any, orthanc: Any, tmp_path: Path) -> None:
    done = await _perform(ns, fhir, hapi, orthanc, tmp_path,
                          images=_lose_the_accession_issuer)
    refs = [b.get("reference") for b in done.study["basedOn"]]
    assert refs == [f"ServiceRequest/{done.order['id']}"]
    assert done.link is not None and dict(done.link.result or {})["by"] == "worklist"


async def test_a_study_of_another_patient_is_not_linked_and_listed_as_a_mismatch(
        ns: Namespace, fhir: httpx.Client, hapi: Any, orthanc: Any, tmp_path: Path) -> None:
    other = ehr.create(fhir, ehr.patient(ns, "Other", "Olga") | {"identifier": [
        ehr.identifier("MR", "urn:oid:1.2.3.4.9", ns.patient_id(2))]})

    def another_patient(images: list[Dataset]) -> None:
        for ds in images:
            ds.PatientID = ns.patient_id(2)
            ds.PatientName = "Other^Olga"

    done = await _perform(ns, fhir, hapi, orthanc, tmp_path, images=another_patient)
    assert done.study["subject"]["reference"] == f"Patient/{other['id']}"
    # the order is for another patient: neither the sync nor the worklist links it
    assert f"ServiceRequest/{done.order['id']}" not in [
        b.get("reference") for b in done.study.get("basedOn", [])]
    assert done.link is not None and done.link.status == "failed"
    assert "not the subject" in str(done.link.last_error)


async def test_with_needs_study_the_order_completes_when_its_study_came_back(
        ns: Namespace, fhir: httpx.Client, hapi: Any, orthanc: Any, tmp_path: Path) -> None:
    done = await _perform(ns, fhir, hapi, orthanc, tmp_path, needs_study=True)
    assert [b.get("reference") for b in done.study["basedOn"]] == \
        [f"ServiceRequest/{done.order['id']}"]
    assert _status(fhir, done.order) == "completed"

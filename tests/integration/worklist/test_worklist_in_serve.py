"""``imaging-bridge serve`` runs the worklist when ``worklist.enabled`` (a room service):
DCMTK's findscu finds an order that existed at start-up and one created while it runs
(within the poll interval), and the MPPS SCP answers on the same AE."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from samples.modality import Modality
from tests.integration.serve_helpers import ServeProcess, serve_config
from tests.integration.worklist import worklist_ehr as ehr
from tests.integration.worklist.worklist_ehr import MODALITY_AE, SCP_AE, findscu
from tests.support.ports import free_port
from tests.support.waits import wait_until

if TYPE_CHECKING:
    from tests.integration.conftest import Namespace

pytestmark = pytest.mark.integration


def test_serve_runs_the_worklist_and_its_mpps_scp(
        ns: Namespace, fhir: httpx.Client, hapi: Any,
        orthanc_factory: Callable[..., Any], tmp_path: Path) -> None:
    patient = ehr.create(fhir, ehr.patient(ns, "Serve", "Selma"))
    ehr.create(fhir, ehr.my_order(ns, patient["id"], 1))
    port = free_port()
    worklist = ehr.worklist_settings(ns, interval=0.5).model_dump(mode="json")
    worklist["port"] = port
    config = serve_config(orthanc_factory(), hapi, tmp_path, ns, worklist=worklist)

    attempts = itertools.count()

    def accessions(out: str) -> list[str] | None:
        answer = findscu(port, [f"PatientID={ns.patient_id()}", "AccessionNumber"],
                         tmp_path / f"{out}-{next(attempts)}")  # no answer files of before
        found = sorted(str(r.AccessionNumber) for r in answer.responses)
        return found if answer.returncode == 0 else None

    with ServeProcess(config, tmp_path):
        assert wait_until(lambda: accessions("first") or None, timeout=30,
                          what="the worklist served by serve") == [ns.accession(1)]
        ehr.create(fhir, ehr.my_order(ns, patient["id"], 2))
        wait_until(lambda: accessions("second") == [ns.accession(1), ns.accession(2)],
                   timeout=30, what="the new order on the worklist")
        modality = Modality(ae_title=MODALITY_AE, host="127.0.0.1", port=port, scp_ae=SCP_AE)
        [item] = modality.worklist(AccessionNumber=ns.accession(2))
        _uid, started = modality.start(item)
        assert started.status == 0

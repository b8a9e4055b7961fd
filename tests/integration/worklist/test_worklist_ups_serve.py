"""UPS-RS (PS3.18 11) in a real ``imaging-bridge serve`` over the shared HAPI: an order
created in the EHR is a workitem (Search by accession, Retrieve), a performer takes it IN
PROGRESS with its Transaction UID (the EHR gets a Procedure in-progress basedOn the order),
the wrong Transaction UID, a second IN PROGRESS and an update without the UID are refused
with the PS3.18 status and a Warning naming the attribute, COMPLETED completes the order
(as an MPPS COMPLETED does) and a repeated COMPLETED is a warning.  ``/status`` shows the
worklist's age and counts."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.integration.admin_helpers import ADMIN_AUTH, ADMIN_HEADERS
from tests.integration.serve_helpers import ServeProcess, serve_config
from tests.integration.worklist import worklist_ehr as ehr
from tests.support.ports import free_port
from tests.support.waits import wait_until

if TYPE_CHECKING:
    from tests.integration.conftest import Namespace

pytestmark = pytest.mark.integration

UPS_TOKEN = "ups-performer-token-0123456789"
AUTH = {"Authorization": f"Bearer {UPS_TOKEN}"}
JSON = {"Content-Type": "application/dicom+json"}
NO_CACHE = {**ehr.FHIR_JSON, "Cache-Control": "no-cache"}
TXN = "2.25.1234567890123456789"


def _state(state: str, txn: str | None = None) -> list[dict[str, Any]]:
    ds: dict[str, Any] = {"00741000": {"vr": "CS", "Value": [state]}}
    if txn:
        ds["00081195"] = {"vr": "UI", "Value": [txn]}
    return [ds]


def _value(ds: dict[str, Any], tag: str) -> Any:
    return (ds.get(tag) or {}).get("Value", [None])[0]


def test_ups_rs_worklist_in_serve(ns: Namespace, fhir: httpx.Client, hapi: Any,
                                  orthanc_factory: Callable[..., Any], tmp_path: Path) -> None:
    patient = ehr.create(fhir, ehr.patient(ns, "Ups", "Uma"))
    order = ehr.create(fhir, ehr.my_order(ns, patient["id"], 1))
    worklist = ehr.worklist_settings(ns, interval=0.5).model_dump(mode="json")
    worklist.update(port=free_port(), ups_auth={"bearer_tokens": [UPS_TOKEN]})
    config = serve_config(orthanc_factory(), hapi, tmp_path, ns, worklist=worklist)
    config["api"]["admin_auth"] = ADMIN_AUTH

    with ServeProcess(config, tmp_path) as serve, \
            httpx.Client(base_url=serve.url, timeout=30) as api:
        search = {"ReferencedRequestSequence.AccessionNumber": ns.accession(1)}
        assert api.get("/dicom-web/workitems", params=search).status_code == 401

        def found() -> list[dict[str, Any]] | None:
            r = api.get("/dicom-web/workitems", params=search, headers=AUTH)
            return r.json() if r.status_code == 200 else None

        [wi] = wait_until(found, timeout=30, what="the order as a workitem")
        uid = _value(wi, "00080018")
        assert _value(wi, "00741000") == "SCHEDULED"
        assert _value(wi, "00100020") == ns.patient_id()
        assert _value(wi["0040A370"]["Value"][0], "00080050") == ns.accession(1)
        # QIDO-style matching: a wildcard on the name, a DT range, no match -> 204
        assert len(api.get("/dicom-web/workitems", headers=AUTH, params={
            "PatientName": "Ups*", "PatientID": ns.patient_id(),
            "ScheduledProcedureStepStartDateTime": "20000101-"}).json()) == 1
        assert api.get("/dicom-web/workitems", headers=AUTH, params={
            "PatientID": ns.patient_id(), "ScheduledProcedureStepStartDateTime": "-20000101",
        }).status_code == 204
        bad = api.get("/dicom-web/workitems", headers=AUTH, params={"NoSuchKey": "1"})
        assert bad.status_code == 400 and "NoSuchKey" in bad.headers["warning"]

        [got] = api.get(f"/dicom-web/workitems/{uid}", headers=AUTH).json()
        assert _value(got, "00080018") == uid
        assert api.get("/dicom-web/workitems/1.2.3", headers=AUTH).status_code == 404

        # SCHEDULED -> COMPLETED is refused; -> IN PROGRESS without a Transaction UID: 400
        r = api.put(f"/dicom-web/workitems/{uid}/state", json=_state("COMPLETED", TXN),
                    headers={**AUTH, **JSON})
        assert r.status_code == 409 and "ProcedureStepState" in r.headers["warning"]
        r = api.put(f"/dicom-web/workitems/{uid}/state", json=_state("IN PROGRESS"),
                    headers={**AUTH, **JSON})
        assert r.status_code == 400 and "TransactionUID" in r.headers["warning"]
        r = api.put(f"/dicom-web/workitems/{uid}/state", json=_state("IN PROGRESS", TXN),
                    headers={**AUTH, **JSON})
        assert r.status_code == 200, r.text
        r = api.put(f"/dicom-web/workitems/{uid}/state", json=_state("IN PROGRESS", TXN),
                    headers={**AUTH, **JSON})
        assert r.status_code == 409 and "ProcedureStepState" in r.headers["warning"]

        def procedure_status() -> str | None:
            bundle = fhir.get("/Procedure", params={"based-on": f"ServiceRequest/{order['id']}"},
                              headers=NO_CACHE).json()
            entries = bundle.get("entry") or []
            return str(entries[0]["resource"]["status"]) if entries else None

        assert wait_until(procedure_status, timeout=30,
                          what="the Procedure in progress") == "in-progress"

        # Update Workitem: the Transaction UID required, then the attribute kept
        label = [{"00741204": {"vr": "LO", "Value": ["performed by ups"]}}]
        r = api.post(f"/dicom-web/workitems/{uid}", json=label, headers={**AUTH, **JSON})
        assert r.status_code == 400 and "TransactionUID" in r.headers["warning"]
        r = api.post(f"/dicom-web/workitems/{uid}", params={"transaction": "2.25.9"},
                     json=label, headers={**AUTH, **JSON})
        assert r.status_code == 409 and "TransactionUID" in r.headers["warning"]
        assert api.post(f"/dicom-web/workitems/{uid}", params={"transaction": TXN},
                        json=label, headers={**AUTH, **JSON}).status_code == 200
        [got] = api.get(f"/dicom-web/workitems/{uid}", headers=AUTH).json()
        assert _value(got, "00741204") == "performed by ups"
        assert _value(got, "00741000") == "IN PROGRESS"
        assert "00081195" not in got  # never returned (PS3.18 11.5.3)

        r = api.put(f"/dicom-web/workitems/{uid}/state", json=_state("COMPLETED", "2.25.9"),
                    headers={**AUTH, **JSON})
        assert r.status_code == 409 and "TransactionUID" in r.headers["warning"]
        assert api.put(f"/dicom-web/workitems/{uid}/state", json=_state("COMPLETED", TXN),
                       headers={**AUTH, **JSON}).status_code == 200
        r = api.put(f"/dicom-web/workitems/{uid}/state", json=_state("COMPLETED", TXN),
                    headers={**AUTH, **JSON})
        assert r.status_code == 200 and "already COMPLETED" in r.headers["warning"]

        def order_status() -> str | None:
            got = str(fhir.get(f"/ServiceRequest/{order['id']}", headers=NO_CACHE)
                      .json()["status"])
            return got if got == "completed" else None

        wait_until(order_status, timeout=30, what="the order completed")
        assert procedure_status() == "completed"

        status = api.get("/status", headers=ADMIN_HEADERS).json()["rooms"]["worklist"]
        assert status["last_error"] is None and status["polls"] >= 1
        assert status["age_seconds"] is not None and status["age_seconds"] < 30


NOTIFY_TOKEN = "order-notify-token-0123456789"


def test_an_order_notification_makes_the_worklist_poll_at_once(
        ns: Namespace, fhir: httpx.Client, hapi: Any,
        orthanc_factory: Callable[..., Any], tmp_path: Path) -> None:
    """With a poll interval of 10 minutes, an order created in HAPI is a workitem within
    seconds of the rest-hook notification (what HAPI's Subscription would POST)."""
    patient = ehr.create(fhir, ehr.patient(ns, "Notified", "Nina"))
    worklist = ehr.worklist_settings(ns, interval=600).model_dump(mode="json")
    worklist.update(port=free_port(), ups_auth={"bearer_tokens": [UPS_TOKEN]},
                    notification_auth={"bearer_tokens": [NOTIFY_TOKEN]})
    config = serve_config(orthanc_factory(), hapi, tmp_path, ns, worklist=worklist)
    config["api"]["admin_auth"] = ADMIN_AUTH

    with ServeProcess(config, tmp_path) as serve, \
            httpx.Client(base_url=serve.url, timeout=30) as api:
        search = {"ReferencedRequestSequence.AccessionNumber": ns.accession(1)}
        assert api.post("/worklist/notify").status_code == 401
        wait_until(lambda: api.get("/status", headers=ADMIN_HEADERS).json()
                   .get("rooms", {}).get("worklist", {}).get("polls", 0) >= 1,
                   timeout=30, what="the first poll")
        ehr.create(fhir, ehr.my_order(ns, patient["id"], 1))
        assert api.get("/dicom-web/workitems", params=search, headers=AUTH).status_code == 204
        started = time.monotonic()
        notify = {"Authorization": f"Bearer {NOTIFY_TOKEN}"}
        assert api.post("/worklist/notify", headers=notify).status_code == 200
        wait_until(lambda: api.get("/dicom-web/workitems", params=search,
                                   headers=AUTH).status_code == 200,
                   timeout=10, what="the notified order as a workitem")
        assert time.monotonic() - started < 5  # not the 600 s poll
        status = api.get("/status", headers=ADMIN_HEADERS).json()["rooms"]["worklist"]
        assert status["notifications"] == 1

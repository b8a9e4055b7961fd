"""Reports a Modality Performed Procedure Step to the EHR (IHE RAD SWF.b, RAD-6/RAD-7 in
FHIR terms): one FHIR R4 ``Procedure`` per MPPS instance, basedOn the order it performs.

=================  ======================================================================
MPPS status        the EHR sees
=================  ======================================================================
IN PROGRESS        Procedure.status ``in-progress``, performedPeriod.start
COMPLETED          Procedure.status ``completed``, performedPeriod.end; the order
                   (ServiceRequest) ``completed`` when ``complete_order`` (it leaves the
                   worklist at the next poll), with ``needs_study`` only once an
                   ImagingStudy is basedOn it (the study link then runs this again)
DISCONTINUED       Procedure.status ``stopped`` (it had started: R4 ``not-done`` is for
                   a procedure never begun), statusReason from the Discontinuation Reason
                   Code Sequence (0040,0281); the order stays active
=================  ======================================================================

The Procedure is written by a conditional update on its identifier (the MPPS SOP Instance
UID as ``urn:dicom:uid`` / ``urn:oid:``), so re-running a report rewrites the same
resource.  The order is found by the Scheduled Step Attributes' AccessionNumber
(``ServiceRequest?identifier=<accession>``), else by the Study Instance UID the order
carries.  A task runs on the instance's *latest* state: an IN PROGRESS report that runs
after the COMPLETED N-SET writes ``completed`` directly.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import zoneinfo
from collections.abc import Mapping
from typing import Any

from pydicom.dataset import Dataset

from bridge.errors import Permanent
from bridge.fhir.client import FhirClient
from bridge.jsonbytes import loads
from bridge.state.tasks import Task
from bridge.worklist.mpps import COMPLETED, DISCONTINUED, IN_PROGRESS, MppsRecord
from bridge.worklist.mpps_store import MppsStore, record_of

logger = logging.getLogger(__name__)

_PROCEDURE_STATUS = {IN_PROGRESS: "in-progress", COMPLETED: "completed",
                     DISCONTINUED: "stopped"}
#: DICOM coding scheme designators with a FHIR system (PS3.16 Table 8-1)
_SYSTEMS = {"DCM": "http://dicom.nema.org/resources/ontology/DCM",
            "SCT": "http://snomed.info/sct", "LN": "http://loinc.org"}
UID_SYSTEM = "urn:dicom:uid"


class OrderNotFound(Permanent):
    """No ServiceRequest matches the step's accession or Study Instance UID."""

    kind = "mpps-order"


def _instant(date: Any, time: Any, tz: zoneinfo.ZoneInfo) -> str | None:
    """DA + TM (PS3.5 6.2) as a FHIR dateTime in the site's time zone."""
    d = str(date or "").strip()
    if len(d) != 8 or not d.isdigit():
        return None
    t = str(time or "").strip().split(".")[0].ljust(6, "0")[:6]
    try:
        when = dt.datetime.strptime(d + (t if t.isdigit() else "000000"), "%Y%m%d%H%M%S")
    except ValueError:
        return None
    return when.replace(tzinfo=tz).isoformat()


def _concept(items: Any) -> dict[str, Any] | None:
    for item in items or ():
        code, scheme = str(item.get("CodeValue", "")), str(item.get("CodingSchemeDesignator", ""))
        meaning = str(item.get("CodeMeaning", ""))
        if not code and not meaning:
            continue
        coding = {"system": _SYSTEMS.get(scheme, f"urn:dicom:csd:{scheme}"), "code": code,
                  "display": meaning} if code else None
        return {**({"coding": [coding]} if coding else {}), "text": meaning or code}
    return None


def procedure_of(record: MppsRecord, order: Mapping[str, Any], *,
                 timezone: str) -> dict[str, Any]:
    """The Procedure reporting ``record``, basedOn ``order``."""
    ds: Dataset = record.dataset()
    tz = zoneinfo.ZoneInfo(timezone)
    period = {k: v for k, v in (
        ("start", _instant(ds.get("PerformedProcedureStepStartDate"),
                           ds.get("PerformedProcedureStepStartTime"), tz)),
        ("end", _instant(ds.get("PerformedProcedureStepEndDate"),
                         ds.get("PerformedProcedureStepEndTime"), tz)
         if record.status != IN_PROGRESS else None)) if v}
    procedure: dict[str, Any] = {
        "resourceType": "Procedure",
        "identifier": [{"system": UID_SYSTEM, "value": f"urn:oid:{record.sop_instance_uid}"}],
        "basedOn": [{"reference": f"ServiceRequest/{order['id']}"}],
        "status": _PROCEDURE_STATUS[record.status],
        "subject": order.get("subject"),
    }
    if order.get("code"):
        procedure["code"] = order["code"]
    if period:
        procedure["performedPeriod"] = period
    if record.status == DISCONTINUED:
        reason = _concept(ds.get("PerformedProcedureStepDiscontinuationReasonCodeSequence"))
        if reason:
            procedure["statusReason"] = reason
    return procedure


class ProgressReporter:
    """The ``worklist.mpps`` task handler: reads the step, writes its Procedure."""

    def __init__(self, *, fhir: FhirClient, store: MppsStore, timezone: str,
                 complete_order: bool = True, needs_study: bool = False) -> None:
        self._fhir = fhir
        self._store = store
        self._timezone = timezone
        self._complete_order = complete_order
        self._needs_study = needs_study

    async def _study_linked(self, order: Mapping[str, Any]) -> bool:
        """Whether an ImagingStudy is basedOn the order (the study came back).  R4 names the
        search parameter ``basedon`` for ImagingStudy (``based-on`` elsewhere)."""
        bundle = await self._fhir.search("ImagingStudy", [
            ("basedon", f"ServiceRequest/{order['id']}"), ("_count", "1"),
            ("_elements", "id")])
        return any((e.get("resource") or {}).get("resourceType") == "ImagingStudy"
                   for e in bundle.get("entry") or ())

    async def _order(self, record: MppsRecord) -> dict[str, Any]:
        searches: list[str] = []
        for ref in record.references:
            if ref["AccessionNumber"]:
                searches.append(ref["AccessionNumber"])
            if ref["StudyInstanceUID"]:
                searches.append(f"{UID_SYSTEM}|urn:oid:{ref['StudyInstanceUID']}")
        for value in dict.fromkeys(searches):
            bundle = await self._fhir.search("ServiceRequest", [("identifier", value)])
            found = [e["resource"] for e in bundle.get("entry") or ()
                     if (e.get("resource") or {}).get("resourceType") == "ServiceRequest"]
            if found:
                order: dict[str, Any] = found[0]
                return order
        raise OrderNotFound("no ServiceRequest has the step's accession or Study Instance "
                            "UID", )

    async def handle(self, task: Task) -> dict[str, Any]:
        record = record_of(await asyncio.to_thread(self._store.mpps, task.key))
        if record is None:
            raise Permanent(f"no MPPS instance {task.key}")
        order = await self._order(record)
        procedure = procedure_of(record, order, timezone=self._timezone)
        resp = await self._fhir.request(
            "PUT", "Procedure", json=procedure, interaction="mpps-procedure",
            params=[("identifier", f"{UID_SYSTEM}|urn:oid:{record.sop_instance_uid}")])
        written = loads(resp.content) if resp.content else {}
        result = {"order": f"ServiceRequest/{order['id']}", "status": procedure["status"],
                  "procedure": f"Procedure/{written.get('id', '')}"}
        if record.status == COMPLETED and self._complete_order \
                and order.get("status") == "active":
            if self._needs_study and not await self._study_linked(order):
                # the study link (worklist.link) queues this report again
                result["order_status"] = "waiting for the study"
            else:
                await self._complete(order)
                result["order_status"] = "completed"
        logger.info("mpps reported", extra={"status": procedure["status"]})
        return result

    async def _complete(self, order: Mapping[str, Any]) -> None:
        """The order done (R4 request-status ``completed``), if nobody changed it since
        it was read (If-Match: a concurrent change is a Conflict, retried)."""
        version = (order.get("meta") or {}).get("versionId")
        headers = {"If-Match": f'W/"{version}"'} if version else {}
        await self._fhir.request("PUT", f"ServiceRequest/{order['id']}",
                                 json={**order, "status": "completed"},
                                 headers=headers, interaction="order-complete")

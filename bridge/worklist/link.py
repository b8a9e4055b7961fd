"""Links a synced study to the order it was performed for, by the Study Instance UID the
worklist gave the modality (issue 17, "closing the loop"; IHE RAD SWF.b).

The sync links an ImagingStudy to a ServiceRequest when the study's accession (system and
value) is an identifier of the order (``bridge/mapping/identifiers.py``).  That misses
when the modality did not copy the accession's issuer, and it cannot tell a study
acquired for the wrong patient.  This follow-up of the sync (task ``worklist.link``, key
``<archive>/<study uid>``) makes the link certain:

1. the orders are found by the study's accession numbers (value only, any system), and
   only an order whose worklist Study Instance UID (:func:`study_instance_uid`,
   deterministic) *is* the study's is kept; else the order this process scheduled with
   that Study Instance UID (:meth:`OrderBook.order_of_study`);
2. a study whose subject is not the order's subject is *not* linked (a link the sync made
   by accession is removed): the task fails with :class:`PatientMismatch` (the
   reconciliation list: ``imaging-bridge worklist mismatches``; IHE Patient Information
   Reconciliation); the sync writes the study again only when it changes, and each write
   queues this task again;
3. otherwise the ImagingStudy gets ``basedOn`` the order (literal reference), unless the
   sync already wrote it, by an update conditional on the version read (If-Match); the
   MPPS reports of the order's completed steps are queued again (with
   ``complete_order_needs_study`` the order is completed only now).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from bridge.errors import Permanent, Waiting
from bridge.fhir.client import FhirClient
from bridge.state.tasks import Task
from bridge.worklist.errors import OrderDataError
from bridge.worklist.mapper import study_instance_uid
from bridge.worklist.model import WorklistMapping
from bridge.worklist.orders import OrderBook

logger = logging.getLogger(__name__)

#: the task kind the sync queues for each study it writes when the worklist is enabled
WORKLIST_LINK = "worklist.link"
_V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


class PatientMismatch(Permanent):
    """The study's patient is not the order's: not linked, listed for reconciliation."""

    kind = "worklist-patient-mismatch"


class StudyNotWritten(Waiting):
    """The ImagingStudy is not (yet) in the EHR: try again later."""

    kind = "worklist-study-missing"


def _entries(bundle: Mapping[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry") or ()
            if (e.get("resource") or {}).get("resourceType") == resource_type]


def _accessions(study: Mapping[str, Any]) -> list[str]:
    return [str(i["value"]) for i in study.get("identifier") or ()
            if i.get("value") and any(c.get("code") == "ACSN" for c in
                                      (i.get("type") or {}).get("coding") or ())]


class StudyLinker:
    """The ``worklist.link`` task handler."""

    def __init__(self, *, fhir: FhirClient, mapping: WorklistMapping,
                 book: OrderBook | None = None,
                 report_again: Callable[[str], None] | None = None) -> None:
        self._fhir = fhir
        self._mapping = mapping
        self._book = book
        #: queues the MPPS report of a step again (its UID): a COMPLETED step waiting for
        #: the study completes the order now (``complete_order_needs_study``)
        self._report_again = report_again

    async def _steps_done(self, ref: str) -> None:
        """Queue again the reports of the order's completed steps (their Procedures)."""
        if self._report_again is None:
            return
        bundle = await self._fhir.search("Procedure", [("based-on", ref),
                                                       ("status", "completed")])
        for procedure in _entries(bundle, "Procedure"):
            for ident in procedure.get("identifier") or ():
                value = str(ident.get("value") or "")
                if ident.get("system") == "urn:dicom:uid" and value.startswith("urn:oid:"):
                    await asyncio.to_thread(self._report_again, value[len("urn:oid:"):])

    def _performs(self, order: Mapping[str, Any], study_uid: str) -> bool:
        try:
            return study_instance_uid(order, self._mapping) == study_uid
        except OrderDataError:
            return False

    async def _order(self, study: Mapping[str, Any], study_uid: str) -> dict[str, Any] | None:
        for accession in dict.fromkeys(_accessions(study)):
            bundle = await self._fhir.search("ServiceRequest", [("identifier", accession)])
            for found in _entries(bundle, "ServiceRequest"):
                if self._performs(found, study_uid):
                    return found
        order_id = self._book.order_of_study(study_uid) if self._book else None
        if order_id is not None:
            order: dict[str, Any] = await self._fhir.read("ServiceRequest", order_id)
            return order
        return None

    async def handle(self, task: Task) -> dict[str, Any]:
        study_uid = task.key.rpartition("/")[2]
        bundle = await self._fhir.search(
            "ImagingStudy", [("identifier", f"urn:dicom:uid|urn:oid:{study_uid}")])
        studies = _entries(bundle, "ImagingStudy")
        if not studies:
            raise StudyNotWritten(f"no ImagingStudy for {study_uid} yet")
        study = studies[0]
        order = await self._order(study, study_uid)
        if order is None:
            return {"linked": None, "reason": "no order has this Study Instance UID"}
        ref = f"ServiceRequest/{order['id']}"
        subject = (study.get("subject") or {}).get("reference")
        expected = (order.get("subject") or {}).get("reference")
        based_on = list(study.get("basedOn") or [])
        if subject != expected:
            logger.warning("worklist study of another patient", extra={
                "study_uid": study_uid, "order": ref})
            if any(b.get("reference") == ref for b in based_on):
                # the sync linked it by accession, whatever the patient: undone
                await self._write(study, [b for b in based_on if b.get("reference") != ref])
            raise PatientMismatch(f"the study's subject {subject} is not the subject "
                                  f"{expected} of {ref}: not linked")
        if any(b.get("reference") == ref for b in based_on):
            await self._steps_done(ref)
            return {"linked": ref, "by": "sync"}
        # the order's logical reference by identifier (an accession the sync could not
        # resolve) is replaced by the literal one
        accessions = set(_accessions(study))
        kept = [b for b in based_on if b.get("reference")
                or (b.get("identifier") or {}).get("value") not in accessions]
        await self._write(study, [*kept, {"reference": ref}])
        await self._steps_done(ref)
        logger.info("worklist study linked", extra={"study_uid": study_uid, "order": ref})
        return {"linked": ref, "by": "worklist"}

    async def _write(self, study: Mapping[str, Any], based_on: list[Any]) -> None:
        """The ImagingStudy with ``based_on``, if nobody changed it since it was read."""
        changed = {**study, "basedOn": based_on}
        if not based_on:
            changed.pop("basedOn")
        version = (study.get("meta") or {}).get("versionId")
        await self._fhir.request("PUT", f"ImagingStudy/{study['id']}", json=changed,
                                 headers={"If-Match": f'W/"{version}"'} if version else {},
                                 interaction="worklist-link")

"""The delete policy: what happens to our ImagingStudy when its study leaves the archive.

Issue 5, "Deletes".  Called by the runner when the archive answers that a claimed study is
gone (:class:`~bridge.errors.StudyGone`: WADO-RS metadata 404), whatever brought the study
there (a delete notification, reconciliation, a poll).  Policies (``realtime.delete_policy``):

* ``delete``: DELETE ImagingStudy/{id} (FHIR R4 3.1.0.7), together with the reports and
  dose Observations this bridge derived from it (they reference it);
* ``entered-in-error``: update the resource with ``status = entered-in-error`` (R4
  ImagingStudy.status; the record stays, flagged as never valid);
* ``keep``: leave it; the study is recorded as failed with kind ``study-gone`` so
  ``imaging-bridge failures list`` reports it.

Only resources this bridge wrote are touched: found by the study's identifier
(``urn:dicom:uid``) *and* carrying our ``meta.tag`` (:data:`BRIDGE_TAG`), checked again on
each returned resource.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter

from bridge.config import DeletePolicy
from bridge.fhir.client import FhirClient, Resource
from bridge.state import ClaimedStudy, StateStore
from bridge.state.enums import AuditAction
from bridge.state.tasks import task_key
from bridge.sync.assemble import BRIDGE_TAG

log = logging.getLogger(__name__)

DELETES = Counter(
    "bridge_study_deletes_total", "Studies gone from the archive, by delete policy applied",
    ["policy"],
)

TAG_QUERY = f"{BRIDGE_TAG['system']}|{BRIDGE_TAG['code']}"


def is_ours(resource: Resource) -> bool:
    """Whether ``resource`` carries the bridge's meta.tag."""
    return any(t.get("system") == BRIDGE_TAG["system"] and t.get("code") == BRIDGE_TAG["code"]
               for t in (resource.get("meta") or {}).get("tag", []) or [])


async def our_imaging_studies(fhir: FhirClient, study_uid: str) -> list[Resource]:
    """Our ImagingStudy resources for the study (normally one)."""
    found: list[Resource] = []
    params = [("identifier", f"urn:dicom:uid|urn:oid:{study_uid}"), ("_tag", TAG_QUERY),
              ("_count", "50")]
    async for res in fhir.search_all("ImagingStudy", params):
        if res.get("resourceType") == "ImagingStudy" and is_ours(res):
            found.append(res)
    return found


async def our_derived(fhir: FhirClient, study: Resource) -> list[str]:
    """``Type/id`` of the resources this bridge derived from the study's ImagingStudy
    (issue 16: the report DiagnosticReports and dose Observations of the record follow-up),
    which reference it.  Observations by their ``part-of`` search parameter; R4 has no
    DiagnosticReport search on ``imagingStudy``, so the subject's are read and those
    naming the study kept."""
    ref = f"ImagingStudy/{study['id']}"
    found: list[str] = []
    async for res in fhir.search_all("Observation", [("part-of", ref), ("_tag", TAG_QUERY),
                                                     ("_count", "100")]):
        if res.get("resourceType") == "Observation" and is_ours(res):
            found.append(f"Observation/{res['id']}")
    subject = (study.get("subject") or {}).get("reference")
    if subject:
        async for res in fhir.search_all("DiagnosticReport", [
                ("subject", subject), ("_tag", TAG_QUERY), ("_count", "100")]):
            if (res.get("resourceType") == "DiagnosticReport" and is_ours(res)
                    and any(r.get("reference") == ref for r in res.get("imagingStudy", []))):
                found.append(f"DiagnosticReport/{res['id']}")
    return found


async def _delete_all(fhir: FhirClient, references: Sequence[str]) -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [{"request": {"method": "DELETE", "url": r}} for r in references]}
    await fhir.request("POST", "", json=bundle, interaction="transaction")


@dataclass
class DeleteOutcome:
    policy: DeletePolicy
    fhir_ids: list[str] = field(default_factory=list)
    version: str | None = None
    #: our resources derived from the study, deleted with it (``Type/id``)
    derived: list[str] = field(default_factory=list)

    def describe(self) -> str:
        ids = ", ".join(f"ImagingStudy/{i}" for i in self.fhir_ids) or "no ImagingStudy"
        return f"policy {self.policy.value}: {ids}"


async def apply_policy(
    fhir: FhirClient, study_uid: str, *, policy: DeletePolicy
) -> DeleteOutcome:
    """Apply ``policy`` to our ImagingStudy resources of ``study_uid`` in the FHIR server."""
    outcome = DeleteOutcome(policy)
    for res in await our_imaging_studies(fhir, study_uid):
        rid = str(res["id"])
        outcome.fhir_ids.append(rid)
        if policy is DeletePolicy.DELETE:
            derived = await our_derived(fhir, res)
            if not derived:
                await fhir.request("DELETE", f"ImagingStudy/{rid}", interaction="delete")
            else:
                # our reports and dose Observations of the study reference it, and a server
                # enforcing referential integrity (HAPI) refuses to delete a referenced
                # resource: they go with it, in one transaction (R4 3.1.0.11.2: checked
                # once the whole transaction is applied)
                await _delete_all(fhir, [*derived, f"ImagingStudy/{rid}"])
                outcome.derived.extend(derived)
        elif policy is DeletePolicy.ENTERED_IN_ERROR and res.get("status") != "entered-in-error":
            updated: dict[str, Any] = {**res, "status": "entered-in-error"}
            version = (res.get("meta") or {}).get("versionId")
            headers = {"If-Match": f'W/"{version}"'} if version else {}
            # versioned update (R4 3.1.0.4.2): a concurrent change gives 412 -> Conflict, retried
            resp = await fhir.request("PUT", f"ImagingStudy/{rid}", json=updated,
                                      interaction="update", headers=headers)
            body = resp.json() if resp.content else {}
            outcome.version = str((body.get("meta") or {}).get("versionId") or "") or None
    return outcome


class GoneHandler:
    """Settles a claimed study the archive no longer has (plugged into the runner)."""

    def __init__(self, *, fhir: FhirClient, store: StateStore, policy: DeletePolicy,
                 follow_ups: Sequence[str] = ()) -> None:
        self.fhir = fhir
        self.store = store
        self.policy = policy
        #: task kinds queued for a study verified gone, whatever the policy (the sharing
        #: publisher deprecates the study's manifest)
        self.follow_ups = tuple(follow_ups)

    async def __call__(self, claim: ClaimedStudy, *, worker: str) -> str | None:
        """Apply the policy; returns a failure message for ``keep`` (the runner records it),
        ``None`` when the study was recorded as deleted.  FHIR errors propagate (typed)."""
        outcome = await apply_policy(self.fhir, claim.study_uid, policy=self.policy)
        DELETES.labels(policy=self.policy.value).inc()
        extra = {"study_uid": claim.study_uid, "archive": claim.archive,
                 "policy": self.policy.value, "resources": len(outcome.fhir_ids)}
        if self.policy is DeletePolicy.KEEP:
            log.warning("study gone from the archive; ImagingStudy kept (policy keep)",
                        extra=extra)
            for kind in self.follow_ups:  # a retried claim queues them again: harmless
                await asyncio.to_thread(self.store.enqueue_tasks, kind,
                                        [task_key(claim.archive, claim.study_uid)])
            return f"study gone from the archive; {outcome.describe()} left unchanged"
        action = AuditAction.DELETE if self.policy is DeletePolicy.DELETE \
            else AuditAction.MARK_ENTERED_IN_ERROR
        await asyncio.to_thread(
            self.store.mark_deleted, claim.archive, claim.study_uid, action=action,
            fhir_id=outcome.fhir_ids[0] if outcome.fhir_ids else None,
            fhir_version=outcome.version, worker=worker, claimed_seq=claim.claimed_seq,
            follow_ups=self.follow_ups,
        )
        log.info("study gone from the archive; delete policy applied", extra=extra)
        return None

"""Reconciliation: compare the archive, the FHIR server and the state store; report drift.

Issue 5, "Reconciliation".  For one archive and an optional StudyDate window:

* the archive's studies come from QIDO-RS (PS3.18 10.6, ``StudyDate`` range matching);
* the FHIR side is *our* ImagingStudy resources (``_tag`` = :data:`BRIDGE_TAG`, identified
  by their ``urn:dicom:uid`` identifier), ``started`` within the window widened by a day
  each side (time zones), that belong to this archive: the store holds the study under
  this archive's name, or the archive has it.  Not by Endpoint address: with the gateway
  on, the Endpoints point at the gateway, not at the archive, and an address is not
  something we own (issue 20);
* the state store says which studies are in flight (due or leased: not drift yet).

Drift kinds: ``missing-in-fhir``, ``stale`` (series/instance counts or modalities differ),
``gone-from-archive``, ``duplicate`` (several of our ImagingStudy for one study UID),
``failed`` (the store holds a failure for a study the archive has), ``incomplete-search``
(the FHIR server counted more matches than it returned: no conclusion of absence is drawn
from such an answer).  Each candidate is
checked once more by a direct lookup before it is reported, so a study just outside the
window on one side is not reported.  ``fix`` marks studies due (reason ``reconcile``) and
the normal pipeline repairs them, with the hash of the last write forgotten so the
repaired resource is written even if the mapping's output did not change; a gone study
is settled by the delete policy when the worker finds it gone.  Duplicates are reported
only: which one to keep is a human choice.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

from bridge.archive.client import DicomwebClient
from bridge.archive.dicomjson import (
    MODALITIES_IN_STUDY,
    N_STUDY_INSTANCES,
    N_STUDY_SERIES,
    STUDY_UID,
    DicomJson,
    first_int,
    first_str,
    study_fingerprint,
    values,
)
from bridge.errors import StudyGone
from bridge.fhir.client import FhirClient, Resource, SearchTally
from bridge.state import StateStore
from bridge.state.enums import Reason, Status
from bridge.sync.deletes import TAG_QUERY, is_ours, our_imaging_studies
from bridge.sync.patience import Patience
from bridge.sync.poller import dicom_date_range
from bridge.sync.undated import UndatedResult, changed_outside

log = logging.getLogger(__name__)

UID_PREFIX = "urn:oid:"


@dataclass
class Drift:
    kind: str
    study_uid: str
    detail: str
    fhir_ids: list[str] = field(default_factory=list)
    fixed: str | None = None
    #: False for drift that --fix leaves alone (duplicates, studies kept by policy)
    fixable: bool = True


@dataclass
class ReconcileReport:
    archive: str
    start: date | None
    end: date | None
    archive_studies: int = 0
    #: of ``archive_studies``, those found by the undated pass (outside the window)
    undated_studies: int = 0
    fhir_studies: int = 0
    in_flight: int = 0
    drift: list[Drift] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self.drift:
            out[d.kind] = out.get(d.kind, 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "archive": self.archive,
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
            "archive_studies": self.archive_studies,
            "undated_studies": self.undated_studies,
            "fhir_studies": self.fhir_studies,
            "in_flight": self.in_flight,
            "drift_counts": self.counts(),
            "drift": [asdict(d) for d in self.drift],
        }


def _study_uid(resource: Resource) -> str | None:
    for ident in resource.get("identifier", []) or []:
        if ident.get("system") == "urn:dicom:uid":
            return str(ident.get("value", "")).removeprefix(UID_PREFIX) or None
    return None


async def _archive_side(archive: DicomwebClient, start: date | None, end: date | None
                        ) -> dict[str, DicomJson]:
    filters = {"StudyDate": dicom_date_range(start, end)} if start and end else None
    found: dict[str, DicomJson] = {}
    async for study in archive.iter_studies(filters):
        uid = first_str(study, STUDY_UID)
        if uid:
            found[uid] = study
    return found


async def _undated_side(archive: DicomwebClient, store: StateStore, start: date, end: date
                        ) -> dict[str, DicomJson]:
    """Studies outside [start, end] (or with no usable StudyDate) the store does not hold
    with their current fingerprint; an outage ends the reconciliation (the next one retries).
    """
    found: dict[str, DicomJson] = {}
    async for changed in changed_outside(archive, store, start=start, end=end,
                                         patience=Patience(seconds=0.0),
                                         result=UndatedResult(archive.name)):
        found.update((uid, study) for uid, _, study in changed)
    return found


async def _fhir_side(fhir: FhirClient, start: date | None, end: date | None,
                     tally: SearchTally) -> dict[str, list[Resource]]:
    """Our ImagingStudy resources by study UID (of every archive: attributed later)."""
    found: dict[str, list[Resource]] = {}
    params: list[tuple[str, str]] = [("_tag", TAG_QUERY), ("_count", "200")]
    if start and end:
        params += [("started", f"ge{(start - timedelta(days=1)).isoformat()}"),
                   ("started", f"le{(end + timedelta(days=1)).isoformat()}")]
    async for res in fhir.search_all("ImagingStudy", params, tally=tally):
        uid = _study_uid(res)
        if uid and is_ours(res):
            found.setdefault(uid, []).append(res)
    return found


def _staleness(study: DicomJson, resource: Resource) -> str | None:
    problems = []
    for tag, element in ((N_STUDY_SERIES, "numberOfSeries"),
                         (N_STUDY_INSTANCES, "numberOfInstances")):
        want, have = first_int(study, tag), resource.get(element)
        if want is not None and have != want:
            problems.append(f"{element} {have} != archive {want}")
    want_mods = {str(m) for m in values(study, MODALITIES_IN_STUDY)}
    have_mods = {str(m.get("code")) for m in resource.get("modality", []) or []}
    if want_mods and have_mods and want_mods != have_mods:
        problems.append(f"modality {sorted(have_mods)} != archive {sorted(want_mods)}")
    return "; ".join(problems) or None


async def reconcile(
    *,
    archive: DicomwebClient,
    fhir: FhirClient,
    store: StateStore,
    start: date | None = None,
    end: date | None = None,
    fix: bool = False,
) -> ReconcileReport:
    """Compare the three sides for ``archive`` (StudyDate in [start, end], or everything)."""
    report = ReconcileReport(archive.name, start, end)
    tally = SearchTally()
    in_archive, in_fhir = await asyncio.gather(
        _archive_side(archive, start, end), _fhir_side(fhir, start, end, tally))
    if start and end:
        undated = await _undated_side(archive, store, start, end)
        report.undated_studies = len(undated.keys() - in_archive.keys())
        in_archive.update(undated)
    states = {uid: await asyncio.to_thread(store.get_study, archive.name, uid)
              for uid in set(in_archive) | set(in_fhir)}
    # ours for this archive: the store holds the study under this archive, or the archive
    # has it (an ImagingStudy of another archive's study has neither)
    in_fhir = {uid: res for uid, res in in_fhir.items()
               if uid in in_archive or states.get(uid) is not None}
    report.archive_studies, report.fhir_studies = len(in_archive), len(in_fhir)
    if tally.shortfall:
        # R4 3.1.1.4.1: total counts the matches; fewer received and no next link means
        # the server truncated the answer. Absence in it proves nothing.
        report.drift.append(Drift(
            "incomplete-search", "*",
            f"the FHIR server counted {tally.total} ImagingStudy but returned "
            f"{tally.received} (no next link): studies missing from the answer are not "
            f"reported as missing", fixable=False))
    busy = {Status.DUE, Status.LEASED}

    for uid, study in sorted(in_archive.items()):
        state = states.get(uid)
        if state is not None and state.status in busy:
            report.in_flight += 1
            continue
        resources = in_fhir.get(uid)
        if resources is None:
            # outside the widened window on the FHIR side? ask directly before reporting
            resources = await our_imaging_studies(fhir, uid) or None
            if resources is not None and len(resources) > 1:
                in_fhir[uid] = resources  # a duplicate found here is reported below too
        if resources is None:
            report.drift.append(Drift("missing-in-fhir", uid, "in the archive, no ImagingStudy"))
            continue
        if len(resources) > 1:
            continue  # reported below with the other duplicates
        if state is not None and state.status is Status.FAILED:
            report.drift.append(Drift("failed", uid, state.last_error or "failed",
                                      [str(resources[0]["id"])]))
            continue
        stale = _staleness(study, resources[0])
        if stale:
            report.drift.append(Drift("stale", uid, stale, [str(resources[0]["id"])]))

    for uid, resources in sorted(in_fhir.items()):
        ids = [str(r["id"]) for r in resources]
        if len(resources) > 1:
            report.drift.append(Drift("duplicate", uid, f"{len(resources)} ImagingStudy", ids,
                                      fixable=False))
        if uid in in_archive or all(r.get("status") == "entered-in-error" for r in resources):
            continue
        try:
            await archive.study(uid)  # outside the window on the archive side?
        except StudyGone:
            state = states.get(uid)
            if state is not None and state.status in busy:
                report.in_flight += 1
                continue
            kept = (state is not None and state.status is Status.FAILED
                    and state.last_error_kind == StudyGone.kind)
            detail = "ImagingStudy present, study not in the archive" + (
                " (kept: delete policy keep)" if kept else "")
            report.drift.append(Drift("gone-from-archive", uid, detail, ids, fixable=not kept))

    if fix:
        await _fix(report, store, in_archive)
    log.info("reconciliation done", extra={"archive": archive.name, **report.counts()})
    return report


async def _fix(report: ReconcileReport, store: StateStore, in_archive: dict[str, DicomJson]
               ) -> None:
    for drift in report.drift:
        if not drift.fixable:
            drift.fixed = {
                "duplicate": "reported only: choose which ImagingStudy to keep",
                "incomplete-search": "reported only: page the search or raise the "
                                     "server's page limit",
            }.get(drift.kind, "reported only: policy keep")
            continue
        # with the archive's fingerprint, as a poll stores it: the next undated pass then
        # knows the study instead of looking it up in FHIR again
        study = in_archive.get(drift.study_uid)
        if drift.kind in ("missing-in-fhir", "stale"):
            # the EHR's copy is lost or differs: the unchanged mapping output must still be
            # written, so the content-hash skip must not apply
            await asyncio.to_thread(store.forget_write, report.archive, drift.study_uid)
        await asyncio.to_thread(store.mark_due, report.archive, drift.study_uid,
                                reason=Reason.RECONCILE,
                                fingerprint=study_fingerprint(study) if study else None)
        drift.fixed = ("due: the delete policy applies when the worker finds it gone"
                       if drift.kind == "gone-from-archive" else "due: will be re-synced")

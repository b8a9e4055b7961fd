"""The worker: claim due studies, fetch, map, resolve references, write, record.

One study is one unit of work; many studies go to the FHIR server in one ``batch``
(HOUSE_STYLE principle 1).  A study's outcome is recorded only after the FHIR server
confirmed it, and only the runner decides between retry, failure and success.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from bridge.archive.client import DicomwebClient
from bridge.config import FhirSettings, SyncSettings
from bridge.errors import (
    BridgeError,
    ConfigError,
    DicomDataError,
    FhirRejected,
    PatientNotFound,
    Permanent,
    StudyGone,
)
from bridge.fhir.client import FhirClient
from bridge.mapping import EndpointSpec, MappingEngine, MappingResult
from bridge.metrics import (
    FAILURES,
    ORDERS_NOT_LINKED,
    RETRIES,
    STUDIES_SYNCED,
    WRITES_SKIPPED,
)
from bridge.state import ClaimedStudy, Completion, Lane, StateStore, StudyWarning
from bridge.sync import recorded_warnings
from bridge.sync.assemble import (
    References,
    StudyAssembly,
    archive_endpoint_spec,
    endpoint_key,
    with_bridge_tag,
)
from bridge.sync.references import (
    IdentifierKey,
    ReferenceResolver,
    demographics_conflict,
    identifier_query,
    relative_reference,
)
from bridge.sync.settle import Defer, Fail, decide
from bridge.sync.signal import FollowUpSignals

log = logging.getLogger(__name__)


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class DrainStats:
    synced: int = 0
    unchanged: int = 0
    retried: int = 0
    failed: int = 0
    batches: int = 0

    @property
    def processed(self) -> int:
        return self.synced + self.unchanged + self.retried + self.failed


@dataclass
class _Job:
    claim: ClaimedStudy
    result: MappingResult | None = None
    resource: dict[str, Any] | None = None
    hash: str | None = None
    #: the mapping's warnings as the store keeps them; ``None`` until the study is mapped
    #: (an outcome recorded before that leaves the stored warnings alone)
    warnings: tuple[StudyWarning, ...] | None = None
    #: when this worker claimed it (monotonic), for the per-study log line
    started: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True)
class _Done:
    """A study the FHIR server confirmed (or that needed no write), to record."""

    job: _Job
    fhir_id: str | None
    version: str | None
    action: str


class EndpointFor(Protocol):
    def __call__(self, archive: DicomwebClient) -> EndpointSpec: ...


class OnGone(Protocol):
    """Applies the delete policy to a claimed study the archive no longer has; returns
    ``None`` once recorded as deleted, or a message to record as a failure (policy keep)."""

    async def __call__(self, claim: ClaimedStudy, *, worker: str) -> str | None: ...


class SyncRunner:
    """Drains the work queue of one process.  Safe to run several in separate processes."""

    def __init__(
        self,
        *,
        store: StateStore,
        archives: Mapping[str, DicomwebClient],
        fhir: FhirClient,
        engine: MappingEngine,
        sync: SyncSettings,
        fhir_settings: FhirSettings,
        worker_id: str | None = None,
        endpoint_for: EndpointFor = archive_endpoint_spec,
        on_gone: OnGone | None = None,
        #: final say on the Endpoint resource (the gateway adds requires-access-token)
        endpoint_resource: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None,
        #: Endpoints every ImagingStudy references after its archive's (the gateway's
        #: ihe-iid Endpoint), created once like the archive's
        extra_endpoints: Sequence[dict[str, Any]] = (),
        #: task kinds queued for each study written (``bridge.state.tasks``), in the
        #: transaction that records it synced: the rooms' follow-up work
        follow_ups: Sequence[str] = (),
        #: set when follow-up tasks were queued (wakes the rooms' task workers)
        follow_up_signal: FollowUpSignals | None = None,
    ) -> None:
        self.store = store
        self.archives = archives
        self.fhir = fhir
        self.engine = engine
        self.sync = sync
        self.fhir_settings = fhir_settings
        self.worker_id = worker_id or default_worker_id()
        self.resolver = ReferenceResolver(fhir)
        self._on_gone = on_gone
        self.follow_ups = tuple(follow_ups)
        self.follow_up_signal = follow_up_signal
        # what is written for a mapped study, shared with `imaging-bridge preview`
        self.assembly = StudyAssembly(endpoint_for=endpoint_for,
                                      endpoint_resource=endpoint_resource,
                                      extra_endpoints=extra_endpoints)

    # --- public ---------------------------------------------------------------------------

    async def run_once(self, stats: DrainStats | None = None, *, lane: Lane | None = None
                       ) -> int:
        """Claim and process one batch; return how many studies it held.  ``lane`` claims
        from that lane only (the reserved real-time worker); otherwise both lanes, the
        real-time one first with the store's bulk share kept for bulk work."""
        stats = stats if stats is not None else DrainStats()
        claims = await asyncio.to_thread(
            self.store.claim,
            worker=self.worker_id,
            limit=self.sync.claim_batch,
            lease_seconds=self.sync.lease_seconds,
            lane=lane,
        )
        if not claims:
            return 0
        stats.batches += 1
        await self._process(claims, stats)
        return len(claims)

    async def drain(self, *, stop: asyncio.Event | None = None) -> DrainStats:
        """Process batches until nothing is due now (or ``stop`` is set)."""
        stats = DrainStats()
        while not (stop and stop.is_set()):
            if await self.run_once(stats) == 0:
                break
        return stats

    async def drain_until_settled(
        self, *, max_idle: float, stop: asyncio.Event | None = None, poll: float = 0.5,
        on_batch: Callable[[DrainStats], None] | None = None,
    ) -> DrainStats:
        """Drain, then keep waiting while studies are leased (maybe by a dead worker whose
        lease will expire) or due later (backoff), for at most ``max_idle`` seconds without
        progress.  Studies parked as ``waiting`` (patient not found) are not waited for."""
        stats = DrainStats()
        idle_since = time.monotonic()
        while not (stop and stop.is_set()):
            if await self.run_once(stats):
                idle_since = time.monotonic()
                if on_batch:
                    on_batch(stats)
                continue
            counts = await asyncio.to_thread(self.store.counts)
            if counts.get("due", 0) + counts.get("leased", 0) == 0:
                break
            if time.monotonic() - idle_since > max_idle:
                break
            await asyncio.sleep(poll)
        return stats

    # --- pipeline -------------------------------------------------------------------------

    async def _process(self, claims: Sequence[ClaimedStudy], stats: DrainStats) -> None:
        """The claim's real-time studies go through the pipeline on their own, beside its
        bulk studies: they never wait for the bulk studies' fetches, reference look-ups or
        FHIR batch writes, nor share a FHIR batch with them (issue 19, "Priority lanes")."""
        realtime = [c for c in claims if c.lane is Lane.REALTIME]
        bulk = [c for c in claims if c.lane is not Lane.REALTIME]
        await asyncio.gather(*(self._pipeline(part, stats) for part in (realtime, bulk) if part))

    async def _pipeline(self, claims: Sequence[ClaimedStudy], stats: DrainStats) -> None:
        jobs = [_Job(c) for c in claims]
        await asyncio.gather(*(self._fetch_and_map(j, stats) for j in jobs))
        mapped = [j for j in jobs if j.result is not None]
        if not mapped:
            return
        try:
            await self.resolver.prefetch(
                (self._patient_key(j.result) for j in mapped
                 if j.result and j.result.patient.policy != "identifier-only"),
                (k for j in mapped if j.result for k in self._request_keys(j.result)),
            )
            ready = await self._resolve(mapped, stats)
        except BridgeError as exc:
            for j in mapped:
                await self._settle_error(j.claim, exc, stats, warnings=j.warnings)
            return
        to_write: list[_Job] = []
        unchanged: list[_Done] = []
        for job in ready:
            if job.hash == job.claim.content_hash and job.claim.fhir_id:
                unchanged.append(_Done(job, job.claim.fhir_id, job.claim.fhir_version,
                                       "skip-unchanged"))
            else:
                to_write.append(job)
        if unchanged:
            await self._complete(unchanged)
            for done in unchanged:
                WRITES_SKIPPED.labels(archive=done.job.claim.archive).inc()
            stats.unchanged += len(unchanged)
        size = self.fhir_settings.batch_size
        await asyncio.gather(
            *(self._write(to_write[i:i + size], stats) for i in range(0, len(to_write), size))
        )

    async def _fetch_and_map(self, job: _Job, stats: DrainStats) -> None:
        claim = job.claim
        archive = self.archives.get(claim.archive)
        try:
            if archive is None:
                raise ConfigError(f"archive {claim.archive!r} is no longer configured")
            instances = await archive.study_instances(claim.study_uid)
            result = self.engine.map_study(instances, endpoint=self.assembly.endpoint_spec(archive))
            if result.study_uid != claim.study_uid:
                raise DicomDataError(
                    f"archive returned study {result.study_uid} for {claim.study_uid}",
                    tag="(0020,000D) StudyInstanceUID",
                )
            # the study is mapped: whatever the outcome, it records these warnings
            job.warnings = self._kept_warnings(claim, result)
            if result.patient.value is None and result.patient.policy != "identifier-only":
                raise DicomDataError(
                    f"study {claim.study_uid} has no PatientID; policy "
                    f"{result.patient.policy!r} needs one to find the subject",
                    tag="(0010,0020) PatientID",
                )
            job.result = result
        except BridgeError as exc:
            job.result = None
            await self._settle_error(claim, exc, stats, warnings=job.warnings)

    @staticmethod
    def _kept_warnings(claim: ClaimedStudy, result: MappingResult) -> tuple[StudyWarning, ...]:
        """The mapping's warnings for the store and the metric (values redacted)."""
        kept = recorded_warnings.to_stored(result.warnings)
        if kept:
            recorded_warnings.count(claim.archive, kept)
            log.debug("study mapped with warnings",
                      extra={"study_uid": claim.study_uid, "archive": claim.archive,
                             "warning_codes": ",".join(sorted({w.code for w in kept}))})
        return kept

    @staticmethod
    def _patient_key(result: MappingResult) -> tuple[str, str]:
        return (result.patient.system, result.patient.value or "")

    @staticmethod
    def _request_keys(result: MappingResult) -> list[tuple[str, str]]:
        return [(sr.system, sr.value) for sr in result.service_requests]

    async def _resolve(self, jobs: Sequence[_Job], stats: DrainStats) -> list[_Job]:
        """Fill in references; returns the jobs ready to write (others are settled)."""
        creates: dict[tuple[str, str], dict[str, Any]] = {}
        for job in jobs:
            assert job.result is not None
            key = self._patient_key(job.result)
            ref, _ = self.resolver.patient(key)
            if ref is None and job.result.patient.policy == "create":
                creates[key] = job.result.patient.resource()
        create_errors = await self.resolver.create_patients(creates) if creates else {}
        ready: list[_Job] = []
        for job in jobs:
            result = job.result
            assert result is not None
            key = self._patient_key(result)
            if key in create_errors:
                await self._settle_error(job.claim, create_errors[key], stats,
                                         warnings=job.warnings)
                continue
            policy = result.patient.policy
            ref, found = self.resolver.patient(key) if policy != "identifier-only" \
                else (None, None)
            if ref is None and policy == "match":
                await self._settle_error(
                    job.claim,
                    PatientNotFound(
                        f"no Patient with identifier {key[0]}|<id> in the EHR (policy match)"
                    ),
                    stats,
                    warnings=job.warnings,
                )
                continue
            conflicts = demographics_conflict(found, result.patient.resource())
            if conflicts:
                log.warning("patient demographics differ from the EHR",
                            extra={"study_uid": job.claim.study_uid,
                                   "fields": ",".join(conflicts)})
            archive = job.claim.archive
            endpoints = {endpoint_key(e): await self.resolver.endpoint(archive, e)
                         for e in self.assembly.endpoints(archive, result)}
            requests = self._orders_of(job, ref)
            assembled = self.assembly.study(archive, result, References(
                patient=ref if policy != "identifier-only" else None,
                service_requests=requests, endpoints=endpoints))
            job.resource, job.hash = assembled.resource, assembled.content_hash
            ready.append(job)
        return ready

    def _orders_of(self, job: _Job, patient: str | None) -> dict[IdentifierKey, str]:
        """The orders found by the study's accession identifiers, each linked only if it is
        for the study's own patient: an accession number reused across patients (or a
        wrong one typed at the modality) must not put another patient's order in this
        study's basedOn.  A refused one keeps its identifier, unresolved, and is logged."""
        assert job.result is not None
        linked: dict[IdentifierKey, str] = {}
        for key in self._request_keys(job.result):
            order = self.resolver.service_request(key)
            if order is None:
                continue
            subject = self.resolver.subject_of_request(key)
            if patient is not None and subject is not None \
                    and subject != relative_reference(patient):
                ORDERS_NOT_LINKED.labels(reason="other-patient").inc()
                log.warning("order of another patient not linked", extra={
                    "study_uid": job.claim.study_uid, "order": order})
                continue
            linked[key] = order
        return linked

    async def _write(self, jobs: Sequence[_Job], stats: DrainStats) -> None:
        if not jobs:
            return
        entries = []
        for job in jobs:
            assert job.resource is not None
            uid_key = ("urn:dicom:uid", f"urn:oid:{job.claim.study_uid}")
            entries.append({
                "resource": with_bridge_tag(job.resource),
                # conditional update keyed on the DICOM identifier (R4 3.1.0.4.3): creates the
                # first time, updates after, never duplicates
                "request": {"method": "PUT",
                            "url": f"ImagingStudy?identifier={identifier_query(uid_key)}"},
            })
        try:
            results = await self.fhir.batch(entries, representation=False)
        except BridgeError as exc:
            for job in jobs:
                await self._settle_error(job.claim, exc, stats, warnings=job.warnings)
            return
        written: list[_Done] = []
        for job, res in zip(jobs, results, strict=True):
            if res.error is not None:
                await self._settle_error(job.claim, res.error, stats, warnings=job.warnings)
                continue
            action = "create" if res.status == 201 else "update"
            written.append(_Done(job, res.resource_id, res.version_id, action))
        if not written:
            return
        for done, ok in zip(written, await self._complete(written, written=True),
                            strict=True):
            if ok:
                STUDIES_SYNCED.labels(archive=done.job.claim.archive, action=done.action).inc()
                stats.synced += 1

    async def _complete(self, settled: Sequence[_Done], *, written: bool = False
                        ) -> list[bool]:
        """Record the confirmed studies of one FHIR batch (or the unchanged ones of one
        claim) in one state-store transaction (``complete_many``) rather than one each;
        ``written`` ones queue the follow-up tasks (an unchanged study has nothing new to
        follow up)."""
        recorded = await asyncio.to_thread(
            partial(self.store.complete_many,
                    follow_ups=self.follow_ups if written else ()),
            [Completion(
                archive=d.job.claim.archive,
                study_uid=d.job.claim.study_uid,
                claimed_seq=d.job.claim.claimed_seq,
                action=d.action,
                fingerprint=d.job.claim.fingerprint,
                content_hash=d.job.hash,
                fhir_id=d.fhir_id,
                fhir_version=d.version,
                warnings=d.job.warnings,
            ) for d in settled],
            worker=self.worker_id,
        )
        if written and self.follow_ups and self.follow_up_signal is not None \
                and any(recorded):
            self.follow_up_signal.set()
        now = time.monotonic()
        for done, ok in zip(settled, recorded, strict=True):
            job = done.job
            if not ok:
                log.warning("lease lost before completion; another worker owns the study",
                            extra={"study_uid": job.claim.study_uid})
            else:
                # one line per settled study for operators (issue 20): identifiers and
                # timing only, never the patient
                log.info("study synced", extra={
                    "study_uid": job.claim.study_uid, "archive": job.claim.archive,
                    "outcome": done.action, "seconds": round(now - job.started, 3),
                    "warnings": len(job.warnings or ())})
        return recorded

    async def _settle_error(
        self, claim: ClaimedStudy, exc: BridgeError, stats: DrainStats,
        *, warnings: tuple[StudyWarning, ...] | None = None,
    ) -> None:
        """Record a failed attempt as :func:`bridge.sync.settle.decide` says (the one
        decision between retry and failure); ``warnings`` are those of the attempt's mapping
        (``None`` when it did not get that far)."""
        if isinstance(exc, StudyGone) and self._on_gone is not None:
            try:  # the delete policy (bridge.sync.deletes); its FHIR errors settle as usual
                kept = await self._on_gone(claim, worker=self.worker_id)
            except BridgeError as policy_error:
                exc = policy_error
            else:
                if kept is None:
                    return
                exc = StudyGone(kept)
        extra = {"study_uid": claim.study_uid, "archive": claim.archive, "error_type": exc.kind}
        match decide(exc, attempts=claim.attempts, sync=self.sync):  # bridge.sync.settle
            case Defer(delay=delay, parked=parked):
                log.info("study sync deferred",
                         extra={**extra, "outcome": "deferred", "delay": round(delay, 1)})
                await asyncio.to_thread(
                    self.store.retry_later, claim.archive, claim.study_uid,
                    worker=self.worker_id, claimed_seq=claim.claimed_seq, kind=exc.kind,
                    message=exc.message, delay_seconds=delay, waiting=parked,
                    warnings=warnings,
                )
                RETRIES.labels(archive=claim.archive, kind=exc.kind).inc()
                stats.retried += 1
            case Fail():
                outcome = exc.operation_outcome if isinstance(exc, FhirRejected) else None
                # a Retryable that used up its attempts is worth an operator's look
                level = logging.WARNING if isinstance(exc, Permanent) else logging.ERROR
                log.log(level, "study sync failed", extra={**extra, "outcome": "failed"})
                await asyncio.to_thread(
                    self.store.fail, claim.archive, claim.study_uid,
                    worker=self.worker_id, claimed_seq=claim.claimed_seq, kind=exc.kind,
                    message=exc.message, operation_outcome=outcome, warnings=warnings,
                )
                FAILURES.labels(archive=claim.archive, kind=exc.kind).inc()
                stats.failed += 1

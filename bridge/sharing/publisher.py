"""The Imaging Document Source's one unit of work: publish one study's manifest (I/O,
composed of the pure parts of the room).

One task ``share.publish`` with key ``<archive>/<study uid>`` (queued by the sync as a
follow-up of every synced study, or by ``imaging-bridge sharing publish``) runs
:meth:`Publisher.handle`, which:

0. when the last publication shared a manifest, digests the study's QIDO-RS records
   (:mod:`bridge.sharing.inputs`, two small queries): equal to the digest that
   publication recorded of the study it read (the sync's re-run after our own manifest
   was stored in the study), it ends here, reading and writing nothing else;
1. reads the study from its archive (WADO-RS metadata, PS3.18 10.4.1.1.2);
2. decides by the sharing policy (:mod:`bridge.sharing.decide`); under ``on-demand``, a
   study this site already published stays published when it changes;
3. finds the affinity-domain Patient and the study's current manifests in the registry
   (:mod:`bridge.sharing.source_registry`);
4. builds the KOS (:mod:`bridge.sharing.kos`): when a current manifest already has its
   SOP Instance UID (the same content), nothing is written: a retry, or a sync of a study
   whose only change was its manifest series, ends here; when a superseded one has it
   (the study is back to an earlier content), that one is made current again;
5. stores the KOS in the study's archive (STOW-RS, PS3.18 10.5), then registers it (ITI-65,
   :mod:`bridge.sharing.mhd`), replacing the current manifest(s) of the study (XDS RPLC:
   ``relatesTo`` replaces, the old one superseded in the same transaction).

A study excluded by the policy (now) has its current manifests deprecated; a study gone
from the archive too, found through the Patient the last publication recorded.

Retries are safe.  The KOS's SOP Instance UID is derived from the study's content, and the
bundle is conditional on it; ``created`` (Content Date/Time, and the bytes' hash) is read
back from the manifest already in the archive when an earlier attempt stored it, so the
retry registers the same bytes the archive holds.

Errors are the product's tree: the archive or the registry down is an Outage (the task
waits), no Patient in the registry yet PatientNotFound (waits), a refused bundle
:class:`~bridge.sharing.errors.RegistryRejected` and an unmapped identity
:class:`~bridge.sharing.errors.IdentityUnmapped` (dead letter, naming the field).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

from bridge.errors import ConfigError, PatientNotFound, StudyGone
from bridge.mapping.tags import SERIES_INSTANCE_UID, SOP_INSTANCE_UID
from bridge.sharing.decide import NOT_REQUESTED, SharingDecision, decide
from bridge.sharing.errors import IdentityUnmapped
from bridge.sharing.identity import affinity_identifier
from bridge.sharing.inputs import StudyRecords, digest_of_instances, read_inputs
from bridge.sharing.kos import manifest_json, manifest_part10
from bridge.sharing.mhd import (
    manifest_sop_uid,
    master_identifier,
    provide_bundle,
    replace_bundle,
    supersede_entry,
)
from bridge.sharing.policy import SharingPolicy
from bridge.sharing.publish import ProvideOutcome
from bridge.sharing.study import DicomJson, StudyFacts, first_text, read_study
from bridge.sharing.uids import manifest_series_uid

log = logging.getLogger(__name__)

#: the task kind of a publication (bridge.state task queue)
TASK_KIND = "share.publish"

_CONTENT_DATE, _CONTENT_TIME, _TIMEZONE = "00080023", "00080033", "00080201"


class StudyReader(StudyRecords, Protocol):
    """An archive's QIDO-RS and WADO-RS metadata (bridge.archive.client.DicomwebClient)."""

    async def study_instances(self, study_uid: str) -> list[DicomJson]: ...


class ManifestWriter(Protocol):
    """STOW-RS of a manifest (bridge.sharing.publish.ManifestStore)."""

    async def store(self, part10: bytes) -> None: ...


class DocumentRegistry(Protocol):
    """The document recipient as the source uses it
    (bridge.sharing.source_registry.SourceRegistry)."""

    @property
    def base_url(self) -> str: ...

    async def patient(self, identifier: Mapping[str, str], *, create: bool = False
                      ) -> str: ...

    async def current_manifests(self, patient: str, study_uid: str
                                ) -> list[dict[str, Any]]: ...

    async def deprecate(self, documents: Sequence[dict[str, Any]]) -> None: ...

    async def registered(self, manifest_uid: str) -> dict[str, Any] | None: ...

    async def reinstate(self, document: dict[str, Any],
                        current: Sequence[dict[str, Any]]) -> None: ...

    async def provide(self, bundle: dict[str, Any]) -> ProvideOutcome: ...


class PublishTask(Protocol):
    """What the publisher reads of a queued task (bridge.state's Task)."""

    @property
    def key(self) -> str: ...

    @property
    def payload(self) -> Mapping[str, Any] | None: ...

    @property
    def result(self) -> Mapping[str, Any] | None: ...


@dataclass(frozen=True, slots=True)
class Publication:
    """The outcome of one publication, recorded as the task's result (no patient data:
    UIDs and registry references only)."""

    shared: bool
    #: the decision's stable reason (``policy-all``, ``excluded-modality:MG``,
    #: ``study-gone``, ...)
    reason: str
    manifest_uid: str | None = None
    #: ``DocumentReference/<id>`` of the current manifest
    document: str | None = None
    #: the registry's Patient the manifests are filed under (``Patient/<id>``)
    patient: str | None = None
    #: this run registered the manifest (False: it was registered already)
    registered: bool = False
    #: DocumentReferences this run superseded
    superseded: tuple[str, ...] = ()
    #: instances the manifest references
    instances: int = 0
    #: the digest of the study's QIDO records it was made from (bridge.sharing.inputs)
    inputs: str | None = None

    def as_result(self) -> dict[str, Any]:
        out = asdict(self)
        out["superseded"] = list(self.superseded)
        return {k: v for k, v in out.items() if v is not None}


def split_key(key: str) -> tuple[str, str]:
    """``<archive>/<study uid>`` -> (archive, study uid); archive names hold no slash."""
    archive, _, study_uid = key.partition("/")
    if not archive or not study_uid:
        raise ConfigError(f"share.publish task key {key!r} is not <archive>/<study uid>")
    return archive, study_uid


def stored_created(instances: Sequence[DicomJson], sop_uid: str) -> dt.datetime | None:
    """Content Date/Time (with Timezone Offset From UTC when written) of the manifest
    ``sop_uid`` when the archive already holds it, else None."""
    for ds in instances:
        if first_text(ds, SOP_INSTANCE_UID) != sop_uid:
            continue
        day, time = first_text(ds, _CONTENT_DATE), first_text(ds, _CONTENT_TIME)
        offset = first_text(ds, _TIMEZONE) or "+0000"
        try:
            return dt.datetime.strptime(f"{day}{(time or '')[:6]}{offset}", "%Y%m%d%H%M%S%z")
        except ValueError:
            return None
    return None


def _manifest_last(instances: Sequence[DicomJson], own_series: str) -> list[DicomJson]:
    """The study's instances with those of the manifest series last: the manifest copies
    the Patient and Study modules from the first instance, which must be the study's."""
    return sorted(instances, key=lambda ds: first_text(ds, SERIES_INSTANCE_UID) == own_series)


def _shared_with_inputs(previous: Mapping[str, Any] | None) -> bool:
    """The last publication shared a manifest and recorded what it was made of."""
    return previous is not None and previous.get("shared") is True \
        and isinstance(previous.get("inputs"), str)


def _unchanged(previous: Mapping[str, Any] | None, inputs: str | None
               ) -> Publication | None:
    """The last publication again when it shared a manifest made of the same inputs (the
    sync's re-run after storing our own manifest, or a change the manifest does not show):
    nothing is read or written.  None when the study must be read."""
    if inputs is None or previous is None or previous.get("inputs") != inputs:
        return None
    uid, document, patient = (previous.get(k) for k in ("manifest_uid", "document", "patient"))
    if not (isinstance(uid, str) and isinstance(document, str) and isinstance(patient, str)):
        return None
    count = previous.get("instances")
    return Publication(True, str(previous.get("reason") or "unchanged"), uid, document,
                       patient, instances=count if isinstance(count, int) else 0,
                       inputs=inputs)


def _excluded(decision: SharingDecision) -> bool:
    return not decision.share and decision.reason != NOT_REQUESTED.reason


class Publisher:
    """Publishes studies of the configured archives to one document registry."""

    def __init__(
        self,
        *,
        archives: Mapping[str, StudyReader],
        stores: Mapping[str, ManifestWriter],
        registry: DocumentRegistry,
        policy: SharingPolicy,
        retrieve_bases: Mapping[str, str],
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        register_patients: bool = False,
    ) -> None:
        self._archives = archives
        self._stores = stores
        self._registry = registry
        self._policy = policy
        #: archive name -> the public WADO-RS root consumers retrieve its studies from
        self._retrieve_bases = retrieve_bases
        self._clock = clock
        #: create the affinity-domain Patient in the registry when it has none (a network
        #: without a patient identity feed); else the publication waits for it
        self._register_patients = register_patients
        #: what besides the study a manifest is made of (bridge.sharing.inputs)
        policy_json = policy.model_dump_json()
        self._salts = {name: f"{policy_json}\0{base}" for name, base in retrieve_bases.items()}

    async def handle(self, task: PublishTask) -> dict[str, Any]:
        """The TaskWorker's handler of ``share.publish``: publish and return the result."""
        archive, study_uid = split_key(task.key)
        publication = await self.publish(
            archive, study_uid, requested=bool((task.payload or {}).get("requested")),
            previous=task.result)
        log.info("sharing publication", extra={
            "archive": archive, "study_uid": study_uid, "shared": publication.shared,
            "reason": publication.reason, "registered": publication.registered,
            "superseded": len(publication.superseded)})
        return publication.as_result()

    async def publish(self, archive: str, study_uid: str, *, requested: bool = False,
                      previous: Mapping[str, Any] | None = None) -> Publication:
        """Publish (or deprecate) the manifest of one study; see the module docstring."""
        reader, store = self._archives.get(archive), self._stores.get(archive)
        if reader is None or store is None or archive not in self._retrieve_bases:
            raise ConfigError(f"share.publish: no archive named {archive!r} is configured")
        own_series, salt = manifest_series_uid(study_uid), self._salts[archive]
        try:
            if _shared_with_inputs(previous):
                unchanged = _unchanged(previous, await read_inputs(
                    reader, study_uid, own_series=own_series, salt=salt))
                if unchanged is not None:
                    return unchanged
            instances = await reader.study_instances(study_uid)
        except StudyGone:
            return await self._gone(study_uid, previous)
        inputs = digest_of_instances(instances, own_series=own_series, salt=salt)
        instances = _manifest_last(instances, own_series)
        own = frozenset({own_series})
        study = read_study(instances, skip_series=own)
        decision = decide(self._policy.policy, study, requested=requested)
        try:
            patient = await self._registry.patient(
                affinity_identifier(self._policy.affinity_domain, study),
                create=decision.share and self._register_patients)
        except (IdentityUnmapped, PatientNotFound):
            if not decision.share:  # nothing of it can be in the registry
                return Publication(False, decision.reason)
            raise
        current = await self._registry.current_manifests(patient, study.study_uid)
        if _excluded(decision) or (not decision.share and not current):
            return await self._withdrawn(decision.reason, patient, current)
        if not decision.share:  # on-demand, published on request before: keep it current
            decision = SharingDecision(True, "requested-before")
        publication = await self._register(archive, instances, study, decision, patient,
                                           current)
        return replace(publication, inputs=inputs)

    async def _register(self, archive: str, instances: Sequence[DicomJson],
                        study: StudyFacts, decision: SharingDecision, patient: str,
                        current: Sequence[dict[str, Any]]) -> Publication:
        base = self._retrieve_bases[archive]
        created = self._clock()
        manifest = manifest_json(instances, policy=self._policy, wado_rs_base=base,
                                 created=created)
        uid = manifest_sop_uid(manifest)
        refs = len(study.instances)
        same = [d for d in current if d.get("masterIdentifier") == master_identifier(uid)]
        if same:  # registered already: a retry, or only the manifest series changed
            return Publication(True, decision.reason, uid, f"DocumentReference/{same[0]['id']}",
                               patient, instances=refs)
        superseded = tuple(f"DocumentReference/{d['id']}" for d in current)
        known = await self._registry.registered(uid)
        if known is not None and known.get("status") != "current":
            # registered, superseded since, and the study is back to that content (an
            # added series deleted again): the same masterIdentifier cannot be registered
            # twice, so that document is made current again
            await self._registry.reinstate(known, current)
            return Publication(True, decision.reason, uid, f"DocumentReference/{known['id']}",
                               patient, superseded=superseded, instances=refs)
        earlier = stored_created(instances, uid)
        if earlier is not None and earlier != created:  # an earlier attempt stored it
            manifest = manifest_json(instances, policy=self._policy, wado_rs_base=base,
                                     created=earlier)
            created = earlier
        part10 = manifest_part10(manifest)
        await self._stores[archive].store(part10)
        bundle = provide_bundle(manifest, part10, study, policy=self._policy,
                                registry_url=self._registry.base_url, created=created)
        if current:
            bundle = replace_bundle(bundle, current[0])
            bundle["entry"] += [supersede_entry(d) for d in current[1:]]
        outcome = await self._registry.provide(bundle)
        document = "/".join(outcome.document_reference.split("/")[:2])
        return Publication(True, decision.reason, uid, document, patient,
                           registered=outcome.created, superseded=superseded, instances=refs)

    async def _withdrawn(self, reason: str, patient: str,
                         current: Sequence[dict[str, Any]]) -> Publication:
        """Not shared (now): its current manifests, if any, are deprecated."""
        await self._registry.deprecate(current)
        return Publication(False, reason, patient=patient,
                           superseded=tuple(f"DocumentReference/{d['id']}" for d in current))

    async def _gone(self, study_uid: str, previous: Mapping[str, Any] | None) -> Publication:
        """The study left the archive: deprecate what the last publication registered."""
        patient = (previous or {}).get("patient")
        if not isinstance(patient, str):
            return Publication(False, "study-gone")
        current = await self._registry.current_manifests(patient, study_uid)
        return await self._withdrawn("study-gone", patient, current)

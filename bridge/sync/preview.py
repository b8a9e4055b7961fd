"""What the sync would write for one mapped study, found without writing anything.

``imaging-bridge preview`` hands a mapped study to the sync's own
:class:`~bridge.sync.assemble.StudyAssembly`.  The references the sync resolves by writing
(conditional creates of the Endpoints and, with policy ``create``, of the Patient) are
resolved here by *reading* only: one ``batch`` of searches (FHIR R4 3.1.0.11) for the
Patient, the ServiceRequests and the Endpoints, by the same identifiers the sync uses.
When everything the sync would reference already exists, the preview's ImagingStudy and
content hash are the ones the sync writes and records.  What is missing (an Endpoint or a
Patient the sync would create first, a Patient it would wait for) stays a logical reference
by identifier and is named in :attr:`StudyPreview.pending`: the sync's hash then differs,
by those references only.  Without a FHIR server (``--offline``) every reference is
logical.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.archive.dicomjson import DicomJson
from bridge.archive.local_files import LocalFilesSource
from bridge.errors import FhirRejected
from bridge.fhir.client import FhirClient
from bridge.mapping import MappingResult
from bridge.sync.assemble import (
    AssembledStudy,
    IdentifierKey,
    References,
    Resource,
    StudyAssembly,
    endpoint_key,
    with_bridge_tag,
)
from bridge.sync.references import ReferenceResolver, identifier_query


@dataclass(frozen=True, slots=True)
class StudyPreview:
    """One study as the sync writes it: its Endpoints, its ImagingStudy and content hash."""

    result: MappingResult
    endpoints: list[Resource]
    study: AssembledStudy
    #: the references were looked up on a FHIR server (False: ``--offline``)
    looked_up: bool
    #: why the sync's write would differ from this preview (what it creates or waits for)
    pending: tuple[str, ...]

    @property
    def imaging_study(self) -> Resource:
        """The ImagingStudy as written (with the bridge's meta tag, which is not hashed)."""
        return with_bridge_tag(self.study.resource)

    def to_json(self) -> dict[str, Any]:
        """The mapping result's document with the resources as the sync writes them."""
        doc = self.result.to_json()
        doc.update({
            "contentHash": self.study.content_hash,
            "imagingStudy": self.imaging_study,
            "endpoint": self.endpoints[0],
            "endpoints": self.endpoints,
            "references": {"lookedUp": self.looked_up, "pending": list(self.pending)},
        })
        return doc


def local_studies(paths: Sequence[str | Path]) -> list[list[DicomJson]]:
    """The instances of each study in local DICOM Part-10 or DICOM JSON files and folders,
    read through the local-files archive (:class:`~bridge.archive.local_files.
    LocalFilesSource`), in file order.  A file that is neither raises
    :class:`~bridge.errors.DicomDataError`; datasets without a StudyInstanceUID form one
    group, for the mapping to report."""
    source = LocalFilesSource(paths, name="preview", strict=True)
    try:
        return [source.instances_of(key) for key in source.study_uids()]
    finally:
        source.close()


async def preview_study(
    result: MappingResult, *, archive: str, assembly: StudyAssembly, fhir: FhirClient | None
) -> StudyPreview:
    """Assemble ``result`` as the sync would, looking references up (read only) on ``fhir``.

    Raises the FHIR client's errors (:class:`~bridge.errors.FhirBusy` when the server is
    unreachable) for the caller to report or to retry offline."""
    endpoints = assembly.endpoints(archive, result)
    if fhir is None:
        return StudyPreview(result, endpoints, assembly.study(archive, result, References()),
                            looked_up=False, pending=())
    refs, pending = await _look_up(fhir, result, endpoints)
    return StudyPreview(result, endpoints, assembly.study(archive, result, refs),
                        looked_up=True, pending=tuple(pending))


async def _look_up(fhir: FhirClient, result: MappingResult, endpoints: Sequence[Resource]
                   ) -> tuple[References, list[str]]:
    pending: list[str] = []
    policy = result.patient.policy
    patient_key = (result.patient.system, result.patient.value or "")
    request_keys = [(sr.system, sr.value) for sr in result.service_requests]
    resolver = ReferenceResolver(fhir)
    # the sync's own searches (Patient and ServiceRequest by identifier), read only
    looked_for = policy != "identifier-only" and result.patient.value is not None
    await resolver.prefetch([patient_key] if looked_for else [], request_keys)
    patient: str | None = None
    if policy != "identifier-only":
        patient, _ = resolver.patient(patient_key)
        if result.patient.value is None:
            pending.append(f"the study has no PatientID: the sync fails it (policy {policy})")
        elif patient is None and policy == "match":
            pending.append("no Patient with the study's identifier: the sync waits for it "
                           "(policy match)")
        elif patient is None:
            pending.append("no Patient with the study's identifier: the sync creates it "
                           "first (policy create)")
    requests = {k: r for k in request_keys if (r := resolver.service_request(k))}
    found: dict[IdentifierKey, str] = {}
    keys = [endpoint_key(e) for e in endpoints]
    # what the sync's conditional create (If-None-Exist: identifier=...) would find
    answers = await fhir.batch([
        {"request": {"method": "GET",
                     "url": f"Endpoint?identifier={identifier_query(k)}&_elements=identifier"}}
        for k in keys])
    for key, answer in zip(keys, answers, strict=True):
        if answer.error is not None:
            raise answer.error
        matches = [e["resource"] for e in (answer.resource or {}).get("entry", []) or []
                   if e.get("resource", {}).get("resourceType") == "Endpoint"]
        if len(matches) > 1:
            raise FhirRejected(f"{len(matches)} Endpoint resources have identifier "
                               f"{key[0]}|{key[1]}: the sync's conditional create fails")
        if matches:
            found[key] = f"Endpoint/{matches[0]['id']}"
        else:
            pending.append(f"no Endpoint with identifier {key[0]}|{key[1]}: the sync "
                           "creates it first")
    return References(patient=patient, service_requests=requests, endpoints=found), pending

"""Put the resolved references into a mapped ImagingStudy and hash the result.

The mapping engine is pure and knows nothing of server ids; the sync resolves Patient,
ServiceRequest and Endpoint ids and writes them in here.  The content hash is taken over the
final resource, so a newly resolved reference is a real change and is written once.

:class:`StudyAssembly` is the one place that decides what the sync writes for a mapped
study: the Endpoint the mapping is given (the archive's, or its gateway base), the Endpoint
resources (tagged, identified, decorated with ``requires-access-token`` by the gateway, plus
the ``ihe-iid`` one) and the ImagingStudy with its references.  It does no I/O: the runner
resolves references by writing (conditional creates), ``imaging-bridge preview`` by reading
only (:mod:`bridge.sync.preview`), and both hand what they found to the same
:meth:`StudyAssembly.study`, so a preview shows what the sync writes, byte for byte.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bridge.mapping import EndpointSpec, MappingResult, content_hash, json_copy
from bridge.sync.references import ENDPOINT_ID_SYSTEM

Resource = dict[str, Any]
IdentifierKey = tuple[str, str]  # (system, value)

#: meta.tag on every resource the bridge writes; deletes and reconciliation touch only
#: resources carrying it (FHIR R4 Meta.tag, 2.22.1)
BRIDGE_TAG = {"system": "urn:imaging-bridge", "code": "managed", "display": "imaging-fhir-bridge"}


class ArchiveLike(Protocol):
    """What the assembly reads of an archive: the DICOMweb client or its settings."""

    @property
    def name(self) -> str: ...

    @property
    def base_url(self) -> Any: ...


def archive_endpoint_spec(archive: ArchiveLike) -> EndpointSpec:
    """The default: ImagingStudy.endpoint is the archive's own WADO-RS base."""
    return EndpointSpec(id_or_ref=None, address=str(archive.base_url), name=archive.name)


def assemble(
    imaging_study: Resource,
    *,
    patient_reference: str | None,
    service_requests: Mapping[tuple[str, str], str],
    endpoint_reference: str | None,
    extra_endpoints: Sequence[str] = (),
) -> Resource:
    """A copy of ``imaging_study`` with server references filled in (R4 Reference 2.3.0).

    ImagingStudy.endpoint (0..*) gets the archive's Endpoint first, then ``extra_endpoints``
    (e.g. the gateway's ``ihe-iid`` Endpoint), in the order given: the order is part of the
    content hash, so it must not vary between runs."""
    endpoints = ([{"reference": r} for r in dict.fromkeys([endpoint_reference,
                                                            *extra_endpoints])]
                 if endpoint_reference else [])
    return _fill(imaging_study, patient_reference=patient_reference,
                 service_requests=service_requests, endpoints=endpoints)


def _fill(
    imaging_study: Resource,
    *,
    patient_reference: str | None,
    service_requests: Mapping[tuple[str, str], str],
    endpoints: Sequence[Resource],
) -> Resource:
    out = json_copy(imaging_study)
    if patient_reference:
        subject = out.get("subject") or {}
        # keep the business identifier next to the literal reference: both are allowed and
        # the identifier helps a reader when the Patient is later merged
        out["subject"] = {"reference": patient_reference, **{k: v for k, v in subject.items()
                                                             if k == "identifier"}}
    for ref in out.get("basedOn", []) or []:
        ident = ref.get("identifier") or {}
        key = (ident.get("system", ""), ident.get("value", ""))
        resolved = service_requests.get(key)
        if resolved:
            ref["reference"] = resolved
    if endpoints:
        out["endpoint"] = [dict(e) for e in endpoints]
        for series in out.get("series", []) or []:
            series.pop("endpoint", None)
    return out


def with_bridge_tag(resource: Resource) -> Resource:
    out = dict(resource)
    meta = dict(out.get("meta") or {})
    tags = [t for t in meta.get("tag", []) if t.get("system") != BRIDGE_TAG["system"]]
    meta["tag"] = [*tags, BRIDGE_TAG]
    out["meta"] = meta
    return out


def endpoint_key(resource: Resource) -> IdentifierKey:
    """The Endpoint's first identifier: what the sync creates it conditionally on and
    searches it by (every Endpoint from :meth:`StudyAssembly.endpoints` has one)."""
    ident = (resource.get("identifier") or [{}])[0]
    return (str(ident.get("system", "")), str(ident.get("value", "")))


@dataclass(frozen=True, slots=True)
class References:
    """What was found on the FHIR server; anything absent stays a logical reference by
    identifier (R4 Reference.identifier), as the mapping made it."""

    patient: str | None = None
    #: ServiceRequest references by identifier (system, value)
    service_requests: Mapping[IdentifierKey, str] = field(default_factory=dict)
    #: Endpoint references by :func:`endpoint_key`
    endpoints: Mapping[IdentifierKey, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AssembledStudy:
    """The ImagingStudy as the sync writes it and the content hash the store records.

    ``resource`` carries no meta tag: the tag is added at the write (:func:`with_bridge_tag`)
    and is not part of the hash."""

    resource: Resource
    content_hash: str


class StudyAssembly:
    """What the sync writes for a mapped study, without looking anything up.

    ``endpoint_for`` chooses the Endpoint the mapping describes (default: the archive's
    base; the gateway's base when it is on); ``endpoint_resource`` has the final say on the
    archive's Endpoint resource (the gateway adds ``requires-access-token``);
    ``extra_endpoints`` are referenced by every ImagingStudy after the archive's (the
    gateway's ``ihe-iid`` Endpoint).  See
    :meth:`bridge.sync.endpoints.GatewayEndpoints.runner_options`.
    """

    def __init__(
        self,
        *,
        endpoint_for: Callable[[Any], EndpointSpec] = archive_endpoint_spec,
        endpoint_resource: Callable[[str, Resource], Resource] | None = None,
        extra_endpoints: Sequence[Resource] = (),
    ) -> None:
        self._endpoint_for = endpoint_for
        self._decorate = endpoint_resource
        self._extra = [with_bridge_tag(copy.deepcopy(e)) for e in extra_endpoints]

    def endpoint_spec(self, archive: ArchiveLike) -> EndpointSpec:
        """The Endpoint the mapping engine is given for a study of ``archive``."""
        return self._endpoint_for(archive)

    def endpoints(self, archive: str, result: MappingResult) -> list[Resource]:
        """The Endpoint resources as written: the archive's first, then the extra ones.

        The archive's gets the bridge tag, an identifier when the mapping gave none (so it
        can be created conditionally) and the ``endpoint_resource`` decoration."""
        endpoint = with_bridge_tag(json_copy(result.endpoint))
        if not endpoint.get("identifier"):
            endpoint["identifier"] = [{"system": ENDPOINT_ID_SYSTEM, "value": archive}]
        if self._decorate is not None:
            endpoint = self._decorate(archive, endpoint)
        return [endpoint, *(json_copy(e) for e in self._extra)]

    def study(self, archive: str, result: MappingResult, refs: References) -> AssembledStudy:
        """The ImagingStudy with ``refs`` filled in, and its content hash.

        ImagingStudy.endpoint (0..*) lists the Endpoints of :meth:`endpoints` in order (the
        order is part of the hash, so it never varies), each by its resolved reference or,
        when ``refs`` has none, logically by identifier."""
        endpoints: list[Resource] = []
        seen: set[str] = set()
        for endpoint in self.endpoints(archive, result):
            key = endpoint_key(endpoint)
            ref = refs.endpoints.get(key)
            if ref is None:
                endpoints.append({"type": "Endpoint",
                                  "identifier": {"system": key[0], "value": key[1]}})
            elif ref not in seen:  # two Endpoints resolved to one: referenced once
                seen.add(ref)
                endpoints.append({"reference": ref})
        resource = _fill(result.imaging_study, patient_reference=refs.patient,
                         service_requests=refs.service_requests, endpoints=endpoints)
        return AssembledStudy(resource, content_hash(resource))

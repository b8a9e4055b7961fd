"""Where ImagingStudy.endpoint points: the Endpoint policy of the sync.

Without the gateway every Endpoint addresses the archive itself (the mapping's default).
With the gateway (SMART Imaging Access, IHE IID) every configured archive is behind it, so
every archive's ImagingStudy.endpoint points at a gateway base, never at the archive: the
default archive's at the gateway root (``/dicom-web``, as before several archives were
served), any other's at ``{root}/{archive name}``.  These Endpoints carry the
``requires-access-token`` extension (value ``true``): the app presents the same SMART
access token it used for the ImagingStudy search when it retrieves from the address.

With IID every ImagingStudy also references one Endpoint of connectionType ``ihe-iid``
whose address is ``/IHEInvokeImageDisplay`` (IHE RAD TF-2 4.106; FHIR R4
ImagingStudy.endpoint is 0..* "access (query, view, or retrieval)").
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from bridge.mapping import EndpointSpec
from bridge.urls import PublicUrls

REQUIRES_ACCESS_TOKEN = (
    "http://hl7.org/fhir/smart-app-launch/StructureDefinition/requires-access-token"
)
CONNECTION_TYPES = "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"
#: the Endpoint identifier system: its value is the address, a URI (FHIR R4 Identifier.system
#: urn:ietf:rfc:3986), as for the DICOMweb Endpoints (mapping ``endpoint.identifier_system``)
URI_SYSTEM = "urn:ietf:rfc:3986"


class _Archive(Protocol):
    @property
    def name(self) -> str: ...


@dataclass(frozen=True, slots=True)
class GatewayEndpoints:
    """The Endpoints of archives served by the gateway (see the module's docstring)."""

    urls: PublicUrls
    #: the configured archives: only their Endpoints get ``requires-access-token``
    archives: frozenset[str]
    iid: bool

    @classmethod
    def of(cls, urls: PublicUrls, *, archives: Iterable[str], iid: bool) -> GatewayEndpoints:
        return cls(urls, frozenset(archives), iid)

    def endpoint_for(self, archive: _Archive) -> EndpointSpec:
        """``SyncRunner(endpoint_for=...)``: the archive's gateway base."""
        return EndpointSpec(address=self.urls.archive(archive.name), name=archive.name)

    def endpoint_resource(self, archive: str, resource: dict[str, Any]) -> dict[str, Any]:
        """``SyncRunner(endpoint_resource=...)``: add ``requires-access-token`` to a
        configured archive's Endpoint (its address is a gateway base)."""
        if archive not in self.archives:
            return resource
        out = copy.deepcopy(resource)
        extensions = [e for e in out.get("extension", []) or []
                      if e.get("url") != REQUIRES_ACCESS_TOKEN]
        extensions.append({"url": REQUIRES_ACCESS_TOKEN, "valueBoolean": True})
        out["extension"] = extensions
        return out

    def iid_endpoint(self) -> dict[str, Any] | None:
        """The ``ihe-iid`` Endpoint every ImagingStudy references, or None when IID is off.

        payloadType is required (1..*) but IID carries no payload the consumer chooses: it
        displays the studies named in the URL.  The text "DICOM IID" follows the FHIR R4
        example Endpoint ``example-iid``; the endpoint-payload-type codes (any, none) say
        less.  No ``requires-access-token``: IID is invoked by a browser, which cannot add a
        bearer token, and is authorised by the SMART app's launch session (IID defines no
        security)."""
        if not self.iid:
            return None
        address = self.urls.iid
        return {
            "resourceType": "Endpoint",
            "identifier": [{"system": URI_SYSTEM, "value": address}],
            "status": "active",
            "connectionType": {"system": CONNECTION_TYPES, "code": "ihe-iid",
                               "display": "IHE IID"},
            "name": "IHE Invoke Image Display",
            "payloadType": [{"text": "DICOM IID"}],
            "address": address,
        }

    def runner_options(self) -> dict[str, Any]:
        """``SyncRunner`` keyword arguments: ``endpoint_for`` and ``endpoint_resource``
        pointing the Endpoints at the gateway, and ``extra_endpoints`` with the ``ihe-iid``
        Endpoint when IID is enabled."""
        options: dict[str, Any] = {"endpoint_for": self.endpoint_for,
                                   "endpoint_resource": self.endpoint_resource}
        iid = self.iid_endpoint()
        if iid is not None:
            options["extra_endpoints"] = [iid]
        return options


def runner_options(policy: GatewayEndpoints | None) -> dict[str, Any]:
    """The ``SyncRunner`` keyword arguments of a policy; none without the gateway (the
    mapping's own Endpoints, addressing the archives)."""
    return policy.runner_options() if policy is not None else {}


def endpoint_policy(*, gateway: bool, iid: bool, urls: PublicUrls, archives: Iterable[str]
                    ) -> GatewayEndpoints | None:
    """The policy of a deployment: gateway Endpoints when the gateway is enabled (``iid``:
    and IID with it), else None (the mapping's own)."""
    return GatewayEndpoints.of(urls, archives=archives, iid=iid) if gateway else None

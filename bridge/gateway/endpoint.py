"""The Endpoints the sync writes when the gateway is enabled (SMART Imaging Access, IHE IID).

Every configured archive is behind the gateway, so every archive's ImagingStudy.endpoint
points at a gateway base (never at the archive): the default archive's at the gateway root
(``/dicom-web``, as before several archives were served), any other's at
``{root}/{archive name}``.  These Endpoints carry the ``requires-access-token`` extension
(value ``true``): the app presents the same SMART access token it used for the ImagingStudy
search when it retrieves from the address.

With ``gateway.iid_enabled`` every ImagingStudy also references one Endpoint of
connectionType ``ihe-iid`` whose address is ``/IHEInvokeImageDisplay`` (IHE RAD TF-2 4.106;
FHIR R4 ImagingStudy.endpoint is 0..* "access (query, view, or retrieval)").
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Protocol

from bridge.config import Settings
from bridge.mapping import EndpointSpec

REQUIRES_ACCESS_TOKEN = (
    "http://hl7.org/fhir/smart-app-launch/StructureDefinition/requires-access-token"
)
CONNECTION_TYPES = "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"
IID_PATH = "/IHEInvokeImageDisplay"
#: the Endpoint identifier system: its value is the address, a URI (FHIR R4 Identifier.system
#: urn:ietf:rfc:3986), as for the DICOMweb Endpoints (mapping ``endpoint.identifier_system``)
URI_SYSTEM = "urn:ietf:rfc:3986"


class _Archive(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def base_url(self) -> str: ...


def _api_root(settings: Settings) -> str:
    api = settings.api
    return (api.public_url or f"http://{api.host}:{api.port}").rstrip("/")


def gateway_base(settings: Settings) -> str:
    """The gateway's public DICOMweb root: ``gateway.public_url``, else the API's public
    URL (or http://host:port) + ``/dicom-web``.  It serves the default archive and is the
    viewer-token audience for every archive."""
    if settings.gateway.public_url:
        return settings.gateway.public_url.rstrip("/")
    return _api_root(settings) + "/dicom-web"


def gateway_archive(settings: Settings) -> str | None:
    """The name of the default archive (served at the root; None when there is none)."""
    if settings.gateway.archive:
        return settings.gateway.archive
    return settings.archives[0].name if settings.archives else None


def archive_base(settings: Settings, archive: str) -> str:
    """The public DICOMweb base of one archive: the root for the default archive (so
    Endpoints written before several archives were served stay valid), else
    ``{root}/{archive}`` (archive names are URL-safe and never a root route, see
    :class:`~bridge.config.ArchiveSettings`)."""
    root = gateway_base(settings)
    return root if archive == gateway_archive(settings) else f"{root}/{archive}"


def iid_address(settings: Settings) -> str:
    """The public URL of IHE IID (RAD-106): next to the API, like ``/dicom-web``."""
    return _api_root(settings) + IID_PATH


def iid_endpoint(settings: Settings) -> dict[str, Any] | None:
    """The ``ihe-iid`` Endpoint every ImagingStudy references, or None when IID is off.

    payloadType is required (1..*) but IID carries no payload the consumer chooses: it
    displays the studies named in the URL.  The text "DICOM IID" follows the FHIR R4
    example Endpoint ``example-iid``; the endpoint-payload-type codes (any, none) say less.
    No ``requires-access-token``: IID is invoked by a browser, which cannot add a bearer
    token, and is authorised by the SMART app's launch session (IID defines no security).
    """
    if not (settings.gateway.enabled and settings.gateway.iid_enabled):
        return None
    address = iid_address(settings)
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


def endpoint_for(settings: Settings) -> Callable[[Any], EndpointSpec]:
    """``SyncRunner(endpoint_for=...)``: the archive's gateway base."""

    def spec(archive: _Archive) -> EndpointSpec:
        return EndpointSpec(address=archive_base(settings, archive.name), name=archive.name)

    return spec


def endpoint_resource(settings: Settings) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    """``SyncRunner(endpoint_resource=...)``: add ``requires-access-token`` to an archive's
    Endpoint (its address is a gateway base: every configured archive is behind it)."""
    configured = {a.name for a in settings.archives}

    def decorate(archive: str, resource: dict[str, Any]) -> dict[str, Any]:
        if archive not in configured:
            return resource
        out = copy.deepcopy(resource)
        extensions = [e for e in out.get("extension", []) or []
                      if e.get("url") != REQUIRES_ACCESS_TOKEN]
        extensions.append({"url": REQUIRES_ACCESS_TOKEN, "valueBoolean": True})
        out["extension"] = extensions
        return out

    return decorate


def gateway_endpoint_hooks(settings: Settings) -> dict[str, Any]:
    """``SyncRunner`` keyword arguments: empty when the gateway is disabled, else
    ``endpoint_for`` and ``endpoint_resource`` pointing the Endpoints at the gateway, and
    ``extra_endpoints`` with the ``ihe-iid`` Endpoint when IID is enabled."""
    if not settings.gateway.enabled:
        return {}
    hooks: dict[str, Any] = {"endpoint_for": endpoint_for(settings),
                             "endpoint_resource": endpoint_resource(settings)}
    iid = iid_endpoint(settings)
    if iid is not None:
        hooks["extra_endpoints"] = [iid]
    return hooks

"""The Endpoint the sync writes when the gateway is enabled (SMART Imaging Access).

ImagingStudy.endpoint then points at the gateway's WADO-RS base (never the archive's), and
the Endpoint carries the ``requires-access-token`` extension (value ``true``): the app
presents the same SMART access token it used for the ImagingStudy search when it retrieves
from the address.
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


class _Archive(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def base_url(self) -> str: ...


def gateway_base(settings: Settings) -> str:
    """The gateway's public DICOMweb root: ``gateway.public_url``, else the API's public
    URL (or http://host:port) + ``/dicom-web``."""
    if settings.gateway.public_url:
        return settings.gateway.public_url.rstrip("/")
    api = settings.api
    root = api.public_url or f"http://{api.host}:{api.port}"
    return root.rstrip("/") + "/dicom-web"


def gateway_archive(settings: Settings) -> str | None:
    """The name of the archive behind the gateway (None when there is no archive)."""
    if settings.gateway.archive:
        return settings.gateway.archive
    return settings.archives[0].name if settings.archives else None


def endpoint_for(settings: Settings) -> Callable[[Any], EndpointSpec]:
    """``SyncRunner(endpoint_for=...)``: the gateway's base for its archive, the archive's
    own base for any other."""
    base, behind = gateway_base(settings), gateway_archive(settings)

    def spec(archive: _Archive) -> EndpointSpec:
        if archive.name == behind:
            return EndpointSpec(address=base, name=archive.name)
        return EndpointSpec(address=archive.base_url, name=archive.name)

    return spec


def endpoint_resource(settings: Settings) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    """``SyncRunner(endpoint_resource=...)``: add ``requires-access-token`` to the gateway's
    Endpoint (its address is the gateway base)."""
    behind = gateway_archive(settings)

    def decorate(archive: str, resource: dict[str, Any]) -> dict[str, Any]:
        if archive != behind:
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
    ``endpoint_for`` and ``endpoint_resource`` pointing the Endpoint at the gateway."""
    if not settings.gateway.enabled:
        return {}
    return {"endpoint_for": endpoint_for(settings),
            "endpoint_resource": endpoint_resource(settings)}

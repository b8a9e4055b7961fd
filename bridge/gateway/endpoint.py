"""The gateway's public addresses and Endpoints, from the whole settings: entries kept for
tools and tests that hold a :class:`~bridge.config.Settings`.

The addresses are computed once by :class:`bridge.urls.PublicUrls` and the Endpoints by the
sync's policy (:mod:`bridge.sync.endpoints`); the composition root (:mod:`bridge.assembly`)
builds both and hands them to the components.  These functions only split the settings.
"""

from __future__ import annotations

from typing import Any

from bridge.config import Settings
from bridge.sync.endpoints import (
    CONNECTION_TYPES,
    REQUIRES_ACCESS_TOKEN,
    URI_SYSTEM,
    GatewayEndpoints,
    endpoint_policy,
)
from bridge.urls import IID_PATH, PublicUrls

__all__ = ["CONNECTION_TYPES", "IID_PATH", "REQUIRES_ACCESS_TOKEN", "URI_SYSTEM"]


def _urls(settings: Settings) -> PublicUrls:
    return PublicUrls.of(api=settings.api, gateway=settings.gateway, smart=settings.smart,
                         archives=[a.name for a in settings.archives])


def archive_base(settings: Settings, archive: str) -> str:
    """The public DICOMweb base of one archive (:meth:`PublicUrls.archive`)."""
    return _urls(settings).archive(archive)


def iid_address(settings: Settings) -> str:
    """The public URL of IHE IID (RAD-106): next to the API, like ``/dicom-web``."""
    return _urls(settings).iid


def _policy(settings: Settings) -> GatewayEndpoints:
    return GatewayEndpoints.of(_urls(settings),
                               archives=[a.name for a in settings.archives],
                               iid=settings.gateway.iid_enabled)


def iid_endpoint(settings: Settings) -> dict[str, Any] | None:
    """The ``ihe-iid`` Endpoint every ImagingStudy references, or None when IID is off."""
    if not settings.gateway.enabled:
        return None
    return _policy(settings).iid_endpoint()


def gateway_endpoint_hooks(settings: Settings) -> dict[str, Any]:
    """``SyncRunner`` keyword arguments of the deployment's Endpoint policy."""
    policy = endpoint_policy(gateway=settings.gateway.enabled,
                             iid=settings.gateway.iid_enabled, urls=_urls(settings),
                             archives=[a.name for a in settings.archives])
    return policy.runner_options() if policy is not None else {}

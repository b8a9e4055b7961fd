"""The bridge's public URLs, computed once, and the one check of an http(s) URL.

Three public roots are derived from the settings: the API's (``api.public_url``, else
``http://{api.host}:{api.port}``), the DICOMweb gateway's (``gateway.public_url``, else the
API's + ``/dicom-web``) and the SMART app's redirect base (``smart.redirect_base_url``,
else the API's).  The composition root builds :class:`PublicUrls` once and hands it to the
gateway, the SMART app and the sync's endpoint policy; nothing else derives them.

This module imports nothing of ours: the settings models use :func:`http_url` to validate,
and :meth:`PublicUrls.of` reads them through the small protocols below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

#: IHE Invoke Image Display (RAD-106) is served next to the API, like ``/dicom-web``
IID_PATH = "/IHEInvokeImageDisplay"


def is_http_url(url: str) -> bool:
    """Whether ``url`` is an absolute http(s) URL with a host (RFC 3986 3)."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def http_url(url: str, *, name: str = "") -> str:
    """``url`` without its trailing slash; ``ValueError`` (naming ``name``) unless it is
    an http(s) URL."""
    if not is_http_url(url):
        raise ValueError(f"{name}: {url!r} is not an http(s) URL" if name
                         else "not an http(s) URL")
    return url.rstrip("/")


class _Api(Protocol):
    @property
    def public_url(self) -> str | None: ...

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...


class _Gateway(Protocol):
    @property
    def public_url(self) -> str | None: ...

    @property
    def archive(self) -> str | None: ...


class _Smart(Protocol):
    @property
    def redirect_base_url(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class PublicUrls:
    """Where browsers and EHRs reach the bridge (no trailing slashes)."""

    #: the API's public root
    api: str
    #: the gateway's DICOMweb root: serves the default archive, and is the viewer-token
    #: audience for every archive
    gateway: str
    #: the SMART app's base (its redirect URI is ``{smart}/smart/callback``)
    smart: str
    #: the archive served at the gateway root (``gateway.archive``, else the first one)
    default_archive: str | None

    @classmethod
    def of(cls, *, api: _Api, gateway: _Gateway, smart: _Smart,
           archives: Sequence[str]) -> PublicUrls:
        root = (api.public_url or f"http://{api.host}:{api.port}").rstrip("/")
        return cls(
            api=root,
            gateway=(gateway.public_url or root + "/dicom-web").rstrip("/"),
            smart=(smart.redirect_base_url or root).rstrip("/"),
            default_archive=gateway.archive or (archives[0] if archives else None),
        )

    def archive(self, name: str) -> str:
        """The public DICOMweb base of one archive: the gateway root for the default
        archive (so Endpoints written before several archives were served stay valid),
        else ``{root}/{name}`` (archive names are URL-safe and never a root route, see
        :class:`~bridge.config.ArchiveSettings`)."""
        return self.gateway if name == self.default_archive else f"{self.gateway}/{name}"

    @property
    def iid(self) -> str:
        """The public URL of IHE IID (RAD-106)."""
        return self.api + IID_PATH

"""The Imaging Document Consumer's client (I/O): ITI-67 Find Document References and
ITI-68 Retrieve Document against an MHD Document Responder (the registry), and the
retrieved KOS read by :mod:`bridge.sharing.kos_reader`.

Requests go through a :class:`~bridge.fhir.client.FhirClient` of the registry's settings
(its HttpClient, outbound auth, latency metrics and error translation): the registry
unreachable, 5xx or 429 -> :class:`~bridge.errors.FhirBusy` (an Outage, honouring
Retry-After); 409/412 -> :class:`~bridge.errors.Conflict`; any
other 4xx -> :class:`~bridge.errors.FhirRejected` with the OperationOutcome (401/403
included: the registry refuses *these* credentials for this request).  A document that
is not usable is an :class:`~bridge.sharing.errors.OutsideDocumentError` (per document,
returned beside the others by :meth:`DocumentConsumer.find`), a retrieved body that is
not the registered one (size or SHA-1 differ) too, and a body that is not a manifest a
:class:`~bridge.sharing.errors.ManifestFormatError`.

Not here yet: RAD-107 retrieval of the images, partner tokens (docs/sharing.md).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping

import httpx

from bridge.config import FhirSettings
from bridge.errors import FhirBusy
from bridge.fhir.client import FhirClient
from bridge.jsonbytes import loads
from bridge.sharing.errors import OutsideDocumentError
from bridge.sharing.find import FoundDocuments, OutsideDocument, find_query, read_searchset
from bridge.sharing.kos_reader import OutsideManifest, read_manifest
from bridge.sharing.mhd import DICOM_MIME

#: a runaway server's next links are not followed past this many pages
MAX_PAGES = 50


class DocumentConsumer:
    """ITI-67 and ITI-68 against one registry.  Use as an async context manager;
    ``transport`` is for tests (httpx.MockTransport)."""

    def __init__(
        self, settings: FhirSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.base_url = settings.base_url
        base = httpx.URL(settings.base_url)
        self._origin = (base.scheme, base.host, base.port)
        self._fhir = FhirClient(settings, transport=transport)

    async def __aenter__(self) -> DocumentConsumer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._fhir.aclose()

    async def find(
        self,
        identifier: Mapping[str, str],
        *,
        since: dt.date | None = None,
        until: dt.date | None = None,
        modalities: Iterable[str] = (),
    ) -> FoundDocuments:
        """ITI-67: every current KOS manifest of the affinity-domain patient
        ``identifier``, following the searchset's next links."""
        params: list[tuple[str, str]] | None = find_query(
            identifier, since=since, until=until, modalities=modalities)
        url = "DocumentReference"
        documents: list[OutsideDocument] = []
        problems: list[OutsideDocumentError] = []
        for _ in range(MAX_PAGES):
            # no-cache: a server may answer a repeated search from a cache (HAPI keeps
            # results a minute), which could list a manifest superseded since as current
            resp = await self._fhir.request("GET", url, params=params,
                                            headers={"Cache-Control": "no-cache"},
                                            interaction="mhd-find")
            try:
                bundle = loads(resp.content)
            except ValueError as exc:
                raise FhirBusy("ITI-67 answer is not JSON") from exc
            page = read_searchset(bundle)
            documents += page.documents
            problems += page.problems
            url = next((str(link["url"]) for link in bundle.get("link") or []
                        if link.get("relation") == "next"), "")
            if not url:
                break
            params = None  # the next link carries the query
        return FoundDocuments(tuple(documents), tuple(problems))

    async def retrieve(self, document: OutsideDocument) -> bytes:
        """ITI-68: the document's bytes from its attachment URL (relative to the
        registry, or absolute on the registry's origin: another host is refused, as an
        OutsideDocumentError, rather than sent the registry's credentials), checked
        against the registered size and SHA-1 when given."""
        url = httpx.URL(document.attachment_url)
        if url.is_absolute_url and (url.scheme, url.host, url.port) != self._origin:
            # the client's credentials are the registry's: never sent to a host a
            # document names (a repository elsewhere needs its own settings)
            raise OutsideDocumentError(
                f"DocumentReference/{document.id}: attachment URL is not on the registry "
                f"{self.base_url}", field="content[0].attachment.url", document=document.id)
        resp = await self._fhir.request(
            "GET", document.attachment_url, interaction="mhd-retrieve",
            headers={"Accept": document.mime_type or DICOM_MIME})
        content = resp.content
        if document.size is not None and len(content) != document.size:
            raise OutsideDocumentError(
                f"DocumentReference/{document.id}: retrieved {len(content)} bytes, "
                f"registered size {document.size}", field="content[0].attachment.size",
                document=document.id)
        if document.hash is not None:
            digest = base64.b64encode(hashlib.sha1(content).digest()).decode("ascii")
            if digest != document.hash:
                raise OutsideDocumentError(
                    f"DocumentReference/{document.id}: retrieved bytes' SHA-1 differs from "
                    "the registered hash", field="content[0].attachment.hash",
                    document=document.id)
        return content

    async def manifest(self, document: OutsideDocument) -> OutsideManifest:
        """ITI-68 then the KOS read: what the manifest references and where."""
        return read_manifest(await self.retrieve(document))

"""A FHIR Bulk Data export client (HL7 FHIR Bulk Data Access IG v2.0.0, "Export").

The asynchronous request pattern of the IG, section "Bulk Data Kick-off Request" onwards:

1. **Kick-off**: ``GET [base]/$export`` (system level) or ``POST [base]/Patient/$export``
   (patient level, a Parameters resource naming the patients) with ``_type``,
   ``_typeFilter``, ``_since``, ``Accept: application/fhir+json`` and
   ``Prefer: respond-async``; the server answers ``202 Accepted`` with the status URL in
   ``Content-Location``.
2. **Status**: ``GET`` the status URL: ``202`` while in progress (``X-Progress`` is free
   text, ``Retry-After`` seconds or an HTTP date says when to ask again), ``200`` with the
   manifest (``transactionTime``, ``requiresAccessToken``, ``output[]`` of ``type`` and
   ``url``), ``4xx/5xx`` with an OperationOutcome: the export failed (``429`` / ``5xx``:
   ask again later, per the IG's "transient error").
3. **Files**: ``GET`` each output URL with ``Accept: application/fhir+ndjson``; one
   resource per line (streamed here: a file is never held whole in memory).
4. **Delete**: ``DELETE`` the status URL when the files have been read (or to cancel an
   export we gave up on), so the server can drop them.

The client's credentials (the FHIR server's outbound auth) go only to URLs of the FHIR
server's own origin, and to the files only when the manifest says ``requiresAccessToken``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from bridge.auth.outbound import build_auth
from bridge.config import FhirSettings
from bridge.errors import FhirBusy, FhirRejected
from bridge.fhir.client import classify
from bridge.httpclient import HttpClient
from bridge.jsonbytes import dumps, loads
from bridge.retry_after import retry_after

__all__ = ["NDJSON", "BulkExportClient", "BulkFile", "BulkManifest"]

log = logging.getLogger(__name__)

NDJSON = "application/fhir+ndjson"
FHIR_JSON = "application/fhir+json"
#: seconds between status requests when the server sends no Retry-After
DEFAULT_POLL = 1.0
#: the longest Retry-After honoured as given (a server asking for an hour is asked sooner)
MAX_POLL = 300.0

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class BulkFile:
    """One output file of the manifest: its resource type and URL."""

    type: str
    url: str


@dataclass(frozen=True)
class BulkManifest:
    """The completed export's manifest (IG "Response - Complete Status")."""

    transaction_time: str
    requires_access_token: bool
    files: list[BulkFile]

    @classmethod
    def from_json(cls, body: Any) -> BulkManifest:
        if not isinstance(body, dict) or not isinstance(body.get("output"), list):
            raise FhirRejected("bulk export manifest without 'output' list", status_code=200)
        files = [BulkFile(str(o.get("type", "")), str(o["url"]))
                 for o in body["output"] if isinstance(o, dict) and o.get("url")]
        return cls(str(body.get("transactionTime", "")),
                   bool(body.get("requiresAccessToken", False)), files)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


class BulkExportClient:
    """Kick-off, status polling, file streaming and deletion of one FHIR server's bulk
    exports.  Use as an async context manager.

    :param settings: the FHIR server (base URL, outbound auth, timeout).
    :param max_wait: seconds an export may take before :class:`FhirBusy` is raised (the
        export is then deleted, i.e. cancelled).
    :param max_poll: the longest pause between status requests, whatever Retry-After
        says (HAPI answers ``Retry-After: 120`` to every poll, even of a small export that
        completes within a minute).
    :param sleep: awaited between status requests (tests pass a fake).
    """

    def __init__(self, settings: FhirSettings, *, max_wait: float = 3600.0,
                 max_poll: float = MAX_POLL,
                 transport: httpx.AsyncBaseTransport | None = None,
                 sleep: Sleep = asyncio.sleep) -> None:
        self.base_url = settings.base_url.rstrip("/")
        self.max_wait = max_wait
        self.max_poll = max_poll
        self._sleep = sleep
        self._client = HttpClient(
            auth=build_auth(settings.auth, timeout=settings.timeout, base_url=settings.base_url),
            timeout=settings.timeout, transport=transport)
        self._anonymous = HttpClient(timeout=settings.timeout, transport=transport)

    async def __aenter__(self) -> BulkExportClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()
        await self._anonymous.aclose()

    def _for(self, url: str, *, credentials: bool = True) -> httpx.AsyncClient:
        same = _origin(url) == _origin(self.base_url)
        return self._client if same and credentials else self._anonymous

    async def _send(self, method: str, url: str, *, what: str, credentials: bool = True,
                    **kwargs: Any) -> httpx.Response:
        try:
            resp = await self._for(url, credentials=credentials).request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise FhirBusy(f"FHIR server unreachable for {what}: "
                           f"{type(exc).__name__}") from exc
        if resp.status_code >= 400:
            try:
                body = loads(resp.content)
            except ValueError:
                body = None
            raise classify(resp.status_code, body, resp.headers, what)
        return resp

    async def kick_off(self, *, types: Sequence[str], type_filters: Sequence[str] = (),
                       patients: Sequence[str] = (), since: date | None = None) -> str:
        """Start an export; return its status URL (IG "Bulk Data Kick-off Request").

        System level (``GET [base]/$export``) without ``patients``; with them patient
        level, ``POST [base]/Patient/$export`` with a Parameters resource holding one
        ``patient`` reference each (the IG allows ``patient`` in POST only).
        """
        headers = {"Accept": FHIR_JSON, "Prefer": "respond-async"}
        since_value = f"{since.isoformat()}T00:00:00Z" if since is not None else None
        url = f"{self.base_url}/{'Patient/' if patients else ''}$export"
        if patients:
            # the IG's ``patient`` parameter exists for POST only (a Parameters resource)
            parameters: list[dict[str, Any]] = [{"name": "_type",
                                                 "valueString": ",".join(types)}]
            parameters += [{"name": "_typeFilter", "valueString": f} for f in type_filters]
            if since_value is not None:
                parameters.append({"name": "_since", "valueInstant": since_value})
            parameters += [{"name": "patient", "valueReference": {"reference": p}}
                           for p in patients]
            resp = await self._send(
                "POST", url, what="bulk export kick-off",
                content=dumps({"resourceType": "Parameters", "parameter": parameters}),
                headers={**headers, "Content-Type": FHIR_JSON})
        else:
            params: list[tuple[str, str]] = [("_type", ",".join(types))]
            params += [("_typeFilter", f) for f in type_filters]
            if since_value is not None:
                params.append(("_since", since_value))
            resp = await self._send("GET", url, what="bulk export kick-off", params=params,
                                    headers=headers)
        location = resp.headers.get("Content-Location")
        if resp.status_code != 202 or not location:
            raise FhirRejected(f"bulk export kick-off answered {resp.status_code} without "
                               "Content-Location (no asynchronous export)",
                               status_code=resp.status_code)
        return str(urljoin(url, location))

    async def wait(self, status_url: str, *,
                   progress: Callable[[str], None] | None = None) -> BulkManifest:
        """Poll the status URL until the export is complete; return its manifest.

        ``202``: wait ``Retry-After`` (at most ``max_poll``; :data:`DEFAULT_POLL` without
        it) and ask again, ``X-Progress`` handed to ``progress``; ``429`` / ``5xx``: the
        same (transient); another error: raised (``FhirRejected``).
        """
        waited = 0.0
        while True:
            try:
                resp = await self._send("GET", status_url, what="bulk export status",
                                        headers={"Accept": FHIR_JSON})
            except FhirBusy as busy:
                delay = busy.retry_after
            else:
                if resp.status_code == 200:
                    return BulkManifest.from_json(loads(resp.content))
                if progress is not None and resp.headers.get("X-Progress"):
                    progress(resp.headers["X-Progress"])
                delay = retry_after(resp.headers)
            delay = min(self.max_poll,
                        max(0.0, delay if delay is not None else DEFAULT_POLL))
            if waited + delay > self.max_wait:
                raise FhirBusy(f"bulk export not complete after {waited:.0f} s")
            await self._sleep(delay)
            waited += delay

    async def resources(self, manifest: BulkManifest, file: BulkFile
                        ) -> AsyncIterator[dict[str, Any]]:
        """The resources of one output file, a line at a time (streamed)."""
        client = self._for(file.url, credentials=manifest.requires_access_token)
        try:
            async with client.stream("GET", file.url, headers={"Accept": NDJSON}) as resp:
                if resp.status_code >= 400:
                    await resp.aread()
                    raise classify(resp.status_code, None, resp.headers,
                                   "bulk export file download")
                async for line in resp.aiter_lines():
                    if line.strip():
                        resource = loads(line.encode())
                        if isinstance(resource, dict):
                            yield resource
        except httpx.HTTPError as exc:
            raise FhirBusy(f"bulk export file download failed: {type(exc).__name__}") from exc

    async def delete(self, status_url: str) -> None:
        """Delete (or cancel) the export: the server may drop its files (IG "Delete a
        Bulk Data Request").  A server that refuses is logged, not raised."""
        try:
            await self._send("DELETE", status_url, what="bulk export delete")
        except (FhirBusy, FhirRejected) as exc:
            log.warning("bulk export not deleted", extra={"error_type": type(exc).__name__})

"""Async FHIR R4 REST client: search with paging, conditional create/update, batch.

Errors are classified at this boundary (HOUSE_STYLE principle 3):

* no answer, 5xx, 429 -> :class:`FhirBusy` (an outage: waited out, honouring Retry-After)
* 409 / 412 -> :class:`Conflict` (retryable: someone else changed the resource)
* other 4xx -> :class:`FhirRejected` carrying the server's OperationOutcome
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from bridge.auth.outbound import build_auth
from bridge.config import FhirSettings
from bridge.errors import BridgeError, Conflict, FhirBusy, FhirRejected
from bridge.httpclient import HttpClient
from bridge.jsonbytes import dumps, loads
from bridge.metrics import FHIR_LATENCY
from bridge.retry_after import retry_after

FHIR_JSON = "application/fhir+json"
Resource = dict[str, Any]


def outcome_text(outcome: Mapping[str, Any] | None) -> str:
    """The diagnostics of an OperationOutcome, joined, for messages and failure records."""
    if not outcome:
        return ""
    texts = []
    for issue in outcome.get("issue", []) or []:
        if isinstance(issue, dict):
            text = issue.get("diagnostics") or (issue.get("details") or {}).get("text")
            if text:
                texts.append(f"{issue.get('severity', '?')}: {text}")
    return "; ".join(texts)


def classify(status: int, body: Any, headers: Mapping[str, str], what: str) -> BridgeError:
    """Turn a non-2xx FHIR answer into the right typed error."""
    outcome = body if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome" \
        else None
    detail = outcome_text(outcome)
    message = f"FHIR server answered {status} to {what}" + (f": {detail}" if detail else "")
    if status == 429 or status >= 500:
        return FhirBusy(message, retry_after=retry_after(headers))
    if status in (409, 412):
        return Conflict(message)
    return FhirRejected(message, status_code=status, operation_outcome=outcome)


@dataclass(frozen=True, slots=True)
class EntryResult:
    """The outcome of one batch entry (FHIR R4 Bundle.entry.response)."""

    status: int
    location: str | None
    etag: str | None
    resource: Resource | None
    error: BridgeError | None

    @property
    def resource_id(self) -> str | None:
        if self.resource and self.resource.get("id"):
            return str(self.resource["id"])
        if self.location:
            # Location: [base]/Type/id/_history/vid (R4 3.1.0.8 / 3.1.0.11.3)
            parts = self.location.split("/_history/")[0].rstrip("/").split("/")
            return parts[-1]
        return None

    @property
    def version_id(self) -> str | None:
        if self.resource and (self.resource.get("meta") or {}).get("versionId"):
            return str(self.resource["meta"]["versionId"])
        if self.etag:
            return self.etag.removeprefix("W/").strip('"')
        if self.location and "/_history/" in self.location:
            return self.location.split("/_history/")[1].strip("/")
        return None


def _parse_status(text: str) -> int:
    try:
        return int(text.strip().split(" ", 1)[0])
    except (ValueError, IndexError):
        return 0


@dataclass
class SearchTally:
    """What a paged search returned against what the server said matched.

    Some servers cut a search at ``_count`` and give no ``next`` link; ``Bundle.total``
    (R4 3.1.1.4.1, "the number of matches", without included resources) then exceeds
    what was received.
    """

    total: int | None = None
    received: int = 0

    @property
    def shortfall(self) -> int:
        """Matches the server counted but never returned (0 when complete or unknown)."""
        return max(0, (self.total or 0) - self.received) if self.total is not None else 0


class FhirClient:
    """The EHR's FHIR server.  Use as an async context manager."""

    def __init__(
        self, settings: FhirSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self.base_url = settings.base_url
        self._client = HttpClient(
            base_url=settings.base_url + "/",
            auth=build_auth(settings.auth, timeout=settings.timeout,
                            base_url=settings.base_url),
            timeout=settings.timeout,
            transport=transport,
            headers={"Accept": FHIR_JSON},
            limits=httpx.Limits(max_connections=settings.concurrency * 2),
        )

    async def __aenter__(self) -> FhirClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(
        self,
        method: str,
        url: str,
        *,
        interaction: str,
        json: Any = None,
        params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        hdrs = dict(headers or {})
        content = None
        if json is not None:
            hdrs["Content-Type"] = FHIR_JSON
            content = dumps(json)  # what httpx's json= wrote, through orjson
        started = time.perf_counter()
        try:
            resp = await self._client.request(
                method, url, content=content, params=params, headers=hdrs  # type: ignore[arg-type]
            )
        except httpx.HTTPError as exc:
            raise FhirBusy(
                f"FHIR server unreachable for {interaction}: {type(exc).__name__}"
            ) from exc
        finally:
            FHIR_LATENCY.labels(interaction=interaction).observe(time.perf_counter() - started)
        if resp.status_code >= 400:
            try:
                body = loads(resp.content)
            except ValueError:
                body = None
            raise classify(resp.status_code, body, resp.headers, f"{method} {url.split('?')[0]}")
        return resp

    # --- read / search (R4 3.1.0.2, 3.1.1) ---------------------------------------------------

    async def read(self, resource_type: str, resource_id: str) -> Resource:
        resp = await self.request("GET", f"{resource_type}/{resource_id}", interaction="read")
        body: Resource = loads(resp.content)
        return body

    async def search(
        self, resource_type: str, params: Mapping[str, Any] | Sequence[tuple[str, Any]]
    ) -> Resource:
        resp = await self.request("GET", resource_type, params=params, interaction="search")
        body: Resource = loads(resp.content)
        return body

    async def search_all(
        self, resource_type: str, params: Mapping[str, Any] | Sequence[tuple[str, Any]],
        *, tally: SearchTally | None = None,
    ) -> AsyncIterator[Resource]:
        """Every entry resource of every page (following Bundle.link[next]).

        ``tally``, when given, records the first page's ``Bundle.total`` and how many match
        entries were received, so a caller that concludes from absence (reconcile) can
        tell a complete answer from a truncated one.
        """
        bundle = await self.search(resource_type, params)
        if tally is not None and isinstance(bundle.get("total"), int):
            tally.total = bundle["total"]
        while True:
            for entry in bundle.get("entry", []) or []:
                if "resource" in entry:
                    if tally is not None and (entry.get("search") or {}).get("mode") != \
                            "include":
                        tally.received += 1
                    yield entry["resource"]
            next_url = next(
                (lnk["url"] for lnk in bundle.get("link", []) if lnk.get("relation") == "next"),
                None,
            )
            if not next_url:
                return
            resp = await self.request("GET", next_url, interaction="search-page")
            bundle = loads(resp.content)

    # --- batch (R4 3.1.0.11) -----------------------------------------------------------------

    async def batch(
        self, entries: Sequence[Resource], *, representation: bool = True
    ) -> list[EntryResult]:
        """POST a ``batch`` Bundle; each entry's outcome is returned on its own.

        ``representation=False`` asks for ``Prefer: return=minimal`` (R4 3.1.0.5.1): the
        server then returns only status, location and etag per entry, which is all a write
        needs (id and version) and spares it serialising every resource back.
        """
        bundle = {"resourceType": "Bundle", "type": "batch", "entry": list(entries)}
        prefer = "return=representation" if representation else "return=minimal"
        resp = await self.request(
            "POST", "", json=bundle, interaction="batch", headers={"Prefer": prefer},
        )
        body = loads(resp.content)
        results: list[EntryResult] = []
        response_entries = body.get("entry", []) or []
        if len(response_entries) != len(entries):
            raise FhirBusy(
                f"batch response has {len(response_entries)} entries for {len(entries)} sent"
            )
        for req, entry in zip(entries, response_entries, strict=True):
            response = entry.get("response", {}) or {}
            status = _parse_status(str(response.get("status", "")))
            resource = entry.get("resource")
            error: BridgeError | None = None
            if status >= 400 or status == 0:
                what = f"{req['request']['method']} {req['request']['url'].split('?')[0]}"
                error = classify(status or 500, response.get("outcome"), {}, what)
            results.append(
                EntryResult(
                    status=status,
                    location=response.get("location"),
                    etag=response.get("etag"),
                    resource=resource if isinstance(resource, dict) else None,
                    error=error,
                )
            )
        return results

    async def capability(self) -> Resource:
        resp = await self.request("GET", "metadata", interaction="capabilities")
        body: Resource = resp.json()
        return body

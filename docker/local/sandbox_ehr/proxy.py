"""The protected FHIR endpoint: checks the bearer token, then forwards to HAPI.

* no token, or one that is invalid, expired or revoked -> 401 with ``WWW-Authenticate:
  Bearer error="invalid_token"`` (RFC 6750 3.1);
* a token whose scopes do not cover the interaction -> 403 ``insufficient_scope``;
* with only ``patient/`` scopes: searches must name the patient in context
  (``patient=`` / ``subject=`` / ``_id=`` for Patient), reads must return a resource of that
  patient, writes must concern that patient -> otherwise 403 (SMART 2.2 "patient-specific
  scopes"; the Imaging Access draft asks for 403, never a silently empty result).

``metadata`` and ``.well-known/smart-configuration`` are public.  Batch and transaction
Bundles are checked entry by entry; one forbidden entry refuses the whole Bundle.
HAPI's own base URL is rewritten to the proxy's in bodies and Location headers, so paging
links and locations lead back through the proxy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .models import AccessRecord
from .scopes import contexts_allowing, parse_scopes

FHIR_JSON = "application/fhir+json"
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length",
                "content-encoding", "host", "authorization"}


class Denied(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def outcome(status: int, code: str, message: str, *, challenge: str | None = None) -> Response:
    body = {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": message}]}
    headers = {"WWW-Authenticate": challenge} if challenge else {}
    return JSONResponse(body, status_code=status, headers=headers, media_type=FHIR_JSON)


@dataclass
class Interaction:
    permission: str  # c r u d s
    resource: str
    resource_id: str | None
    params: list[tuple[str, str]]
    body: dict[str, Any] | None


def classify(method: str, path: str, query: str, body: dict[str, Any] | None,
             headers: dict[str, str] | None = None) -> list[Interaction]:
    """The FHIR interactions (R4 3.1.0) a request performs, as SMART permissions."""
    parts = [p for p in path.strip("/").split("/") if p]
    params = parse_qsl(query, keep_blank_values=True)
    method = method.upper()
    if not parts:
        if method == "POST" and body and body.get("resourceType") == "Bundle":
            out: list[Interaction] = []
            for entry in body.get("entry", []) or []:
                req = entry.get("request") or {}
                url = str(req.get("url", ""))
                split = urlsplit(url)
                out += classify(str(req.get("method", "GET")), split.path, split.query,
                                entry.get("resource"))
            return out
        raise Denied(403, "forbidden", "system-level interactions are not allowed here")
    resource = parts[0]
    rid = parts[1] if len(parts) > 1 and not parts[1].startswith("_") else None
    if method == "GET":
        perm = "r" if rid else "s"
    elif method == "POST":
        perm = "s" if len(parts) > 1 and parts[1] == "_search" else "c"
    elif method in ("PUT", "PATCH"):
        perm = "u"
    elif method == "DELETE":
        perm = "d"
    else:
        raise Denied(405, "not-supported", f"method {method} is not supported")
    return [Interaction(perm, resource, rid, params, body)]


def _refs_patient(resource: dict[str, Any], patient: str) -> bool | None:
    """True/False when the resource is in some patient compartment, None when it is not."""
    if resource.get("resourceType") == "Patient":
        return str(resource.get("id")) == patient
    found = None
    for key in ("subject", "patient"):
        ref = resource.get(key)
        if isinstance(ref, dict) and "reference" in ref:
            found = str(ref["reference"]).endswith(f"Patient/{patient}")
            if found:
                return True
    return found


def _search_names_patient(it: Interaction, patient: str) -> bool:
    wanted = {patient, f"Patient/{patient}"}
    for name, value in it.params:
        if it.resource == "Patient" and name == "_id" and value == patient:
            return True
        if name in ("patient", "subject", "subject:Patient") and value in wanted:
            return True
    return False


class FhirProxy:
    def __init__(self, upstream: str, public_base: str, client: httpx.AsyncClient) -> None:
        self.upstream = upstream.rstrip("/")
        self.public_base = public_base.rstrip("/")
        self.client = client
        #: paging continuations (HAPI's ``GET [base]?_getpages=ID``) handed out with a
        #: searchset, by page id -> the access token's patient (or "" for user/system);
        #: a continuation is allowed only for the token context whose search produced it
        self._pages: dict[str, str] = {}

    def _remember_pages(self, content: bytes, token: AccessRecord) -> None:
        try:
            bundle = json.loads(content)
        except ValueError:
            return
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            return
        for link in bundle.get("link", []) or []:
            query = urlsplit(str(link.get("url", ""))).query
            for key, value in parse_qsl(query):
                if key == "_getpages":
                    self._pages[value] = token.patient or ""
        while len(self._pages) > 10_000:  # bounded: forget the oldest continuations
            self._pages.pop(next(iter(self._pages)))

    def page_allowed(self, query: str, token: AccessRecord) -> bool:
        """True for a ``_getpages`` continuation of a search this token's context made."""
        ids = [v for k, v in parse_qsl(query) if k == "_getpages"]
        return len(ids) == 1 and self._pages.get(ids[0]) == (token.patient or "")

    def check(self, token: AccessRecord, interactions: list[Interaction]) -> list[str]:
        """Raise Denied unless the scopes allow everything; return resource ids to verify
        against the patient compartment after the upstream read."""
        grants = parse_scopes(token.scope)
        to_verify: list[str] = []
        for it in interactions:
            contexts = contexts_allowing(grants, it.resource, it.permission)
            if not contexts:
                raise Denied(403, "forbidden", f"insufficient_scope: no scope allows "
                             f"{it.resource}.{it.permission}")
            if contexts != {"patient"}:
                continue  # user/ and system/ scopes are not limited to one patient
            patient = token.patient
            if not patient:
                raise Denied(403, "forbidden", "patient/ scope without a patient in context")
            if it.permission == "s" and not _search_names_patient(it, patient):
                raise Denied(403, "forbidden",
                             f"search on {it.resource} must be restricted to patient={patient}")
            if it.permission == "r":
                to_verify.append(it.resource)
            if it.permission in "cu" and it.body is not None \
                    and _refs_patient(it.body, patient) is False:
                raise Denied(403, "forbidden", "the resource belongs to another patient")
        return to_verify

    def _rewrite(self, content: bytes) -> bytes:
        return content.replace(self.upstream.encode(), self.public_base.encode())

    async def forward_public(self, request: Request, path: str) -> Response:
        """Unprotected reads (the CapabilityStatement)."""
        resp = await self.client.get(f"{self.upstream}/{path}", params=request.url.query,
                                     headers={"Accept": request.headers.get("accept", FHIR_JSON)})
        return Response(self._rewrite(resp.content), status_code=resp.status_code,
                        media_type=resp.headers.get("content-type"))

    async def forward(self, request: Request, path: str, body: bytes, token: AccessRecord,
                      verify_patient: bool) -> Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        url = f"{self.upstream}/{path}" if path else self.upstream
        resp = await self.client.request(request.method, url, params=request.url.query,
                                         content=body or None, headers=headers)
        content = self._rewrite(resp.content)
        if resp.status_code == 200 and request.method == "GET":
            self._remember_pages(content, token)
        if verify_patient and resp.status_code == 200 and token.patient:
            try:
                resource = json.loads(content)
            except ValueError:
                resource = {}
            if isinstance(resource, dict) and _refs_patient(resource, token.patient) is False:
                return outcome(403, "forbidden", "the resource belongs to another patient")
        out_headers = {k: v for k, v in resp.headers.items() if k.lower() not in _HOP_HEADERS}
        for name in ("location", "content-location"):
            if name in out_headers:
                out_headers[name] = out_headers[name].replace(self.upstream, self.public_base)
        return Response(content, status_code=resp.status_code, headers=out_headers)

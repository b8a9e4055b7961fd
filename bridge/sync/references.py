"""Resolve the references an ImagingStudy needs: its Patient, ServiceRequests and Endpoint.

Lookups for a whole claim batch go to the FHIR server as *one* ``batch`` of searches
(FHIR R4 3.1.0.11), and answers are cached for a short time, so a backfill of a thousand
studies of two hundred patients costs a handful of requests, not thousands.  The caches are
bounded (least recently used entries go first), so memory stays flat over a backfill of any
size; they are :class:`bridge.cache.TtlCache` on the resolver's injected clock.  A negative
answer (no such Patient yet) is kept at most :data:`NEGATIVE_TTL` seconds: the EHR may
register the patient any minute.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from bridge.cache import TtlCache
from bridge.clock import SYSTEM_CLOCK, Clock
from bridge.errors import BridgeError, FhirRejected
from bridge.fhir.client import FhirClient, Resource
from bridge.metrics import PATIENT_CONFLICTS

log = logging.getLogger(__name__)

IdentifierKey = tuple[str, str]  # (system, value)

ENDPOINT_ID_SYSTEM = "urn:imaging-bridge:endpoint"

#: entries per cache (Patients, ServiceRequests): far more than one claim batch needs, few
#: enough to keep the process small however long the backfill
DEFAULT_MAX_ENTRIES = 20_000
#: seconds a "not found" answer is kept (at most the resolver's ttl)
NEGATIVE_TTL = 30.0


def identifier_query(key: IdentifierKey) -> str:
    system, value = key
    # token search: system|value; '|' and ',' in values must be escaped (R4 3.1.1.5.2)
    escaped = value.replace("\\", "\\\\").replace("|", "\\|").replace(",", "\\,")
    return quote(f"{system}|{escaped}", safe="")


#: identifiers per OR-search; 50 keeps the URL near 4 KB, within every server's limit
OR_CHUNK = 50


def _matches(bundle: Resource) -> list[Resource]:
    """The search's matches (not its included resources or OperationOutcomes)."""
    return [e["resource"] for e in bundle.get("entry", []) or [] if "resource" in e
            and e.get("search", {}).get("mode", "match") == "match"]


@dataclass(frozen=True, slots=True)
class _Cached:
    reference: str | None
    resource: Resource | None


_Cache = TtlCache[IdentifierKey, _Cached]


class ReferenceResolver:
    """Per-process cache and batched lookups of Patient / ServiceRequest / Endpoint ids."""

    def __init__(self, fhir: FhirClient, *, ttl: float = 300.0,
                 max_entries: int = DEFAULT_MAX_ENTRIES, clock: Clock = SYSTEM_CLOCK) -> None:
        self._fhir = fhir
        self._negative_ttl = min(ttl, NEGATIVE_TTL)
        self._patients: _Cache = TtlCache(ttl=ttl, maxsize=max_entries, clock=clock)
        self._requests: _Cache = TtlCache(ttl=ttl, maxsize=max_entries, clock=clock)
        #: Endpoint references by identifier (system, value): the key of the conditional
        #: create, so two names for one address can never give two Endpoints
        self._endpoints: dict[IdentifierKey, str] = {}
        # one conditional create at a time: concurrent batches of one process would
        # otherwise race each other (HAPI answers the loser 409)
        self._endpoint_lock = asyncio.Lock()

    def _put(self, cache: _Cache, key: IdentifierKey, entry: _Cached) -> None:
        cache.put(key, entry, ttl=None if entry.reference else self._negative_ttl)

    async def _search_many(
        self, resource_type: str, keys: Sequence[IdentifierKey],
        cache: _Cache, elements: str, *, keep_resource: bool = True,
    ) -> None:
        """Look ``keys`` up with one OR-search per :data:`OR_CHUNK` identifiers (R4 3.1.1.5.4:
        ``identifier=a|x,b|y``), all in one batch.  One search of 50 values costs the FHIR
        server about what one search of a single value does, so a batch of 25 studies with
        their ~65 ServiceRequest identifiers is 2 searches instead of 65.  A chunk whose
        answer is paged (more matches than asked for: duplicates in the EHR) is searched
        again value by value, so every key still gets its exact answer."""
        if not keys:
            return
        chunks = [list(keys[i:i + OR_CHUNK]) for i in range(0, len(keys), OR_CHUNK)]
        results = await self._fhir.batch([
            self._search_entry(resource_type, chunk, elements) for chunk in chunks])
        paged: list[IdentifierKey] = []
        for chunk, res in zip(chunks, results, strict=True):
            if res.error is not None:
                raise res.error
            bundle = res.resource or {}
            if len(chunk) > 1 and any(link.get("relation") == "next"
                                      for link in bundle.get("link", []) or []):
                paged.extend(chunk)
                continue
            self._settle(resource_type, chunk, _matches(bundle), cache, keep_resource)
        if paged:
            singles = await self._fhir.batch([
                self._search_entry(resource_type, [k], elements) for k in paged])
            for key, res in zip(paged, singles, strict=True):
                if res.error is not None:
                    raise res.error
                self._settle(resource_type, [key], _matches(res.resource or {}), cache,
                             keep_resource)

    @staticmethod
    def _search_entry(resource_type: str, keys: Sequence[IdentifierKey], elements: str
                      ) -> dict[str, Any]:
        values = ",".join(identifier_query(k) for k in keys)
        # two per value: a duplicate fits on the page and is reported, not paged away
        return {"request": {"method": "GET",
                            "url": f"{resource_type}?identifier={values}"
                                   f"&_elements={elements}&_count={2 * len(keys)}"}}

    def _settle(self, resource_type: str, keys: Sequence[IdentifierKey],
                found: list[Resource], cache: _Cache, keep_resource: bool) -> None:
        if len(keys) == 1:
            by_key = {keys[0]: found}
        else:
            # which resource answered which value: its identifiers say (exact match)
            by_key = {k: [] for k in keys}
            for resource in found:
                for ident in resource.get("identifier", []) or []:
                    hit = by_key.get((str(ident.get("system", "")), str(ident.get("value"))))
                    if hit is not None and resource not in hit:
                        hit.append(resource)
        for key in keys:
            matched = by_key[key]
            if len(matched) > 1:
                # two resources claim the same business identifier: linking to either
                # would be a guess, so the study is refused until the EHR is cleaned up
                raise FhirRejected(
                    f"{len(matched)} {resource_type} resources have identifier "
                    f"{key[0]}|<value>")
            if matched:
                self._put(cache, key, _Cached(f"{resource_type}/{matched[0]['id']}",
                                              matched[0] if keep_resource else None))
            else:
                self._put(cache, key, _Cached(None, None))

    async def prefetch(
        self, patients: Iterable[IdentifierKey], requests: Iterable[IdentifierKey]
    ) -> None:
        """Look up every key not cached, in at most two batch requests.  The batch's keys
        are pinned while it looks them up, so the bound never drops one of them: the
        answers stay readable by :meth:`patient` and :meth:`service_request` even if
        they expire meanwhile."""
        p_keys, r_keys = set(patients), set(requests)
        with self._patients.pinned(p_keys), self._requests.pinned(r_keys):
            p_missing = sorted(k for k in p_keys if self._patients.get(k) is None)
            r_missing = sorted(k for k in r_keys if self._requests.get(k) is None)
            await self._search_many("Patient", p_missing, self._patients,
                                    "identifier,name,birthDate,gender")
            # a ServiceRequest's reference and subject are used (an order of another
            # patient is never linked, see subject_of_request)
            await self._search_many("ServiceRequest", r_missing, self._requests,
                                    "identifier,subject")

    def patient(self, key: IdentifierKey) -> tuple[str | None, Resource | None]:
        hit = self._patients.peek(key)
        return (hit.reference, hit.resource) if hit else (None, None)

    def service_request(self, key: IdentifierKey) -> str | None:
        hit = self._requests.peek(key)
        return hit.reference if hit else None

    def subject_of_request(self, key: IdentifierKey) -> str | None:
        """The ``Patient/id`` the order found for ``key`` is for (None: unknown)."""
        hit = self._requests.peek(key)
        if hit is None or hit.resource is None:
            return None
        return relative_reference((hit.resource.get("subject") or {}).get("reference"))

    async def create_patients(
        self, wanted: dict[IdentifierKey, Resource]
    ) -> dict[IdentifierKey, BridgeError]:
        """Conditionally create Patients (If-None-Exist, R4 3.1.0.8.1); return per-key errors."""
        keys = sorted(wanted)
        if not keys:
            return {}
        entries = [
            {
                "resource": wanted[k],
                "request": {
                    "method": "POST",
                    "url": "Patient",
                    "ifNoneExist": f"identifier={identifier_query(k)}",
                },
            }
            for k in keys
        ]
        results = await self._fhir.batch(entries)
        errors: dict[IdentifierKey, BridgeError] = {}
        for key, res in zip(keys, results, strict=True):
            if res.error is not None:
                errors[key] = res.error
                continue
            rid = res.resource_id
            self._put(self._patients, key,
                      _Cached(f"Patient/{rid}" if rid else None, res.resource))
        return errors

    async def endpoint(self, archive: str, resource: Resource) -> str:
        """The Endpoint's reference: conditional create (If-None-Exist on its first
        identifier, R4 3.1.0.8.1) once, then cached for the process.  ``archive`` names the
        identifier value when the resource has none (the archive's, or another Endpoint's
        such as the gateway's ``ihe-iid`` one)."""
        ident = (resource.get("identifier") or [{}])[0]
        key = (str(ident.get("system", ENDPOINT_ID_SYSTEM)), str(ident.get("value", archive)))
        cached = self._endpoints.get(key)
        if cached:
            return cached
        async with self._endpoint_lock:
            cached = self._endpoints.get(key)
            if cached:  # created by the batch we waited for
                return cached
            return await self._create_endpoint(key, resource)

    async def _create_endpoint(self, key: IdentifierKey, resource: Resource) -> str:
        resp = await self._fhir.request(
            "POST", "Endpoint", interaction="create-endpoint", json=resource,
            headers={"If-None-Exist": f"identifier={identifier_query(key)}"},
        )
        body: dict[str, Any] = resp.json() if resp.content else {}
        rid = body.get("id")
        if not rid:
            location = resp.headers.get("Location") or resp.headers.get("Content-Location", "")
            rid = location.split("/_history/")[0].rstrip("/").split("/")[-1] or None
        if not rid:
            raise FhirRejected("FHIR server created the Endpoint but returned no id")
        ref = f"Endpoint/{rid}"
        self._endpoints[key] = ref
        return ref


def demographics_conflict(found: Resource | None, wanted: Resource | None) -> list[str]:
    """Names of the demographic fields that differ between the EHR's Patient and DICOM.

    Only fields present on both sides are compared; differences are flagged, not fixed:
    the EHR is the master of demographics.
    """
    if not found or not wanted:
        return []
    diffs: list[str] = []
    for field in ("birthDate", "gender"):
        a, b = found.get(field), wanted.get(field)
        if a and b and a != b:
            diffs.append(field)
    fam_a = {(n.get("family") or "").casefold() for n in found.get("name", []) if n.get("family")}
    fam_b = {(n.get("family") or "").casefold() for n in wanted.get("name", []) if n.get("family")}
    if fam_a and fam_b and not fam_a & fam_b:
        diffs.append("name")
    if diffs:
        PATIENT_CONFLICTS.inc()
    return diffs


def relative_reference(reference: str | None) -> str | None:
    """``Type/id`` of a literal reference, relative or absolute (R4 2.3.0.1.1), without a
    ``_history`` part; None for none or a reference of another form."""
    if not reference:
        return None
    parts = reference.split("/_history/", 1)[0].rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else None

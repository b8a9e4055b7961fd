"""An in-process FHIR R4 server: what the bridge, the EHR seeder and the SMART app need of
one, held in memory, with two faces over the same state.

* :meth:`FakeFhir.handler` (async) and :meth:`FakeFhir.sync_handler`: an
  ``httpx.MockTransport`` handler for the clients that write.  A batch Bundle (R4 3.1.0.11)
  is answered entry by entry, as HAPI does: ``GET Patient?identifier=a|x,b|y`` (an
  OR-search, R4 3.1.1.5.4) from :attr:`patients`; ``PUT ImagingStudy?identifier=...``
  (conditional update, R4 3.1.0.4.3) into :attr:`stored`; ``POST`` with ``ifNoneExist``
  (conditional create, R4 3.1.0.8.1) into :attr:`resources`.  ``POST Endpoint`` with an
  ``If-None-Exist`` header creates one Endpoint per identifier.
* :attr:`FakeFhir.app`: an ASGI app for the readers (served on a port with
  :meth:`FakeFhir.serve`): ``/fhir/metadata``, reads of :attr:`resources`, and the
  ImagingStudy search by patient over :attr:`studies` (``_sort``, ``_offset`` paging with
  ``next`` links, ``_include=ImagingStudy:endpoint``).

Faults are data: :attr:`busy` answers whole requests, :attr:`reject` and
:attr:`entry_busy` answer single ImagingStudy entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.support.servers import ServedApp

OUTCOME_422 = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "processing",
               "diagnostics": "ImagingStudy.started: bad dateTime"}],
}


def _identifier(url: str) -> str:
    return parse_qs(urlsplit(url).query)["identifier"][0]


@dataclass
class FakeFhir:
    """A FHIR R4 server in memory (see the module's description of its two faces)."""

    #: Patient identifiers (``system|value``) a batch's Patient search finds (id ``p-value``)
    patients: set[str] = field(default_factory=set)
    #: study UIDs whose ImagingStudy entry is answered 422 with :data:`OUTCOME_422`
    reject: set[str] = field(default_factory=set)
    #: study UIDs whose ImagingStudy entry is answered 503
    entry_busy: set[str] = field(default_factory=set)
    #: answers for the next whole requests (e.g. a 429 with Retry-After)
    busy: list[httpx.Response] = field(default_factory=list)
    #: when set, every Bundle must be of this type and have at most ``max_entries`` entries
    bundle_type: str | None = None
    max_entries: int | None = None
    #: "system|value" of ServiceRequest identifiers the EHR has -> the order's subject
    #: reference (its Patients are ``Patient/p-<value>``)
    orders: dict[str, str] = field(default_factory=dict)
    #: ImagingStudy PUTs received, by study UID, in order
    writes: list[str] = field(default_factory=list)
    #: ImagingStudies written by conditional update, by study UID
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)
    endpoint_posts: int = 0
    #: Endpoints by their If-None-Exist query (conditional create: one per identifier)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: resources by type and id: read by the app, added by conditional creates and :meth:`add`
    resources: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: Bundles received
    batches: int = 0
    #: ImagingStudies the app's search and reads answer from
    studies: list[dict[str, Any]] = field(default_factory=list)
    #: URLs of the app's ImagingStudy searches, in order
    requests: list[str] = field(default_factory=list)
    #: the app's search page size
    page_size: int = 3
    #: the app's base URL (``.../fhir``), set by :meth:`serve`
    base: str = ""

    def add(self, resource: dict[str, Any]) -> dict[str, Any]:
        """Keep ``resource`` (with its ``resourceType`` and ``id``) for the app's reads."""
        self.resources.setdefault(resource["resourceType"], {})[resource["id"]] = resource
        return resource

    # -- the writers' face: httpx.MockTransport -------------------------------------------

    async def handler(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.001)  # the network: concurrent requests interleave
        return self.sync_handler(request)

    def sync_handler(self, request: httpx.Request) -> httpx.Response:
        if self.busy:
            return self.busy.pop(0)
        path = request.url.path.rstrip("/")
        if request.method == "POST" and path.endswith("/Endpoint"):
            return self._endpoint(request)
        assert request.method == "POST" and path.endswith("/fhir"), request.url
        bundle = json.loads(request.content)
        if self.bundle_type is not None:
            assert bundle["type"] == self.bundle_type, bundle["type"]
        if self.max_entries is not None:
            assert len(bundle["entry"]) <= self.max_entries
        self.batches += 1
        entries = [self._entry(e) for e in bundle["entry"]]
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "batch-response",
                                         "entry": entries})

    def _endpoint(self, request: httpx.Request) -> httpx.Response:
        self.endpoint_posts += 1
        key = request.headers.get("If-None-Exist", "")
        if key in self.endpoints:
            return httpx.Response(200, json=self.endpoints[key])
        posted = json.loads(request.content)
        resource = {**posted, "id": f"ep-{len(self.endpoints) + 1}",
                    "meta": {**posted.get("meta", {}), "versionId": "1"}}
        self.endpoints[key] = resource
        return httpx.Response(201, json=resource)

    def _entry(self, entry: dict[str, Any]) -> dict[str, Any]:
        method, url = entry["request"]["method"], entry["request"]["url"]
        if method == "GET":
            return self._patient_search(url)
        if method == "POST" and "ifNoneExist" in entry["request"]:
            return self._conditional_create(url, entry["request"]["ifNoneExist"],
                                            entry["resource"])
        assert method == "PUT" and url.startswith("ImagingStudy?"), entry["request"]
        return self._imaging_study_update(_identifier(url), entry["resource"])

    def _patient_search(self, url: str) -> dict[str, Any]:
        if url.startswith("ServiceRequest?"):
            return self._order_search(url)
        found: list[dict[str, Any]] = []
        # identifier=a|x,b|y: an OR-search (R4 3.1.1.5.4), one match per known value
        for ident in _identifier(url).split(",") if url.startswith("Patient?") else ():
            if ident in self.patients:
                system, value = ident.split("|", 1)
                found.append({"resource": {"resourceType": "Patient", "id": f"p-{value}",
                                           "identifier": [{"system": system,
                                                           "value": value}]},
                              "search": {"mode": "match"}})
        return {"resource": {"resourceType": "Bundle", "type": "searchset",
                             "total": len(found), "entry": found},
                "response": {"status": "200 OK"}}

    def _order_search(self, url: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = []
        for ident in _identifier(url).split(","):
            if ident in self.orders:
                system, value = ident.split("|", 1)
                found.append({"resource": {
                    "resourceType": "ServiceRequest", "id": f"sr-{value}",
                    "identifier": [{"system": system, "value": value}],
                    "subject": {"reference": self.orders[ident]}},
                    "search": {"mode": "match"}})
        return {"resource": {"resourceType": "Bundle", "type": "searchset",
                             "total": len(found), "entry": found},
                "response": {"status": "200 OK"}}

    def _conditional_create(self, rtype: str, if_none_exist: str,
                            resource: dict[str, Any]) -> dict[str, Any]:
        system, value = parse_qs(if_none_exist)["identifier"][0].split("|", 1)
        store = self.resources.setdefault(rtype, {})
        for rid, res in store.items():
            if any(i["system"] == system and i["value"] == value for i in res["identifier"]):
                return {"response": {"status": "200 OK",
                                     "location": f"{rtype}/{rid}/_history/1"}}
        rid = str(len(store) + 1)
        store[rid] = resource
        return {"response": {"status": "201 Created", "location": f"{rtype}/{rid}/_history/1"}}

    def _imaging_study_update(self, identifier: str, posted: dict[str, Any]) -> dict[str, Any]:
        uid = identifier.removeprefix("urn:dicom:uid|urn:oid:")
        self.writes.append(uid)
        if uid in self.reject:
            return {"response": {"status": "422 Unprocessable Entity", "outcome": OUTCOME_422}}
        if uid in self.entry_busy:
            return {"response": {"status": "503 Service Unavailable"}}
        previous = self.stored.get(uid)
        version = int(previous["meta"]["versionId"]) + 1 if previous else 1
        resource = copy.deepcopy(posted)
        resource.update(id=f"is-{len(self.stored) + 1}" if not previous else previous["id"],
                        meta={**resource.get("meta", {}), "versionId": str(version)})
        self.stored[uid] = resource
        return {"resource": resource,
                "response": {"status": "201 Created" if not previous else "200 OK",
                             "location": f"ImagingStudy/{resource['id']}/_history/{version}",
                             "etag": f'W/"{version}"'}}

    # -- the readers' face: an ASGI app ---------------------------------------------------

    @contextlib.contextmanager
    def serve(self) -> Iterator[FakeFhir]:
        """:attr:`app` on a free loopback port until the block ends; :attr:`base` is its
        FHIR base URL meanwhile."""
        with ServedApp(self.app) as served:
            self.base = served.url + "/fhir"
            yield self

    @cached_property
    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/fhir/metadata")
        async def metadata() -> dict[str, Any]:
            return {"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1"}

        @app.get("/fhir/ImagingStudy/{sid}")
        async def study(sid: str) -> Any:
            for s in self.studies:
                if s["id"] == sid:
                    return s
            return JSONResponse({"resourceType": "OperationOutcome"}, 404)

        @app.get("/fhir/{rtype}/{rid}")
        async def read(rtype: str, rid: str) -> Any:
            found = self.resources.get(rtype, {}).get(rid)
            if found is None:
                return JSONResponse({"resourceType": "OperationOutcome"}, 404)
            return found

        @app.get("/fhir/ImagingStudy")
        async def search(request: Request) -> dict[str, Any]:
            return self._study_search(request)

        return app

    def _study_search(self, request: Request) -> dict[str, Any]:
        self.requests.append(str(request.url))
        q = request.query_params
        pid = q.get("patient", "").removeprefix("Patient/")
        found = [s for s in self.studies if s["subject"]["reference"] == f"Patient/{pid}"]
        found.sort(key=lambda s: s["started"], reverse=q.get("_sort") == "-started")
        offset = int(q.get("_offset", "0"))
        page = found[offset:offset + self.page_size]
        entries: list[dict[str, Any]] = [
            {"resource": s, "search": {"mode": "match"}} for s in page]
        if page and q.get("_include") == "ImagingStudy:endpoint":
            entries.append({"resource": {"resourceType": "Endpoint", "id": "ep1",
                                         "address": "http://archive/dicom-web"},
                            "search": {"mode": "include"}})
        links = []
        if offset + self.page_size < len(found):
            params = dict(q)
            params["_offset"] = str(offset + self.page_size)
            links.append({"relation": "next", "url": f"{self.base}/ImagingStudy?"
                          + "&".join(f"{k}={v}" for k, v in params.items())})
        return {"resourceType": "Bundle", "type": "searchset", "total": len(found),
                "entry": entries, "link": links}

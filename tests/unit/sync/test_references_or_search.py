"""ServiceRequest / Patient lookups as OR-searches (R4 3.1.1.5.4): answers mapped back to
each identifier exactly, duplicates refused, a paged chunk searched value by value."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from bridge.config import FhirSettings
from bridge.errors import FhirRejected
from bridge.fhir.client import FhirClient
from bridge.sync.references import OR_CHUNK, ReferenceResolver

SYS = "urn:oid:1.2.3.4"


class Ehr:
    """ServiceRequests by identifier value; answers batches of OR-searches like HAPI."""

    def __init__(self, known: dict[str, list[str]], page: int | None = None) -> None:
        self.known = known  # value -> ids holding it
        self.page = page
        self.searches: list[list[str]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        bundle = json.loads(request.content)
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "batch-response",
                                         "entry": [self._search(e) for e in bundle["entry"]]})

    def _search(self, entry: dict[str, Any]) -> dict[str, Any]:
        query = parse_qs(urlsplit(entry["request"]["url"]).query)
        values = [v.split("|", 1)[1] for v in query["identifier"][0].split(",")]
        self.searches.append(values)
        count = int(query["_count"][0])
        hits = [{"resource": {"resourceType": "ServiceRequest", "id": rid,
                              "identifier": [{"system": SYS, "value": v},
                                             {"system": "urn:other", "value": "x"}]},
                 "search": {"mode": "match"}}
                for v in values for rid in self.known.get(v, [])]
        limit = min(count, self.page or count)
        links = [{"relation": "next", "url": "ServiceRequest?page=2"}] if len(hits) > limit \
            else []
        return {"resource": {"resourceType": "Bundle", "type": "searchset", "link": links,
                             "entry": hits[:limit]},
                "response": {"status": "200 OK"}}


def _resolver(ehr: Ehr) -> ReferenceResolver:
    fhir = FhirClient(FhirSettings(base_url="http://ehr.test/fhir"),
                      transport=httpx.MockTransport(ehr.handler))
    return ReferenceResolver(fhir)


async def test_many_identifiers_are_few_searches_each_mapped_to_its_own_resource() -> None:
    ehr = Ehr({f"ACC{i}": [f"sr-{i}"] for i in range(0, 70, 2)})  # even ones exist
    resolver = _resolver(ehr)
    keys = [(SYS, f"ACC{i}") for i in range(70)]
    await resolver.prefetch([], keys)
    assert [len(s) for s in ehr.searches] == [OR_CHUNK, 70 - OR_CHUNK]
    for i in range(70):
        want = f"ServiceRequest/sr-{i}" if i % 2 == 0 else None
        assert resolver.service_request((SYS, f"ACC{i}")) == want


async def test_a_duplicate_identifier_is_refused() -> None:
    resolver = _resolver(Ehr({"ACC1": ["sr-a", "sr-b"], "ACC2": ["sr-c"]}))
    with pytest.raises(FhirRejected, match="2 ServiceRequest resources"):
        await resolver.prefetch([], [(SYS, "ACC1"), (SYS, "ACC2")])


async def test_a_paged_answer_is_searched_again_value_by_value() -> None:
    ehr = Ehr({"ACC1": ["sr-1"], "ACC2": ["sr-2"], "ACC3": ["sr-3"]}, page=2)
    resolver = _resolver(ehr)
    await resolver.prefetch([], [(SYS, "ACC1"), (SYS, "ACC2"), (SYS, "ACC3")])
    assert ehr.searches[0] == ["ACC1", "ACC2", "ACC3"]
    assert sorted(map(tuple, ehr.searches[1:])) == [("ACC1",), ("ACC2",), ("ACC3",)]
    assert resolver.service_request((SYS, "ACC3")) == "ServiceRequest/sr-3"

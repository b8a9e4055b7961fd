"""The order poller against an in-process FHIR server (httpx MockTransport): the first
poll reads active orders, the next ones every order changed since (cursor from the
server's lastUpdated, moved back by the overlap), bypassing the search cache, following
pages; an unreachable EHR leaves the served list as it was and is shown in the status."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
import pytest

from bridge.errors import FhirBusy
from bridge.fhir.client import FhirClient
from bridge.sections.base import FhirSettings
from bridge.worklist.orders import OrderBook
from bridge.worklist.poller import OrderPoller, OrderQuery, Window
from bridge.worklist.source import InMemoryWorklist
from tests.unit.worklist.worklist_helpers import ct_order, site_mapping

NOW = dt.datetime(2026, 12, 8, 12, 0, tzinfo=dt.UTC)


def _order(n: int, *, status: str = "active", version: str = "1",
           updated: str = "2026-12-08T11:00:00.250+00:00") -> list[dict[str, Any]]:
    order, patient = ct_order(id=f"sr-{n}", status=status)
    for ident in order["identifier"]:
        ident["value"] = f"{ident['value']}-{n}"
    order["meta"] = {"versionId": version, "lastUpdated": updated}
    return [order, patient]


class FakeFhir:
    """Answers ServiceRequest searches from ``pages`` (a list of lists of resources, one
    search per poll) and records each request."""

    def __init__(self) -> None:
        self.polls: list[list[list[dict[str, Any]]]] = []
        self.requests: list[httpx.Request] = []
        self.down = False

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.down:
            raise httpx.ConnectError("refused", request=request)
        page = int(request.url.params.get("page", "0"))
        pages = self.polls.pop(0) if page == 0 else self._current
        self._current = pages
        links = [{"relation": "next", "url": f"http://ehr.test/fhir/ServiceRequest?page="
                  f"{page + 1}"}] if page + 1 < len(pages) else []
        bundle = {"resourceType": "Bundle", "type": "searchset", "link": links,
                  "entry": [{"resource": r} for r in pages[page]]}
        return httpx.Response(200, json=bundle)


def _poller(fake: FakeFhir, worklist: InMemoryWorklist, clock: list[dt.datetime]
            ) -> tuple[OrderPoller, FhirClient]:
    fhir = FhirClient(FhirSettings(base_url="http://ehr.test/fhir"),
                      transport=httpx.MockTransport(fake.handler))
    poller = OrderPoller(fhir=fhir, book=OrderBook(site_mapping()), worklist=worklist,
                         query=OrderQuery(overlap=5.0, page_size=2),
                         window=Window(before=1, after=7, timezone="Europe/Berlin"),
                         clock=lambda: clock[0])
    return poller, fhir


def _accessions(worklist: InMemoryWorklist) -> list[str]:
    return sorted(str(i.AccessionNumber) for i in worklist.items())


def test_first_poll_reads_active_orders_then_changes_since_the_servers_lastupdated() -> None:
    async def scenario() -> None:
        fake, worklist, clock = FakeFhir(), InMemoryWorklist(), [NOW]
        poller, fhir = _poller(fake, worklist, clock)
        fake.polls = [[_order(1), _order(2, updated="2026-12-08T11:30:00.500+00:00")],
                      [_order(1, status="revoked", version="2")]]
        async with fhir:
            await poller.poll()
            assert _accessions(worklist) == ["ACC0001-1", "ACC0001-2"]
            first = fake.requests[0]
            assert first.url.params["status"] == "active"
            assert "_lastUpdated" not in first.url.params
            assert first.url.params.get_list("_include") == [
                "ServiceRequest:subject", "ServiceRequest:requester"]
            assert first.url.params["category"] == "http://snomed.info/sct|363679005"
            assert first.headers["Cache-Control"] == "no-cache"
            await poller.poll()
            assert len(fake.requests) == 3  # two pages, then the second poll
            second = fake.requests[2]
            # the newest order's lastUpdated, 5 s back; no status filter: cancellations too
            assert second.url.params["_lastUpdated"] == "ge2026-12-08T11:29:55.500Z"
            assert "status" not in second.url.params
            assert _accessions(worklist) == ["ACC0001-2"]
    asyncio.run(scenario())


def test_every_page_is_read() -> None:
    async def scenario() -> None:
        fake, worklist, clock = FakeFhir(), InMemoryWorklist(), [NOW]
        poller, fhir = _poller(fake, worklist, clock)
        fake.polls = [[_order(1), _order(2), _order(3)]]
        async with fhir:
            await poller.poll()
        assert len(fake.requests) == 3
        assert _accessions(worklist) == ["ACC0001-1", "ACC0001-2", "ACC0001-3"]
    asyncio.run(scenario())


def test_an_unreachable_ehr_leaves_the_list_served_and_shows_its_age() -> None:
    async def scenario() -> None:
        fake, worklist, clock = FakeFhir(), InMemoryWorklist(), [NOW]
        poller, fhir = _poller(fake, worklist, clock)
        fake.polls = [[_order(1)]]
        async with fhir:
            await poller.poll()
            fake.down = True
            clock[0] = NOW + dt.timedelta(seconds=90)
            with pytest.raises(FhirBusy):
                await poller.poll()
        assert _accessions(worklist) == ["ACC0001-1"]
        assert poller.status.failures == 1 and poller.status.last_error is not None
        assert poller.status.age(clock[0]) == 90.0
    asyncio.run(scenario())


def test_refusals_are_counted_by_field_and_the_others_served() -> None:
    async def scenario() -> None:
        fake, worklist, clock = FakeFhir(), InMemoryWorklist(), [NOW]
        poller, fhir = _poller(fake, worklist, clock)
        lonely = _order(2)[0]
        lonely["subject"] = {"reference": "Patient/not-included"}
        fake.polls = [[_order(1), [lonely]]]
        async with fhir:
            await poller.poll()
        assert _accessions(worklist) == ["ACC0001-1"]
        assert poller.status.refused == {"ServiceRequest.subject": 1}
        assert poller.status.scheduled == 1 and poller.status.served == 1
    asyncio.run(scenario())


def test_the_window_moves_with_the_day_without_any_change_read() -> None:
    async def scenario() -> None:
        fake, worklist, clock = FakeFhir(), InMemoryWorklist(), [NOW]
        poller, fhir = _poller(fake, worklist, clock)
        fake.polls = [[_order(1)], [[]], [[]]]  # scheduled 2026-12-09 (Berlin)
        async with fhir:
            await poller.poll()
            assert len(worklist.items()) == 1
            clock[0] = NOW + dt.timedelta(days=2)  # 12-10: still within one day before
            await poller.poll()
            assert len(worklist.items()) == 1
            clock[0] = NOW + dt.timedelta(days=3)
            await poller.poll()
            assert len(worklist.items()) == 0
    asyncio.run(scenario())

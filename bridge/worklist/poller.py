"""Reads the EHR's imaging orders into the worklist: a paged FHIR search of ServiceRequests
(with their Patients and requesters, ``_include``), first every active order, then on each
poll the orders changed since the last one (``_lastUpdated=ge``, FHIR R4 3.1.1.5.x search
on ``_lastUpdated``), whatever their status, so cancelled and completed orders leave.

The cursor is the newest ``meta.lastUpdated`` the server returned (its clock, not ours),
moved back by ``overlap`` seconds each time so an order committed late with an earlier
timestamp is still read; reading an order twice costs nothing (same version: skipped).
Every search asks ``Cache-Control: no-cache``: HAPI otherwise answers a repeated search
from its cache (60 s by default) and a new order would wait for that.

An EHR that cannot be reached leaves the worklist as it was: the poll fails, the SCP keeps
serving, :attr:`OrderPoller.status` shows since when the list is unconfirmed.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bridge.errors import BridgeError
from bridge.fhir.client import FhirClient
from bridge.jsonbytes import loads
from bridge.worklist.orders import Applied, OrderBook
from bridge.worklist.source import InMemoryWorklist

logger = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class OrderQuery:
    """Which ServiceRequests are orders for the worklist, and how to page them."""

    #: ``system|code`` of ServiceRequest.category, or empty for any
    category: str = "http://snomed.info/sct|363679005"
    page_size: int = 200
    #: seconds the since-cursor is moved back on each poll
    overlap: float = 5.0

    def params(self, since: dt.datetime | None) -> list[tuple[str, str]]:
        params = [("intent", "order"), ("_include", "ServiceRequest:subject"),
                  ("_include", "ServiceRequest:requester"), ("_count", str(self.page_size)),
                  ("_sort", "_lastUpdated")]
        if self.category:
            params.append(("category", self.category))
        if since is None:
            params.append(("status", "active"))  # the first read: what is on the list now
        else:
            start = since - dt.timedelta(seconds=self.overlap)
            params.append(("_lastUpdated", "ge" + start.astimezone(dt.UTC).strftime(
                "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"))
        return params


@dataclass(frozen=True)
class Window:
    """The scheduling window: SPS start dates from ``before`` days ago to ``after`` days
    ahead, counted in the mapping's time zone."""

    before: int = 1
    after: int = 7
    timezone: str = "UTC"

    def days(self, now: dt.datetime) -> tuple[dt.date, dt.date]:
        today = now.astimezone(zoneinfo.ZoneInfo(self.timezone)).date()
        return today - dt.timedelta(days=self.before), today + dt.timedelta(days=self.after)


@dataclass
class PollStatus:
    """What ``/status`` and ``worklist list`` show of the order source."""

    #: when the last poll finished without error (None: never)
    last_success: dt.datetime | None = None
    #: the last poll's error, while it lasts (None after a good poll)
    last_error: str | None = None
    polls: int = 0
    failures: int = 0
    scheduled: int = 0
    served: int = 0
    refused: dict[str, int] = field(default_factory=dict)

    def age(self, now: dt.datetime) -> float | None:
        """Seconds since the list was last confirmed by the EHR."""
        return None if self.last_success is None else \
            (now - self.last_success).total_seconds()


def _parse_instant(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class OrderPoller:
    """One poll: read the changed orders, update the book, replace the served list."""

    def __init__(self, *, fhir: FhirClient, book: OrderBook, worklist: InMemoryWorklist,
                 query: OrderQuery, window: Window, clock: Clock = _utcnow) -> None:
        self._fhir = fhir
        self._book = book
        self._worklist = worklist
        self._query = query
        self._window = window
        self._clock = clock
        self._cursor: dt.datetime | None = None
        self._served_days: tuple[dt.date, dt.date] | None = None
        self.status = PollStatus()

    @property
    def book(self) -> OrderBook:
        return self._book

    async def _search(self) -> tuple[list[dict[str, Any]], dt.datetime | None]:
        """Every resource of every page, and the newest order's ``meta.lastUpdated``."""
        resources: list[dict[str, Any]] = []
        newest = self._cursor
        url = "ServiceRequest"
        params: list[tuple[str, str]] | None = self._query.params(self._cursor)
        headers = {"Cache-Control": "no-cache"}
        while url:
            resp = await self._fhir.request("GET", url, params=params, headers=headers,
                                            interaction="worklist-orders")
            bundle = loads(resp.content)
            for entry in bundle.get("entry") or ():
                res = entry.get("resource")
                if not isinstance(res, dict):
                    continue
                resources.append(res)
                if res.get("resourceType") == "ServiceRequest":
                    updated = _parse_instant((res.get("meta") or {}).get("lastUpdated"))
                    if updated is not None and (newest is None or updated > newest):
                        newest = updated
            url = next((str(lnk["url"]) for lnk in bundle.get("link") or ()
                        if lnk.get("relation") == "next"), "")
            params = None  # the next link carries the whole query
        return resources, newest

    async def poll(self) -> Applied:
        """Read the orders changed since the last poll; raises the FHIR client's errors
        (the list served stays as it was)."""
        self.status.polls += 1
        try:
            resources, newest = await self._search()
        except BridgeError as exc:
            self.status.failures += 1
            self.status.last_error = f"{type(exc).__name__}: {exc}"
            raise
        first_poll = self._cursor is None
        applied = self._book.apply(resources)
        # the first poll read only active orders: from now on, every change
        self._cursor = newest if newest is not None else (
            self._clock() if first_poll else self._cursor)
        now = self._clock()
        days = self._window.days(now)
        if applied.changed or days != self._served_days or first_poll:
            items = self._book.items(first_day=days[0], last_day=days[1])
            self._worklist.replace(items)
            self._served_days = days
            self.status.served = len(items)
        refused = self._book.refusals()
        self.status.refused = dict(refused)
        self.status.scheduled = sum(1 for e in self._book.entries() if e.item is not None)
        self.status.last_success = now
        self.status.last_error = None
        if applied.refused:
            logger.warning("worklist orders refused", extra={
                "refused": applied.refused, "fields": sorted(refused)})
        if applied.changed:
            logger.info("worklist orders read", extra={
                "scheduled": applied.scheduled, "removed": applied.removed,
                "refused": applied.refused, "served": self.status.served})
        return applied

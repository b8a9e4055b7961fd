"""The order book: active orders become worklist items, refusals are kept by field, other
statuses take an order off, the scheduling window filters by SPS start date."""

from __future__ import annotations

import datetime as dt
from typing import Any

from bridge.worklist.orders import OrderBook
from tests.unit.worklist.worklist_helpers import ct_order, site_mapping


def _resources(version: str = "1", **changes: Any) -> list[dict[str, Any]]:
    order, patient = ct_order(**changes)
    order["meta"] = {"versionId": version, "lastUpdated": "2026-12-08T10:00:00Z"}
    return [order, patient]


def test_an_active_order_with_its_included_patient_is_scheduled() -> None:
    book = OrderBook(site_mapping())
    applied = book.apply(_resources())
    assert applied.scheduled == 1 and applied.changed
    entry = book.entry("sr-1")
    assert entry is not None and entry.item is not None and entry.refusal is None
    assert entry.item.AccessionNumber == "ACC0001"


def test_the_same_version_is_not_mapped_again() -> None:
    book = OrderBook(site_mapping())
    book.apply(_resources())
    again = book.apply(_resources())
    assert again.unchanged == 1 and not again.changed


def test_a_refused_order_is_listed_with_the_field_at_fault_and_not_served() -> None:
    book = OrderBook(site_mapping())
    order, _patient = ct_order()
    applied = book.apply([order])  # the Patient was not included: not found
    assert applied.refused == 1
    entry = book.entry("sr-1")
    assert entry is not None and entry.item is None and entry.refusal is not None
    assert entry.refusal.field == "ServiceRequest.subject"
    assert not entry.refusal.reason.startswith("ServiceRequest.subject")  # said once
    assert book.refusals() == {"ServiceRequest.subject": 1}
    assert book.items(first_day=dt.date(2026, 1, 1), last_day=dt.date(2027, 1, 1)) == []


def test_an_unmappable_station_is_refused_naming_the_station_field() -> None:
    book = OrderBook(site_mapping())
    book.apply(_resources(performerType={"coding": [{"system": "urn:x", "code": "ZZ"}]}))
    entry = book.entry("sr-1")
    assert entry is not None and entry.refusal is not None
    assert entry.refusal.kind == "order-station"


def test_an_order_the_mapper_cannot_read_is_refused_not_raised() -> None:
    book = OrderBook(site_mapping())
    applied = book.apply(_resources(identifier="not a list"))
    assert applied.refused == 1


def test_revoked_completed_and_entered_in_error_orders_leave_the_book() -> None:
    for status in ("revoked", "completed", "entered-in-error", "on-hold"):
        book = OrderBook(site_mapping())
        book.apply(_resources())
        applied = book.apply(_resources(version="2", status=status))
        assert applied.removed == 1, status
        assert book.entry("sr-1") is None


def test_a_proposal_is_not_an_order() -> None:
    book = OrderBook(site_mapping())
    assert book.apply(_resources(intent="proposal")).scheduled == 0
    assert book.entries() == []


def test_the_window_keeps_orders_scheduled_within_its_days() -> None:
    book = OrderBook(site_mapping())
    book.apply(_resources())  # scheduled 2026-12-09
    assert len(book.items(first_day=dt.date(2026, 12, 9), last_day=dt.date(2026, 12, 9))) == 1
    assert book.items(first_day=dt.date(2026, 12, 10), last_day=dt.date(2026, 12, 20)) == []
    assert book.items(first_day=dt.date(2026, 12, 1), last_day=dt.date(2026, 12, 8)) == []

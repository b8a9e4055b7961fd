"""The worklist's view of the EHR's orders: one entry per ServiceRequest, scheduled (a
worklist item) or refused (the field at fault), updated from search results.  Pure: no I/O,
no clock (the scheduling window's day is handed in).

An order is on the worklist while the EHR says it is an ``active`` ``order`` (FHIR R4
ServiceRequest.status, request-status value set); any other status (``revoked``,
``completed``, ``entered-in-error``, ``on-hold``...) takes it off at the next change read
(IHE RAD SWF.b: a cancelled order's Scheduled Procedure Step leaves the worklist).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset

from bridge.worklist.errors import OrderDataError
from bridge.worklist.mapper import map_order
from bridge.worklist.model import WorklistMapping

Json = Mapping[str, Any]


@dataclass(frozen=True)
class Refusal:
    """Why an order is not on the worklist: ``field`` the FHIR element at fault."""

    field: str
    kind: str
    reason: str


@dataclass(frozen=True)
class OrderEntry:
    """One active order: its worklist item, or why it has none."""

    order_id: str
    version: str
    item: Dataset | None
    refusal: Refusal | None


@dataclass(frozen=True)
class Applied:
    """What one batch of search results changed."""

    scheduled: int = 0
    refused: int = 0
    removed: int = 0
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.scheduled or self.refused or self.removed)


def _ref_key(resource: Json) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"


def _reference(value: Any) -> str | None:
    if isinstance(value, Mapping) and isinstance(value.get("reference"), str):
        ref: str = value["reference"]
        parts = ref.split("/_history/")[0].rstrip("/").split("/")
        return "/".join(parts[-2:]) if len(parts) >= 2 else None
    return None


def _version(resource: Json) -> str:
    meta = resource.get("meta")
    return str(meta.get("versionId") or meta.get("lastUpdated") or "") \
        if isinstance(meta, Mapping) else ""


class OrderBook:
    """The active orders by ServiceRequest id, mapped once per version."""

    def __init__(self, mapping: WorklistMapping) -> None:
        self._mapping = mapping
        self._entries: dict[str, OrderEntry] = {}
        #: Study Instance UID -> ServiceRequest id of every order scheduled since start,
        #: kept after the order leaves (a study often arrives after its order completed)
        self._by_study: dict[str, str] = {}

    def entries(self) -> list[OrderEntry]:
        return list(self._entries.values())

    def entry(self, order_id: str) -> OrderEntry | None:
        return self._entries.get(order_id)

    def apply(self, resources: Iterable[Json]) -> Applied:
        """Take in one search's resources: its ServiceRequests and the Patients /
        Practitioners it included (``_include``).  ServiceRequests no longer ``active``
        ``order`` leave; the others are mapped (a refusal is kept with its field)."""
        orders: list[Json] = []
        included: dict[str, Json] = {}
        for res in resources:
            if res.get("resourceType") == "ServiceRequest":
                orders.append(res)
            else:
                included[_ref_key(res)] = res
        counts: Counter[str] = Counter()
        for sr in orders:
            counts[self._apply_one(sr, included)] += 1
        return Applied(scheduled=counts["scheduled"], refused=counts["refused"],
                       removed=counts["removed"], unchanged=counts["unchanged"])

    def _apply_one(self, sr: Json, included: Mapping[str, Json]) -> str:
        order_id = str(sr.get("id") or "")
        if not order_id:
            return "unchanged"
        if sr.get("status") != "active" or sr.get("intent") != "order":
            return "removed" if self._entries.pop(order_id, None) is not None else "unchanged"
        version = _version(sr)
        known = self._entries.get(order_id)
        if known is not None and version and known.version == version:
            return "unchanged"
        subject = _reference(sr.get("subject"))
        requester = _reference(sr.get("requester"))
        try:
            item = map_order(sr, included.get(subject) if subject else None, self._mapping,
                             requester=included.get(requester) if requester else None)
        except OrderDataError as exc:
            self._entries[order_id] = OrderEntry(
                order_id, version, None,
                Refusal(exc.field, exc.kind, str(exc).removeprefix(f"{exc.field}: ")))
            return "refused"
        except Exception as exc:  # an order the mapper did not foresee: listed, not fatal
            self._entries[order_id] = OrderEntry(
                order_id, version, None,
                Refusal("ServiceRequest", "order-unreadable", f"{type(exc).__name__}: {exc}"))
            return "refused"
        self._entries[order_id] = OrderEntry(order_id, version, item, None)
        self._by_study[str(item.StudyInstanceUID)] = order_id
        return "scheduled"

    def order_of_study(self, study_uid: str) -> str | None:
        """The ServiceRequest id whose worklist item gave ``study_uid`` (this process's
        memory: orders scheduled since it started)."""
        return self._by_study.get(study_uid)

    def refusals(self) -> Counter[str]:
        """Refused orders counted by the field at fault."""
        return Counter(e.refusal.field for e in self._entries.values() if e.refusal)

    def items(self, *, first_day: dt.date, last_day: dt.date) -> list[Dataset]:
        """The worklist: the scheduled orders whose Scheduled Procedure Step starts within
        ``[first_day, last_day]`` (an item without a start date is kept)."""
        low, high = first_day.strftime("%Y%m%d"), last_day.strftime("%Y%m%d")
        out: list[Dataset] = []
        for entry in self._entries.values():
            if entry.item is None:
                continue
            steps = entry.item.get("ScheduledProcedureStepSequence") or []
            day = str(steps[0].get("ScheduledProcedureStepStartDate", "") or "") if steps \
                else ""
            if not day or low <= day <= high:
                out.append(entry.item)
        return out

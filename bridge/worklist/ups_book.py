"""The UPS-RS worklist (PS3.18 11): Search, Retrieve, Change State and Update Workitem over
the items the Modality Worklist SCP serves (the same orders, :mod:`bridge.worklist.ups`).

A workitem's performed state is a step of the MPPS store (:class:`MppsKeeper`, the same
rows and the same ``worklist.mpps`` report): IN PROGRESS creates it (the EHR gets a
Procedure ``in-progress`` basedOn the order), COMPLETED completes it (the Procedure
``completed``, the order completed as after an MPPS COMPLETED), CANCELED discontinues it
(``stopped``, the order left active).  The Transaction UID is kept in the step.  Without a
step a workitem is SCHEDULED.
"""

from __future__ import annotations

import datetime as dt
import threading
import zoneinfo
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydicom.dataset import Dataset

from bridge.worklist.mpps import MppsError
from bridge.worklist.mpps_store import MppsKeeper
from bridge.worklist.source import ItemSource
from bridge.worklist.ups import (
    IN_PROGRESS,
    SCHEDULED,
    UpsError,
    check_update,
    final_of,
    merged,
    step_of,
    transition,
    workitem_of,
    workitem_uid,
)
from bridge.worklist.ups_query import WorkitemQuery

Json = dict[str, Any]


def _now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UpsWorklist:
    """Workitems over ``source`` (the served items) with their states in ``keeper``;
    ``timezone`` is the site's (the step's start and end times, as a modality's MPPS)."""

    def __init__(self, *, source: ItemSource, keeper: MppsKeeper, timezone: str,
                 clock: Callable[[], dt.datetime] = _now_utc) -> None:
        self._source = source
        self._keeper = keeper
        self._tz = zoneinfo.ZoneInfo(timezone)
        self._clock = clock
        self._lock = threading.Lock()
        self._by_uid: dict[str, Dataset] = {}
        self._of: Sequence[Dataset] | None = None

    def _items(self) -> dict[str, Dataset]:
        """The served items by workitem UID (rebuilt when the served list was replaced)."""
        items = self._source.items()
        with self._lock:
            if items is not self._of:
                self._by_uid = {workitem_uid(str(i.get("StudyInstanceUID", ""))): i
                                for i in items}
                self._of = items
            return self._by_uid

    def _state(self, step: Any) -> tuple[str, str | None]:
        if step is None:
            return SCHEDULED, None
        ds = Dataset.from_json(dict(step.attributes))
        return (str(ds.get("ProcedureStepState", "") or IN_PROGRESS),
                str(ds.get("TransactionUID", "") or "") or None)

    def _workitem(self, uid: str) -> Dataset | None:
        item = self._items().get(uid)
        record = self._keeper.record(uid)
        if item is None and record is None:
            return None
        base = workitem_of(item) if item is not None else None
        return merged(base, uid, record.attributes if record is not None else None)

    def search(self, params: Iterable[tuple[str, str]], *, limit: int = 100,
               offset: int = 0) -> list[Json]:
        """The matching workitems as DICOM JSON, in the worklist's order."""
        query = WorkitemQuery(params)
        found: list[Json] = []
        skipped = 0
        for uid in list(self._items()):
            wi = self._workitem(uid)
            if wi is None or not query.matches(wi):
                continue
            if skipped < offset:
                skipped += 1
                continue
            found.append(wi.to_json_dict())
            if len(found) >= limit:
                break
        return found

    def retrieve(self, uid: str) -> Json:
        wi = self._workitem(uid)
        if wi is None:
            raise UpsError("no such workitem", http_status=404, keyword="SOPInstanceUID",
                           code="C307")
        return wi.to_json_dict()

    def change_state(self, uid: str, request: Dataset) -> tuple[str, str]:
        """Apply Change Workitem State; the state after it and a warning ("" if none)."""
        wi = self._workitem(uid)
        if wi is None:
            raise UpsError("no such workitem", http_status=404, keyword="SOPInstanceUID",
                           code="C307")
        step = self._keeper.record(uid)
        current, kept = self._state(step)
        requested = str(request.get("ProcedureStepState", "") or "").strip()
        if not requested:
            raise UpsError("missing in Change State", http_status=400,
                           keyword="ProcedureStepState")
        txn = str(request.get("TransactionUID", "") or "").strip() or None
        move = transition(current, requested, kept_txn=kept, txn=txn)
        if move.to is None:
            return current, move.warning
        now = self._clock().astimezone(self._tz)
        try:
            if move.to == IN_PROGRESS:
                assert txn is not None
                self._keeper.create(uid, step_of(wi, txn=txn, now=now))
            else:
                self._keeper.set(uid, final_of(move.to, now=now))
        except MppsError as exc:  # another request changed the step meanwhile
            raise UpsError("changed by another request meanwhile", http_status=409,
                           keyword=exc.keyword) from exc
        return move.to, ""

    def update(self, uid: str, *, txn: str | None, modification: Dataset) -> None:
        """Apply Update Workitem: the attributes replace the workitem's."""
        if self._workitem(uid) is None:
            raise UpsError("no such workitem", http_status=404, keyword="SOPInstanceUID",
                           code="C307")
        current, kept = self._state(self._keeper.record(uid))
        check_update(current, kept_txn=kept, txn=txn, modification=modification)
        try:
            self._keeper.set(uid, modification)
        except MppsError as exc:
            raise UpsError("changed by another request meanwhile", http_status=409,
                           keyword=exc.keyword) from exc

"""An index of worklist items by the keys most Modality Worklist queries name; pure.

A C-FIND with a single-value or range key on one of these attributes only needs to look
at the items that carry a fitting value; every other item cannot match (PS3.4 C.2.2.2:
an item attribute absent or empty does not match a non-universal key):

=================================  ===================================================
query key                          candidates
=================================  ===================================================
AccessionNumber, PatientID         the items holding that exact value (C.2.2.2.1)
SPS Modality, ScheduledStationAE   the items with one Scheduled Procedure Step holding
                                   that exact value (C.2.2.2.1, C.2.2.2.6)
SPS ScheduledProcedureStepStart    the items with a step date in the date or date
Date                               range (C.2.2.2.5; a date-time range C.2.2.2.5.1
                                   bounds the date too)
=================================  ===================================================

:meth:`WorklistIndex.candidates` only narrows: it returns a superset of the matches, in
the items' order, and the caller still applies :class:`bridge.worklist.matching.Matcher`
to each candidate, so the matching rules stay in one place.  A key with a wildcard, a
list of values, or universal matching does not narrow.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import Any, Final

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from bridge.worklist.errors import QueryError
from bridge.worklist.matching import UNABLE_TO_PROCESS

_TOP: Final = ("AccessionNumber", "PatientID")
_STEP_EXACT: Final = ("Modality", "ScheduledStationAETitle")
_STEP_DATE: Final = "ScheduledProcedureStepStartDate"
_STEP: Final = "ScheduledProcedureStepSequence"


def _stripped(value: Any) -> list[str]:
    """The item's values as the matcher reads them (trailing and leading spaces off)."""
    if value is None or value == "":
        return []
    values = list(value) if isinstance(value, MultiValue) else [value]
    out = [str(v).strip() for v in values]
    if isinstance(value, MultiValue):
        out.append("\\".join(str(v) for v in values))  # the joined text, as a pair reads it
    return [v for v in out if v]


def _exact(key: DataElement) -> str | None:
    """The single value of a key that narrows by equality, or None (universal, wildcard,
    several values)."""
    value = key.value
    if value is None or isinstance(value, MultiValue):
        return None
    text = str(value).strip()
    if not text or "*" in text or "?" in text or "\\" in text:
        return None
    return text


class WorklistIndex:
    """Positions of ``items`` by accession, patient ID, SPS modality, station AE and date;
    built once when the worklist is replaced."""

    def __init__(self, items: Iterable[Dataset]) -> None:
        self.items: tuple[Dataset, ...] = tuple(items)
        self._exact: dict[str, dict[str, list[int]]] = {
            k: {} for k in (*_TOP, *_STEP_EXACT)}
        by_date: dict[str, list[int]] = {}
        for position, item in enumerate(self.items):
            for keyword in _TOP:
                for value in set(_stripped(item.get(keyword))):
                    self._exact[keyword].setdefault(value, []).append(position)
            steps = item.get(_STEP)
            seen: dict[str, set[str]] = {k: set() for k in (*_STEP_EXACT, _STEP_DATE)}
            for step in steps if isinstance(steps, Sequence) else ():
                for keyword in _STEP_EXACT:
                    seen[keyword].update(_stripped(step.get(keyword)))
                seen[_STEP_DATE].update(v[:8] for v in _stripped(step.get(_STEP_DATE)))
            for keyword in _STEP_EXACT:
                for value in seen[keyword]:
                    self._exact[keyword].setdefault(value, []).append(position)
            for value in seen[_STEP_DATE]:
                by_date.setdefault(value, []).append(position)
        self._dates = sorted(by_date)
        self._by_date = by_date

    def candidates(self, query: Dataset) -> Sequence[Dataset]:
        """The items that may match ``query`` (a superset of the matches, in order).
        Call :func:`bridge.worklist.matching.check_query` first."""
        narrowed: list[set[int] | list[int]] = []
        for keyword in _TOP:
            if keyword in query and (text := _exact(query[keyword])) is not None:
                narrowed.append(self._exact[keyword].get(text, []))
        steps = query.get(_STEP)  # the sequence's items (check_query allows one at most)
        if steps:
            step = steps[0]
            for keyword in _STEP_EXACT:
                if keyword in step and (text := _exact(step[keyword])) is not None:
                    narrowed.append(self._exact[keyword].get(text, []))
            if _STEP_DATE in step and (dates := self._date_positions(step[_STEP_DATE])):
                narrowed.append(dates)
        if not narrowed:
            return self.items
        smallest = min(narrowed, key=len)
        positions = set(smallest)
        for other in narrowed:
            if other is not smallest and len(positions) > 0:
                positions.intersection_update(other)
        return [self.items[p] for p in sorted(positions)]

    def _date_positions(self, key: DataElement) -> set[int] | None:
        """Positions of items with a step date within the key's date or range; None when
        the key does not narrow (universal)."""
        value = key.value
        if value is None or isinstance(value, MultiValue):
            return None
        text = str(value).strip()
        if not text:
            return None
        low, dash, high = text.partition("-")
        if not dash:
            high = low
        if len(low) not in (0, 8) or len(high) not in (0, 8):  # check_query refuses these
            raise QueryError("not a DA value or range", keyword=_STEP_DATE,
                             status=UNABLE_TO_PROCESS)
        start = bisect.bisect_left(self._dates, low) if low else 0
        stop = bisect.bisect_right(self._dates, high) if high else len(self._dates)
        out: set[int] = set()
        for date in self._dates[start:stop]:
            out.update(self._by_date[date])
        return out

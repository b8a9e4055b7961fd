"""Search Workitems' query parameters (PS3.18 11.9.1, 8.3.4) as a matcher, pure.

``{attributeID}={value}``: a keyword or an 8-digit tag, dotted for a sequence's item
(``ReferencedRequestSequence.AccessionNumber``, ``0040A370.00080050``); the value follows
the matching of PS3.4 C.2.2.2 as the worklist's C-FIND does (:mod:`bridge.worklist.matching`:
single value, ``*``/``?`` wildcards, DA/TM ranges, sequence matching, universal matching),
plus DT ranges (``20261208-20261209``, ``20261208093000-``) for
Scheduled Procedure Step Start DateTime.  ``limit``, ``offset``, ``includefield`` and
``fuzzymatching`` are not keys.  An unknown attribute or a malformed value is a
:class:`~bridge.worklist.ups.UpsError` (400) naming it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Final

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset

from bridge.worklist.errors import QueryError
from bridge.worklist.matching import Matcher
from bridge.worklist.ups import UpsError

NOT_KEYS: Final = frozenset({"limit", "offset", "includefield", "fuzzymatching"})
_DT = re.compile(r"\d{4,14}(?:\.\d{1,6})?")


def _tag(attribute: str) -> int:
    if re.fullmatch(r"[0-9A-Fa-f]{8}", attribute):
        tag = int(attribute, 16)
        if keyword_for_tag(tag):
            return tag
    else:
        found = tag_for_keyword(attribute)
        if found is not None:
            return int(found)
    raise UpsError("not a DICOM attribute (PS3.18 8.3.4)", http_status=400,
                   keyword=attribute)


def _dt_test(keyword: str, text: str) -> Callable[[Dataset], bool]:
    low, dash, high = text.partition("-")
    for part in (low, high):
        if part and not _DT.fullmatch(part):
            raise UpsError(f"not a DT value or range: {text!r} (PS3.5 6.2)", http_status=400,
                           keyword=keyword)
    if not dash:
        high = low
    lo = low.ljust(14, "0") if low else ""
    hi = (high.ljust(14, "9") if high else "~") if dash else high.ljust(14, "9")

    def test(ds: Dataset) -> bool:
        value = str(ds.get(keyword, "") or "").strip()
        return bool(value) and lo <= value.ljust(14, "0") <= hi

    return test


class WorkitemQuery:
    """The query of one Search Workitems request; ``matches(workitem)``."""

    def __init__(self, params: Iterable[tuple[str, str]]) -> None:
        self.query = Dataset()
        self._dt: list[Callable[[Dataset], bool]] = []
        for name, value in params:
            if name in NOT_KEYS:
                continue
            path = name.split(".")
            tags = [_tag(p) for p in path]
            if len(tags) == 1 and dictionary_VR(tags[0]) == "DT":
                self._dt.append(_dt_test(keyword_for_tag(tags[0]), value))
                continue
            level = self.query
            for tag in tags[:-1]:
                if dictionary_VR(tag) != "SQ":
                    raise UpsError("a path goes through sequences only", http_status=400,
                                   keyword=name)
                if tag not in level:
                    level.add_new(tag, "SQ", [Dataset()])
                level = level[tag].value[0]
            leaf = tags[-1]
            vr = dictionary_VR(leaf)
            if vr == "SQ":
                raise UpsError("a sequence is matched by its items' attributes",
                               http_status=400, keyword=name)
            level.add_new(leaf, vr, value)
        try:
            self._matcher = Matcher(self.query)
        except QueryError as exc:
            raise UpsError(str(exc), http_status=400, keyword=exc.keyword) from exc

    def matches(self, workitem: Dataset) -> bool:
        try:
            return self._matcher.matches(workitem) and all(t(workitem) for t in self._dt)
        except QueryError as exc:  # a malformed DA/TM range is found when first used
            raise UpsError(str(exc), http_status=400, keyword=exc.keyword) from exc

"""Worklist C-FIND matching on pydicom Datasets (PS3.4 C.2.2.2, K.6.1.2); pure.

================  =====================================================================
kind              rule (PS3.4 section)
================  =====================================================================
universal         an empty key, ``*``, or an empty sequence / sequence item matches
                  every item and only asks for the value back (C.2.2.2.3)
single value      equal, trailing spaces ignored; PN case-insensitive and on any of
                  its component groups (C.2.2.2.1, PS3.5 6.2.1.2)
list of UIDs      ``uid1\\uid2`` matches either (C.2.2.2.2)
wildcard          ``*`` any run, ``?`` one character, in any text VR other than DA, TM,
                  DT, UI (C.2.2.2.4)
range             DA/TM/DT ``a-b``, ``a-``, ``-b`` inclusive (C.2.2.2.5); a date key and
                  a time key of the Scheduled Procedure Step are matched as one date-time
                  range when either is a range (C.2.2.2.5.1)
sequence          a sequence key matches when one item of the sequence matches every key
                  of the query's item (C.2.2.2.6)
================  =====================================================================

An item attribute that is absent or empty does not match a non-universal key.  A malformed
date or time raises :class:`QueryError` (0xC001, unable to process) and a key outside
Table K.6-1 raises it with 0xA900, before any item is looked at (:func:`check_query`).

Partial times name their whole unit: ``-1100`` includes 11:00:59, ``0930`` matches 09:30:00
to 09:30:59 (PS3.5 6.2 TM allows omitting the trailing components).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from bridge.worklist.errors import QueryError
from bridge.worklist.keys import NOT_MATCHED, SEQUENCE_ITEM_KEYS, TOP_KEYS

UNSUPPORTED: Final = 0xA900
UNABLE_TO_PROCESS: Final = 0xC001

_DA = re.compile(r"\d{8}")
_TM = re.compile(r"\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?")
_NO_WILDCARD_VRS: Final = frozenset({"DA", "TM", "DT", "UI"})
_DATE_TIME_PAIRS: Final = (("ScheduledProcedureStepStartDate", "ScheduledProcedureStepStartTime"),)


# --- validation of the query ----------------------------------------------------------------


def check_query(query: Dataset) -> None:
    """Raise :class:`QueryError` for a key outside Table K.6-1 or a malformed date/time."""
    _check_level(query, TOP_KEYS, "")


def _check_level(ds: Dataset, allowed: frozenset[str], where: str) -> None:
    for elem in ds:
        keyword = elem.keyword or f"({elem.tag.group:04X},{elem.tag.element:04X})"
        if elem.keyword in NOT_MATCHED and not where:
            continue
        if keyword not in allowed:
            raise QueryError("not a key of the Modality Worklist Information Model "
                             "(PS3.4 Table K.6-1)", keyword=where + keyword, status=UNSUPPORTED)
        if elem.VR == "SQ":
            if len(elem.value) > 1:
                raise QueryError("a sequence key holds at most one item (PS3.4 C.2.2.2.6)",
                                 keyword=where + keyword, status=UNABLE_TO_PROCESS)
            for sub in elem.value:
                _check_level(sub, SEQUENCE_ITEM_KEYS.get(keyword, frozenset()),
                             f"{where}{keyword}>")
        elif elem.VR in ("DA", "TM"):
            _range(elem, where + keyword)


def _text(elem: DataElement) -> str:
    value = elem.value
    if value is None:
        return ""
    if isinstance(value, MultiValue):
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def _range(elem: DataElement, keyword: str) -> tuple[str, str] | None:
    """A DA/TM key as an inclusive (low, high) of comparable strings, or None when
    universal.  Open ends are "" and "~"."""
    text = _text(elem)
    if not text:
        return None
    pattern = _DA if elem.VR == "DA" else _TM
    low, dash, high = text.partition("-")
    if not dash:
        high = low
    for part in (low, high):
        if part and not pattern.fullmatch(part):
            raise QueryError(f"not a {elem.VR} value or range: {text!r} (PS3.5 6.2, "
                             "PS3.4 C.2.2.2.5)", keyword=keyword, status=UNABLE_TO_PROCESS)
    if dash and not low and not high:
        raise QueryError("a range needs at least one end", keyword=keyword,
                         status=UNABLE_TO_PROCESS)
    if elem.VR == "DA":
        return low or "", high or "~"
    return (_time(low, "0") if low else ""), (_time(high, "9") if high else "~")


def _time(value: str, fill: str) -> str:
    """HHMMSS.ffffff, the omitted components filled with the lowest or highest digits."""
    whole, _, frac = value.partition(".")
    if len(whole) < 6:
        whole += ("0000" if fill == "0" else "5959")[: 6 - len(whole)]
    return f"{whole}.{(frac + fill * 6)[:6] if frac or fill == '9' else '000000'}"


# --- matching ------------------------------------------------------------------------------


def matches(query: Dataset, item: Dataset) -> bool:
    """True when ``item`` matches every key of ``query`` (call :func:`check_query` first)."""
    return Matcher(query).matches(item)


#: one compiled key: True when the item (or SPS item) satisfies it
Predicate = Callable[[Dataset], bool]


class Matcher:
    """A query compiled once (ranges parsed, patterns built, date/time pairs found) and
    applied to many items: a C-FIND reads every scheduled item."""

    def __init__(self, query: Dataset) -> None:
        self.query = query
        self._predicates = _compile_level(query)
        # the sequence keys' own matchers, compiled once too: every answer filters its
        # Scheduled Procedure Step items with them
        self._inner = {key.tag: Matcher(key.value[0]) for key in query
                       if key.VR == "SQ" and key.value and len(key.value[0])}

    def matches(self, item: Dataset) -> bool:
        return all(test(item) for test in self._predicates)

    def response(self, item: Dataset) -> Dataset:
        """See :func:`response`."""
        return _response(self.query, item, self._inner)


def _compile_level(query: Dataset) -> list[Predicate]:
    paired = _pairs(query)
    predicates = []
    for elem in query:
        keyword = elem.keyword
        if keyword in NOT_MATCHED or keyword in paired:
            continue
        test = _compile_element(elem)
        if test is not None:
            predicates.append(test)
    predicates += [_compile_date_time(query, date, time)
                   for date, time in _DATE_TIME_PAIRS if date in paired]
    return predicates


def _pairs(query: Dataset) -> set[str]:
    """Keywords of date/time pairs matched together (either key a range)."""
    out: set[str] = set()
    for date, time in _DATE_TIME_PAIRS:
        if date not in query or time not in query:
            continue
        d, t = _text(query[date]), _text(query[time])
        if d and t and ("-" in d or "-" in t):
            out |= {date, time}
    return out


def _compile_date_time(query: Dataset, date: str, time: str) -> Predicate:
    dates = _range(query[date], date)
    times = _range(query[time], time)
    assert dates is not None and times is not None
    low = dates[0] + times[0] if dates[0] else ""
    high = dates[1] + times[1] if dates[1] != "~" else "~"

    def test(item: Dataset) -> bool:
        item_date = _text(item[date]) if date in item else ""
        if not item_date:
            return False
        item_time = _text(item[time]) if time in item else ""
        key = item_date + (_time(item_time, "0") if item_time else "000000.000000")
        return low <= key <= high

    return test


def _compile_element(key: DataElement) -> Predicate | None:
    """The key's test, or None for universal matching (C.2.2.2.3)."""
    if key.VR == "SQ":
        return _compile_sequence(key)
    text = _text(key)
    if not text or text == "*":
        return None
    tag = key.tag
    value_test = _value_test(key, text)
    groups = key.VR == "PN" and "=" not in text

    def test(item: Dataset) -> bool:
        found = item.get(tag)
        if found is None:
            return False
        values = _values(found)
        if groups:
            # a query on one component group matches any of the item's groups (alphabetic,
            # ideographic, phonetic; PS3.5 6.2.1.2): "山田*" finds "Yamada^Taro=山田^太郎"
            values = [group for v in values for group in (v, *v.split("=")) if group]
        return any(value_test(v) for v in values)

    return test


def _value_test(key: DataElement, text: str) -> Callable[[str], bool]:
    if key.VR in ("DA", "TM"):
        low, high = _range(key, key.keyword) or ("", "~")
        if key.VR == "TM":
            return lambda v: low <= _time(v, "0") <= high
        return lambda v: low <= v <= high
    if key.VR == "UI":
        uids = frozenset(text.split("\\"))
        return lambda v: v in uids
    fold = key.VR == "PN"
    if key.VR not in _NO_WILDCARD_VRS and ("*" in text or "?" in text):
        pattern = re.compile(_wildcard(text), re.IGNORECASE if fold else 0)
        return lambda v: pattern.fullmatch(v) is not None
    if fold:
        wanted = text.rstrip("^ ").casefold()
        return lambda v: v.rstrip("^ ").casefold() == wanted
    return lambda v: v == text


def _values(found: DataElement) -> list[str]:
    value: Any = found.value
    if value is None or value == "":
        return []
    items = list(value) if isinstance(value, MultiValue) else [value]
    return [str(v).strip() for v in items if str(v).strip()]


def _wildcard(text: str) -> str:
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)


def _compile_sequence(key: DataElement) -> Predicate | None:
    query_items = list(key.value or [])
    if not query_items or len(query_items[0]) == 0:
        return None  # universal sequence matching
    tag = key.tag
    inner = _compile_level(query_items[0])

    def test(item: Dataset) -> bool:
        found = item.get(tag)
        if found is None or found.VR != "SQ":
            return False
        return any(all(t(candidate) for t in inner) for candidate in found.value)

    return test


# --- the response --------------------------------------------------------------------------


def response(query: Dataset, item: Dataset) -> Dataset:
    """The item's values of the query's keys only (PS3.4 C.4.1.1.3.2): a key the item
    lacks is returned empty; sequence keys return the matching-level attributes of every
    item asked for, and only the sequence items that match."""
    return _response(query, item)


def _response(query: Dataset, item: Dataset, inner: dict[Any, Matcher] | None = None
              ) -> Dataset:
    out = Dataset()
    for key in query:
        if key.keyword in NOT_MATCHED:
            continue
        found = item.get(key.tag)
        if key.VR == "SQ":
            wanted = list(key.value or [])
            items = list(found.value) if found is not None and found.VR == "SQ" else []
            if wanted and len(wanted[0]):
                step = (inner or {}).get(key.tag) or Matcher(wanted[0])
                items = [step.response(i) for i in items if step.matches(i)]
            out.add_new(key.tag, "SQ", items)
        elif found is None:
            out.add_new(key.tag, key.VR, None)
        else:
            out.add_new(key.tag, found.VR, found.value)
    return out

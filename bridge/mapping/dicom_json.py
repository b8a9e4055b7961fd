"""Tolerant reading of attributes from DICOM JSON datasets (PS3.18 F.2).

A dataset is a dict keyed by 8-hex-digit tags; each element is ``{"vr": ..., "Value": [...]}``
(F.2.2), sequences hold datasets (F.2.4), person names hold component-group objects (F.2.2),
IS/DS values are JSON numbers or numeric strings (F.2.3.1, and what archives really send).

DICOM JSON is UTF-8 (F.2), so strings arrive already decoded; SpecificCharacterSet only
matters when reading Part-10 files (see :mod:`bridge.mapping.files`).

Nothing here raises on bad data: malformed elements and unusable values are reported to the
:class:`~bridge.mapping.sink.WarningSink` and read as absent.  Every accessor takes the VR the
standard gives the attribute, so a wrong ``"vr"`` in the input cannot loosen the checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from bridge.mapping import values as v
from bridge.mapping.problems import Problem
from bridge.mapping.sink import WarningSink

Dataset = Mapping[str, Any]

_EMPTY: Final[list[Any]] = []
MALFORMED = Problem("malformed-json", "malformed DICOM JSON element (PS3.18 F.2.2)")
BAD_ITEM = Problem("malformed-json", "sequence item is not a dataset (PS3.18 F.2.4)")
PN_AS_STRING = Problem(
    "malformed-json", "person name is a string, not an object (PS3.18 F.2.2)"
)
NOT_A_PERSON_NAME = Problem("malformed-json", "not a person name (PN)")
MULTIPLE = Problem(
    "multiple-values", "several values for a single-valued attribute (VM 1): the first is used"
)
# Orthanc answers an IS it cannot parse ("abc", "1.5") with an empty Value array, where
# PS3.18 F.2.5 would have no Value at all: the value was there and was lost
DROPPED_INTEGER = Problem(
    "invalid-integer",
    "empty Value array: the archive dropped a value that is not an IS integer (PS3.5 6.2)",
)


def _not_a_string(vr: str) -> Problem:
    # the text names the VR, never the value
    return Problem("malformed-json", f"not a string ({vr})")


def raw_values(ds: Dataset, tag: str, sink: WarningSink, where: str | None = None) -> list[Any]:
    """The ``Value`` array of an element; empty when absent, empty or malformed."""
    element = ds.get(tag)
    if element is None:
        return _EMPTY
    if type(element) is not dict:
        sink.add(tag, element, MALFORMED, where)
        return _EMPTY
    found = element.get("Value")
    if found is None:
        return _EMPTY
    if type(found) is not list:
        sink.add(tag, found, MALFORMED, where)
        return _EMPTY
    return found


def texts(ds: Dataset, tag: str, vr: str, sink: WarningSink, where: str | None = None) -> list[str]:
    """All usable string values of a multi-valued text attribute, in order."""
    out: list[str] = []
    for value in raw_values(ds, tag, sink, where):
        if value is None:
            continue
        if not isinstance(value, str):
            sink.add(tag, value, _not_a_string(vr), where)
            continue
        text, problem = v.check_text(value, vr)
        if problem is not None:
            sink.add(tag, value, problem, where)
        elif text is not None:
            out.append(text)
    return out


def _joined(values: list[Any]) -> str:
    """Several values as DICOM writes them (PS3.5 6.4: backslash-separated), for a warning."""
    return "\\".join("" if value is None else str(value) for value in values)


def is_empty(ds: Dataset, tag: str) -> bool:
    """True when the attribute is absent or has no value but padding (a Type 2 empty value);
    False when it has a value, usable or not."""
    element = ds.get(tag)
    if type(element) is not dict:
        return element is None
    found = element.get("Value")
    if type(found) is not list:
        return found is None
    return all(value is None or (isinstance(value, str) and not value.strip(" \x00"))
               for value in found)


def text(ds: Dataset, tag: str, vr: str, sink: WarningSink, where: str | None = None) -> str | None:
    """The first usable string value of a single-valued text attribute; more than one value
    is reported (PS3.6 gives these attributes VM 1)."""
    found = raw_values(ds, tag, sink, where)
    if not found:
        return None
    if len(found) == 1:
        value = found[0]
        if value is None:
            return None
        if not isinstance(value, str):
            sink.add(tag, value, _not_a_string(vr), where)
            return None
        checked, problem = v.check_text(value, vr)
        if problem is not None:
            sink.add(tag, value, problem, where)
        return checked
    values = texts(ds, tag, vr, sink, where)
    if len(values) > 1:
        sink.add(tag, _joined(found), MULTIPLE, where)
    return values[0] if values else None


def code_string(ds: Dataset, tag: str, sink: WarningSink, where: str | None = None) -> str | None:
    """The first value of a CS attribute, upper-cased."""
    for value in raw_values(ds, tag, sink, where):
        if value is None:
            continue
        if not isinstance(value, str):
            sink.add(tag, value, _not_a_string("CS"), where)
            return None
        checked, problem = v.check_code_string(value)
        if problem is not None:
            sink.add(tag, value, problem, where)
        return checked
    return None


def code_strings(ds: Dataset, tag: str, sink: WarningSink, where: str | None = None) -> list[str]:
    """All usable values of a multi-valued CS attribute (ModalitiesInStudy)."""
    out: list[str] = []
    for value in raw_values(ds, tag, sink, where):
        if not isinstance(value, str):
            if value is not None:
                sink.add(tag, value, _not_a_string("CS"), where)
            continue
        checked, problem = v.check_code_string(value)
        if problem is not None:
            sink.add(tag, value, problem, where)
        elif checked is not None:
            out.append(checked)
    return out


def uid(ds: Dataset, tag: str, sink: WarningSink, where: str | None = None) -> str | None:
    """The value of a UI attribute, or ``None`` (with a warning when it is not a UID)."""
    element = ds.get(tag)
    if type(element) is dict:
        found = element.get("Value")
        # fast path: the common, clean case costs two dict lookups and one regex match
        if type(found) is list and len(found) == 1 and v.is_valid_uid(found[0]):
            value: str = found[0]
            return value
    for value in raw_values(ds, tag, sink, where):
        if not isinstance(value, str):
            if value is not None:
                sink.add(tag, value, _not_a_string("UI"), where)
            return None
        checked, problem = v.check_uid(value)
        if problem is not None:
            sink.add(tag, value, problem, where)
        return checked
    return None


def integer(ds: Dataset, tag: str, sink: WarningSink, where: str | None = None) -> int | None:
    """The value of an IS attribute (SeriesNumber, InstanceNumber, counts)."""
    found = raw_values(ds, tag, sink, where)
    if not found:
        if found is not _EMPTY:  # an explicit "Value": []
            sink.add(tag, None, DROPPED_INTEGER, where)
        return None
    if len(found) > 1:
        sink.add(tag, _joined(found), MULTIPLE, where)
    value = found[0]
    if type(value) is int and v.IS_MIN <= value <= v.IS_MAX:
        return value
    if value is None:
        return None
    number, problem = v.check_integer(value)
    if problem is not None:
        sink.add(tag, value, problem, where)
    return number


def items(ds: Dataset, tag: str, sink: WarningSink, where: str | None = None) -> list[Dataset]:
    """The item datasets of a sequence (SQ) attribute; non-object items are reported."""
    out: list[Dataset] = []
    for item in raw_values(ds, tag, sink, where):
        if type(item) is dict:
            out.append(item)
        elif item is not None:
            sink.add(tag, item, BAD_ITEM, where)
    return out


def pn_groups(
    ds: Dataset, tag: str, sink: WarningSink, where: str | None = None
) -> list[dict[str, str]]:
    """Person name values as their component groups (F.2.2: Alphabetic, Ideographic, Phonetic).

    Plain strings (sent by some archives against F.2.2) are read as the Alphabetic group with a
    warning.  Groups failing the PN checks are dropped with a warning.
    """
    out: list[dict[str, str]] = []
    for value in raw_values(ds, tag, sink, where):
        if isinstance(value, str):
            sink.add(tag, value, PN_AS_STRING, where)
            value = {"Alphabetic": value}
        if type(value) is not dict:
            if value is not None:
                sink.add(tag, value, NOT_A_PERSON_NAME, where)
            continue
        groups: dict[str, str] = {}
        for group in ("Alphabetic", "Ideographic", "Phonetic"):
            raw = value.get(group)
            if raw is None:
                continue
            if not isinstance(raw, str):
                sink.add(tag, raw, _not_a_string("PN"), where)
                continue
            checked, problem = v.check_text(raw, "PN")
            if problem is not None:
                sink.add(tag, raw, problem, where)
            elif checked is not None and checked.strip("^= "):
                groups[group] = checked
        if groups:
            out.append(groups)
    return out

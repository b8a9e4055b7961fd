"""Unchecked reading of single values from DICOM JSON (PS3.18 F.2), for code that only
needs an identifier, a date or a count: the change sources, the archive client, the
gateway's patient compartment, the CLI.

The one such reader of the product.  It lives in ``mapping/`` because the mapping, which
may import nothing of ours but :mod:`bridge.errors`, uses it too (grouping files by study);
everyone else imports it from here.  Unlike :mod:`bridge.mapping.dicom_json` it reports
nothing: a malformed element simply reads as absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Dataset = Mapping[str, Any]


def values(ds: Dataset, tag: str) -> list[Any]:
    """The ``Value`` array of ``tag`` (F.2.2); empty when absent, zero-length or malformed."""
    element = ds.get(tag)
    if not isinstance(element, dict):
        return []
    found = element.get("Value")
    return found if isinstance(found, list) else []


def first_str(ds: Dataset, tag: str) -> str | None:
    """The first value of ``tag`` as text: a string as it is, a JSON number (IS/DS,
    F.2.3.1) as its decimal text; ``None`` when absent, empty, null or an object (a person
    name or a sequence item is not text)."""
    found = values(ds, tag)
    if not found:
        return None
    value = found[0]
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def first_int(ds: Dataset, tag: str) -> int | None:
    """The first value of ``tag`` as an integer (IS/US/UL, a JSON number or numeric text);
    ``None`` when absent or not an integer."""
    found = values(ds, tag)
    if not found or isinstance(found[0], bool):
        return None
    try:
        return int(found[0])
    except (TypeError, ValueError):
        return None

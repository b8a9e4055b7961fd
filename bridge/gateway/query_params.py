"""QIDO-RS query parameters, checked before the archive sees them (PS3.18 8.3.4).

A malformed parameter is the client's mistake, answered 400 naming the parameter, for every
kind of token (the check is syntactic: it says nothing about what the archive holds, so it
is no existence oracle).  Left to the archive, ``limit=abc`` is a 400 with the archive's
internals in the body, ``limit=-5`` an Orthanc 500, and either looked like an outage.

* ``limit`` and ``offset`` (8.3.4.4 Response Pagination): unsigned decimal integers, at most
  once.  Values above :data:`MAX_COUNT` are sent as :data:`MAX_COUNT`: a ``limit`` above
  what the server supports yields at most the server's maximum anyway (8.3.4.4), and an
  offset that large skips every result of any real archive (Orthanc fails above 2^31);
* ``fuzzymatching`` (8.3.4.2), ``emptyvaluematching`` and ``multiplevaluematching``
  (8.3.4.1): ``true`` or ``false``, at most once;
* ``includefield`` (8.3.4.3): ``all`` or attribute IDs, comma-separated or repeated;
* an attribute match ``{attributeID}={value}`` (8.3.4.1): the attribute ID is a keyword or
  an eight-digit hex tag, or a ``.``-separated path of them; an unknown keyword would be
  ignored by the archive, and the answer would look filtered when it is not.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydicom.datadict import tag_for_keyword

from bridge.gateway.errors import InvalidQueryParameter

Params = list[tuple[str, str]]

#: query parameters that are not attribute matches (PS3.18 8.3.4, 8.3.3.2 ``charset``)
CONTROL = frozenset({"limit", "offset", "includefield", "fuzzymatching",
                     "emptyvaluematching", "multiplevaluematching", "charset"})
_COUNTS = ("limit", "offset")
_BOOLEANS = ("fuzzymatching", "emptyvaluematching", "multiplevaluematching")
#: the largest limit / offset sent to the archive (limit + offset stays below 2^31)
MAX_COUNT = 1_000_000_000
_DIGITS = re.compile(r"[0-9]{1,32}")
_HEX_TAG = re.compile(r"[0-9A-Fa-f]{8}")
_KEYWORD = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")


def is_attribute_id(key: str) -> bool:
    """True for a keyword, an eight-digit hex tag, or a ``.`` path of them (8.3.4.1)."""
    return all(_HEX_TAG.fullmatch(part) is not None
               # pydicom maps some non-keywords (even "") to a tag: check the form first
               or (_KEYWORD.fullmatch(part) is not None and tag_for_keyword(part) is not None)
               for part in key.split("."))


def checked_query(params: Sequence[tuple[str, str]]) -> Params:
    """The parameters with their control values checked and normalised (counts in plain
    decimal, capped at :data:`MAX_COUNT`); raise :class:`InvalidQueryParameter`."""
    seen: set[str] = set()
    out: Params = []
    for key, value in params:
        if key in _COUNTS or key in _BOOLEANS:
            if key in seen:
                raise InvalidQueryParameter(f"{key} is given more than once", parameter=key)
            seen.add(key)
        if key in _COUNTS:
            if not _DIGITS.fullmatch(value):
                raise InvalidQueryParameter(
                    f"{key} must be a non-negative integer (PS3.18 8.3.4.4), not {value[:40]!r}",
                    parameter=key)
            out.append((key, str(min(int(value), MAX_COUNT))))
        elif key in _BOOLEANS:
            if value not in ("true", "false"):
                raise InvalidQueryParameter(
                    f"{key} must be true or false (PS3.18 8.3.4), not {value[:40]!r}",
                    parameter=key)
            out.append((key, value))
        elif key == "includefield":
            fields = value.split(",")
            if not all(f == "all" or is_attribute_id(f) for f in fields):
                raise InvalidQueryParameter(
                    "includefield must be 'all' or attribute keywords or tags (PS3.18 "
                    f"8.3.4.3), not {value[:60]!r}", parameter=key)
            out.append((key, value))
        elif key in CONTROL or is_attribute_id(key):  # charset: 8.3.3.2, passed as given
            out.append((key, value))
        else:
            raise InvalidQueryParameter(
                f"query parameter {key[:60]!r} is neither a QIDO-RS parameter nor a DICOM "
                "attribute keyword or tag (PS3.18 8.3.4.1)", parameter=key)
    return out

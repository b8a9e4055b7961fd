"""JSON of the HTTP clients' hot path (WADO-RS metadata in, FHIR batches out) through
orjson, with the standard library's results.

:func:`loads` returns what ``json.loads`` (``httpx.Response.json``) returns: orjson reads
numbers, strings and keys alike (floats are correctly rounded by both), except integers
beyond 64 bits (orjson makes them floats) and what orjson refuses (NaN, a BOM, UTF-16,
lone surrogates, invalid UTF-8); a body with a number of 19 digits or more, and anything
orjson refuses, is read by the standard library instead (which then answers or raises as
before).

:func:`dumps` writes a request body as httpx's ``json=`` did (compact, UTF-8): the same
bytes for JSON trees of dicts, lists, strings, integers, booleans and ``None``; floats in
orjson's shortest form (the same numbers; NaN and the infinities, which no resource the
bridge writes holds and the standard library refused, orjson writes as ``null``); what
orjson refuses goes through the standard library.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

#: to find number tokens of 19 digits or more (may exceed orjson's 64-bit integers) in one
#: pass of C: digits become "0", the bytes that may precede a number ("[", ":", ",")
#: become ":", whitespace and "-" go, the rest becomes "x"; a match inside a string only
#: sends the body the slow way
_TOKENS = bytes(
    ord("0") if chr(i).isdigit() and i < 128 else ord(":") if chr(i) in "[:," else ord("x")
    for i in range(256)
)
_DROPPED = b" \t\n\r-"
_LONG_NUMBER = b":" + b"0" * 19


def _long_number(content: bytes) -> bool:
    return _LONG_NUMBER in b":" + content.translate(_TOKENS, _DROPPED)


def loads(content: bytes) -> Any:
    """``json.loads(content)``, through orjson where that gives the same value."""
    if not _long_number(content):
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError:
            pass
    return json.loads(content)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON of ``value``, as ``httpx`` writes a ``json=`` body."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:  # non-str key, int beyond 64 bits, ...
        return json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode("utf-8")

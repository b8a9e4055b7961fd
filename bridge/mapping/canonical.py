"""Canonical JSON of a resource: the bytes its content hash is computed over.

Sorted keys, no whitespace, UTF-8 without escaping, no NaN: the same resource always gives
the same bytes, so a changed hash means a changed resource.

The bytes are defined as those of the standard library's
``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)``
encoded as UTF-8: every stored hash was computed that way.  orjson writes the same bytes
ten times faster for what the mapping makes (strings, integers, booleans, dicts with string
keys, lists; ``tests/unit/mapping/test_canonical_json.py`` proves it on the golden corpus
and on every character below U+0800), so it is used for those; a float (orjson formats
``1e-05`` as ``0.00001`` and NaN as ``null``), an integer beyond 64 bits, a non-string key
or anything orjson refuses goes through the standard library as before.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable
from typing import Any, TypeVar, cast

import orjson

_T = TypeVar("_T")
_SORTED = orjson.OPT_SORT_KEYS
#: the types whose orjson bytes equal the standard library's (besides dict and list)
_SAME_BYTES = frozenset({str, int, bool, type(None)})


def _stdlib_json(resource: Any) -> bytes:
    return json.dumps(
        resource, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _plain(resource: Any) -> bool:
    """Whether ``resource`` holds only dicts, lists and :data:`_SAME_BYTES` values."""
    kind = type(resource)
    if kind is dict or kind is list:
        return _plain_items(resource.values() if kind is dict else resource)
    return kind in _SAME_BYTES


def _plain_items(items: Iterable[Any]) -> bool:
    same = _SAME_BYTES
    for value in items:
        kind = type(value)
        if kind is str or kind in same:
            continue
        if kind is dict:
            if _plain_items(value.values()):
                continue
        elif kind is list and _plain_items(value):
            continue
        return False
    return True


def canonical_json(resource: Any) -> bytes:
    """Sorted-key compact UTF-8 JSON of ``resource`` (byte-identical for equal input)."""
    try:
        # refuses cycles and depth beyond 255 too, so _plain's walk ends
        fast = orjson.dumps(resource, option=_SORTED)
    except orjson.JSONEncodeError:  # non-str key, int beyond 64 bits, lone surrogate...
        return _stdlib_json(resource)
    return fast if _plain(resource) else _stdlib_json(resource)


def content_hash(resource: Any) -> str:
    """SHA-256 hex digest of :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(resource)).hexdigest()


def json_copy(value: _T) -> _T:
    """A deep copy of a JSON tree (dicts, lists, scalars), as :func:`copy.deepcopy` makes
    it, several times faster; anything else in the tree is copied by ``copy.deepcopy``.

    Unlike ``deepcopy``, an object that appears twice in ``value`` is copied twice; JSON
    has no shared nodes, so the copy serialises to the same bytes."""
    return cast(_T, _copy(value))


def _copy(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return {k: _copy(v) for k, v in value.items()}
    if kind is list:
        return [_copy(v) for v in value]
    if kind in _SAME_BYTES or kind is float:
        return value
    return copy.deepcopy(value)

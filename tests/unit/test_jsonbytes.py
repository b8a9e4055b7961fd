"""The HTTP clients' JSON through orjson gives what the standard library gave."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from bridge.jsonbytes import dumps, loads

GOLDEN = Path(__file__).resolve().parent / "mapping" / "golden"


def httpx_json_bytes(value: Any) -> bytes:
    """What httpx 0.28's ``json=`` wrote."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.json")), ids=lambda p: p.name)
def test_golden_dicom_and_fhir_json_read_and_write_alike(path: Path) -> None:
    content = path.read_bytes()
    value = loads(content)
    assert value == json.loads(content)
    assert repr(value) == repr(json.loads(content))  # same types: ints stay ints
    if path.name.endswith(".out.json"):  # resources, as the bridge writes them
        assert dumps(value) == httpx_json_bytes(value)
    else:  # DICOM JSON has floats (DS, FD): orjson writes 1e-06 as 0.000001, same number
        assert json.loads(dumps(value)) == value


@pytest.mark.parametrize(
    "content",
    [
        b"18446744073709551616",             # beyond 64 bits: orjson would give a float
        b'{"UV": {"vr": "UV", "Value": [-9223372036854775809]}}',
        b'[1, 12345678901234567890123]',
        b'{"a": 1.5e-7, "b": -0.0, "c": 1e16, "d": 0.30000000000000004}',
        b'{"a": 1, "a": 2}',
        b'"\\ud800"',                        # lone surrogate: the standard library keeps it
        b"\xef\xbb\xbf[1]",                  # BOM
        '["\u00e9"]'.encode("utf-16"),       # UTF-16
        b"[NaN, Infinity]",
        b'{"uid": "2.25.123456789012345678901234567890"}',
    ],
)
def test_what_orjson_reads_differently_is_read_by_the_standard_library(content: bytes) -> None:
    expected = json.loads(content)
    got = loads(content)
    if isinstance(expected, list) and any(isinstance(v, float) and math.isnan(v)
                                          for v in expected):
        assert repr(got) == repr(expected)
    else:
        assert got == expected and repr(got) == repr(expected)


def test_invalid_json_is_refused_as_before() -> None:
    with pytest.raises(ValueError):
        loads(b'{"a": ')
    with pytest.raises(ValueError):
        loads(b"\xff\xfe\xfa")


@pytest.mark.parametrize(
    "value",
    [{"k": "".join(chr(i) for i in range(0x800)) + "\U0001f600"}, {2: "x", 1: "y"},
     [2**70], {"a": None, "b": [True, False]}],
)
def test_request_bodies_are_written_as_httpx_wrote_them(value: Any) -> None:
    assert dumps(value) == httpx_json_bytes(value)

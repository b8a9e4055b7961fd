"""canonical_json writes the standard library's bytes (the stored content hashes' input)
through orjson, and falls back to the standard library wherever orjson would differ."""

from __future__ import annotations

import copy
import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pytest
from mapping_helpers import GOLDEN

from bridge.mapping import canonical_json, content_hash
from bridge.mapping.canonical import json_copy

GOLDEN_OUT = sorted(Path(GOLDEN).glob("*.out.json"))


def stdlib_bytes(value: Any) -> bytes:
    """How every stored content hash was computed before orjson."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def every_resource(document: Any) -> list[Any]:
    """The golden file's resources, each on its own and whole."""
    found = [document]
    if isinstance(document, dict):
        for value in document.values():
            if isinstance(value, dict) and "resourceType" in value:
                found.append(value)
            elif isinstance(value, list):
                found.extend(v for v in value if isinstance(v, dict) and "resourceType" in v)
    return found


def test_golden_corpus_is_there() -> None:
    assert len(GOLDEN_OUT) >= 30


@pytest.mark.parametrize("path", GOLDEN_OUT, ids=lambda p: p.name)
def test_canonical_json_equals_the_standard_library_on_the_golden_corpus(path: Path) -> None:
    for resource in every_resource(json.loads(path.read_text(encoding="utf-8"))):
        assert canonical_json(resource) == stdlib_bytes(resource)
        assert content_hash(resource) == hashlib.sha256(stdlib_bytes(resource)).hexdigest()


#: the golden outputs that store the hash of their ImagingStudy (error cases store none)
HASHED = [p for p in GOLDEN_OUT if "contentHash" in json.loads(p.read_text(encoding="utf-8"))]


def test_most_golden_files_store_a_hash() -> None:
    assert len(HASHED) >= len(GOLDEN_OUT) - 2


@pytest.mark.parametrize("path", HASHED, ids=lambda p: p.name)
def test_content_hash_equals_the_hash_stored_in_the_golden_file(path: Path) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))
    assert content_hash(document["imagingStudy"]) == document["contentHash"]


def test_every_character_below_u0800_and_the_odd_ones_are_written_alike() -> None:
    text = "".join(chr(i) for i in range(0x800)) + "\u2028\u2029\ufeff\uffff\U0001f600"
    value = {"k": text, text: [text], "\x00": "\x7f", "é": 1, "e": 2, "z": True, "a": None}
    assert canonical_json(value) == stdlib_bytes(value)


@pytest.mark.parametrize(
    "value",
    [
        {"x": 1e-05},                 # orjson: 0.00001
        {"x": [1.0, 0.1, 1e16, -0.0]},
        {"x": 2**64},                 # beyond orjson's integers
        {2: "int key", 1: "x"},       # non-string keys: the standard library converts them
        {"x": ("a", 1)},              # a tuple is an array to both
        {"x": type("S", (str,), {})("sub")},
        [],
        "scalar",
        7,
        None,
    ],
)
def test_values_orjson_would_write_differently_go_through_the_standard_library(
    value: Any,
) -> None:
    assert canonical_json(value) == stdlib_bytes(value)


def test_nan_is_refused_as_before() -> None:
    with pytest.raises(ValueError):
        canonical_json({"x": [math.nan]})


def test_lone_surrogate_is_refused_as_before() -> None:
    with pytest.raises(UnicodeEncodeError):
        canonical_json({"x": "\ud800"})


def test_a_cycle_is_refused_as_before() -> None:
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    with pytest.raises(ValueError):
        canonical_json(cyclic)


@pytest.mark.parametrize("path", GOLDEN_OUT[:10], ids=lambda p: p.name)
def test_json_copy_is_a_deep_copy(path: Path) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))
    copied = json_copy(document)
    assert copied == copy.deepcopy(document)
    assert canonical_json(copied) == canonical_json(document)
    for resource in every_resource(copied):
        resource["changed"] = True
    assert document == json.loads(path.read_text(encoding="utf-8"))

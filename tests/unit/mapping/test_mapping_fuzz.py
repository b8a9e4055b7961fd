"""Garbage never crashes the mapping: property-style tests over random DICOM JSON.

Each run starts from valid studies and puts random garbage (wrong JSON types, nested
structures, control characters, lone surrogates, huge strings, wrong VRs, missing Value) into
random elements; the mapping must either raise DicomDataError (only for the UIDs it cannot
do without, and for a PatientID it cannot trust) or return resources that validate with
fhir.resources and fhirclient.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest
from golden_cases import HANDMADE
from mapping_helpers import ENDPOINT, assert_valid, site_engine

from bridge.errors import DicomDataError
from bridge.mapping import MappingEngine

ENGINE = site_engine()
SEEDS = range(int(__import__("os").environ.get("FUZZ_SEEDS", "40")))
REQUIRED = {"0020000D", "0020000E"}
TAGS = [
    "00080016", "00080018", "00080020", "00080021", "00080030", "00080031", "00080050",
    "00080051", "00080060", "00080061", "00080090", "00080201", "00081030", "00081032",
    "0008103E", "00081040", "00081050", "00081060", "00081070", "00100010", "00100020",
    "00100021", "00100024", "00100030", "00100040", "00180015", "00200010", "00200011",
    "00200013", "00200060", "00200062", "00201206", "00201208", "00201209", "00400275",
    "00401002", "00401012", "00402016", "00402017", "0040A043", "00420010",
]  # fmt: skip


def garbage(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON-ish value, biased towards the shapes that break naive code."""
    choices: list[Any] = [
        None,
        rng.randint(-(2**40), 2**40),
        rng.random() * 1e9,
        float("inf") if rng.random() < 0.1 else -0.0,
        True,
        "",
        " ",
        "x" * rng.choice([1, 16, 17, 64, 65, 1025, 20000]),
        "".join(chr(rng.randint(0, 0x2FF)) for _ in range(rng.randint(1, 20))),
        "\ud800\udfff\ufffd\x00\x1b",
        "1.2.3",
        "00.1.02",
        "20240230",
        "2401",
        "12:3",
        "+2400",
        "^^^^",
        "=" * 3,
        "L",
        "CT",
        "-5",
        "9" * 30,
    ]
    if depth < 2:
        choices += [
            [garbage(rng, depth + 1) for _ in range(rng.randint(0, 3))],
            {"vr": "SQ", "Value": [garbage(rng, depth + 1)]},
            {"Alphabetic": garbage(rng, depth + 1)},
            {k: garbage(rng, depth + 1) for k in rng.sample(TAGS, 2)},
        ]
    return rng.choice(choices)


def corrupt(instances: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    out = copy.deepcopy(instances)
    for instance in out:
        for tag in rng.sample(TAGS, rng.randint(1, 8)):
            shape = rng.random()
            if shape < 0.15:
                instance[tag] = garbage(rng)  # the element itself is garbage
            elif shape < 0.25:
                instance[tag] = {"vr": "XX"}  # no Value
            elif shape < 0.35:
                instance[tag] = {"vr": "UN", "Value": garbage(rng)}  # Value not a list
            else:
                instance[tag] = {
                    "vr": "LO",
                    "Value": [garbage(rng) for _ in range(rng.randint(1, 3))],
                }
        if rng.random() < 0.05:
            instance[rng.choice(sorted(REQUIRED))] = garbage(rng)
    if rng.random() < 0.1:
        out.append(garbage(rng))  # not even a dataset
    return out


def check(engine: MappingEngine, instances: list[Any], **options: Any) -> None:
    try:
        result = engine.map_study(instances, endpoint=ENDPOINT, **options)
    except DicomDataError as exc:
        assert exc.tag in {"(0020,000D) StudyInstanceUID", "(0020,000E) SeriesInstanceUID",
                           "(0010,0020) PatientID"}
        return
    assert_valid(result)
    engine.canonical_json(result.imaging_study)
    json.dumps(result.to_json(), ensure_ascii=False).encode("utf-8")
    for warning in result.warnings:
        str(warning).encode("utf-8")


@pytest.mark.parametrize("seed", SEEDS)
def test_random_garbage_never_crashes(seed: int) -> None:
    rng = random.Random(seed)
    for case in HANDMADE:
        check(ENGINE, corrupt(case.build(), rng), **case.options)


@pytest.mark.parametrize("seed", range(10))
def test_random_garbage_in_series_and_study_records_never_crashes(seed: int) -> None:
    rng = random.Random(1000 + seed)
    case = next(c for c in HANDMADE if c.name == "qido_counts_only")
    options = copy.deepcopy(case.options)
    options["series"] = corrupt(options["series"], rng)
    options["study"] = corrupt([options["study"]], rng)[0]
    if not isinstance(options["study"], dict):
        options["study"] = None
    check(ENGINE, corrupt(case.build(), rng), **options)

"""Same input -> byte-identical canonical JSON, whatever the order of instances and keys."""

from __future__ import annotations

import copy
import hashlib
import random

import pytest
from golden_cases import HANDMADE
from mapping_helpers import ENDPOINT, site_engine

from bridge.mapping import MappingEngine

ENGINE = site_engine()


def _shuffled(instances: list[dict[str, object]], rng: random.Random) -> list[dict[str, object]]:
    out = []
    for instance in copy.deepcopy(instances):
        items = list(instance.items())
        rng.shuffle(items)
        out.append(dict(items))
    rng.shuffle(out)
    return out


@pytest.mark.parametrize("case", HANDMADE, ids=lambda c: c.name)
def test_mapping_twice_gives_identical_bytes(case) -> None:  # type: ignore[no-untyped-def]
    first = ENGINE.map_study(case.build(), endpoint=ENDPOINT, **case.options)
    second = ENGINE.map_study(case.build(), endpoint=ENDPOINT, **case.options)
    assert ENGINE.canonical_json(first.imaging_study) == ENGINE.canonical_json(second.imaging_study)
    assert first.content_hash == second.content_hash
    assert first.warnings == second.warnings


@pytest.mark.parametrize("case", HANDMADE, ids=lambda c: c.name)
def test_shuffled_instances_and_keys_give_identical_bytes(case) -> None:  # type: ignore[no-untyped-def]
    reference = ENGINE.map_study(case.build(), endpoint=ENDPOINT, **case.options)
    rng = random.Random(case.name)
    for _ in range(5):
        shuffled = ENGINE.map_study(_shuffled(case.build(), rng), endpoint=ENDPOINT, **case.options)
        assert shuffled.content_hash == reference.content_hash
        assert shuffled.imaging_study == reference.imaging_study
        assert shuffled.warnings == reference.warnings
        assert shuffled.service_requests == reference.service_requests


def test_content_hash_is_sha256_of_sorted_compact_utf8_json() -> None:
    result = ENGINE.map_study(HANDMADE[0].build(), endpoint=ENDPOINT)
    data = MappingEngine.canonical_json(result.imaging_study)
    assert result.content_hash == hashlib.sha256(data).hexdigest()
    assert b": " not in data and b", " not in data
    assert data.decode("utf-8").startswith('{"basedOn":')


def test_generated_samples_are_deterministic_under_shuffling() -> None:
    from samples import generator
    rng = random.Random(5)
    for sample in generator.generate_studies(6, seed=5, profile="mixed"):
        instances = sample.to_dicom_json()
        reference = ENGINE.map_study(instances, endpoint=ENDPOINT)
        again = ENGINE.map_study(_shuffled(instances, rng), endpoint=ENDPOINT)
        assert again.content_hash == reference.content_hash

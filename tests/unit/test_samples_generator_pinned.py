"""The generator's output is pinned: the same arguments give the same bytes, release after release.

The digests below were computed on the single-module ``samples/generator.py`` before it was
split into catalogue data (``samples/catalogue/*.json``), planning, truth records and the
Part 10 writer (issue 18).  Every Part 10 file and every ground-truth record of a few draws
goes into them, so a catalogue entry copied wrongly into JSON, a reordered random draw or a
changed encoding makes one of them differ.  Together the draws use every catalogue entry
(every name, procedure, reason, series description, odd body-part value, physician ...).

If a change of the generator's output is intended, recompute the digests with
``python tests/unit/test_samples_generator_pinned.py`` and say why in the commit.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

if __name__ == "__main__":  # run as a script from anywhere: make ``samples`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from samples.generator import generate_studies, manifest_dict

#: draws whose Part 10 bytes and truth records are both pinned
PART10_DRAWS: tuple[dict[str, Any], ...] = (
    {"count": 300, "seed": 7},
    {"count": 6, "seed": 3, "profile": "typical", "id_prefix": "TYP1"},
    {
        "count": 40, "seed": 11, "profile": "small", "patients": 5,
        "uid_root": "1.2.826.0.1.3680043.8.498", "every_patient": True,
    },
    {"count": 30, "seed": 123456789, "id_prefix": "Zq9", "patients": 3},
)
#: a large draw whose truth records only are pinned (reaches the rarely drawn catalogue entries)
TRUTH_DRAW: dict[str, Any] = {"count": 6000, "seed": 7, "patients": 3000}

PINNED: dict[str, str] = {
    "count=300,seed=7":
        "fb99902c13233d23f64bc7ace022b2e5d4a4ffda3372dd5e445d8d172d3c1465",
    "count=6,seed=3,profile=typical,id_prefix=TYP1":
        "d09cfe35565fb20955b052693a5f9f25ab2c51ad011ae07a23c589e3780f95b9",
    "count=40,seed=11,profile=small,patients=5,"
    "uid_root=1.2.826.0.1.3680043.8.498,every_patient=True":
        "2782b0d4f9980c4b6e63ff0d30197a4fda4491202cae58bbf2e6fc2c03102270",
    "count=30,seed=123456789,id_prefix=Zq9,patients=3":
        "663af68a884f6add893d09b6371abbc5d7756b5edf59b8106541ee291a83c093",
    "count=6000,seed=7,patients=3000":
        "c34c490012e97dbdf858cd2d177689a531372eebee4a510faeaf97e4f4b7050a",
}


def _name(kwargs: dict[str, Any]) -> str:
    return ",".join(f"{key}={value}" for key, value in kwargs.items())


def _digest(kwargs: dict[str, Any], *, part10: bool) -> str:
    digest = hashlib.sha256()
    studies = list(generate_studies(**kwargs))
    if part10:
        for study in studies:
            for data in study.part10():
                digest.update(hashlib.sha256(data).digest())
    manifest = manifest_dict(studies, parameters=kwargs)
    digest.update(json.dumps(manifest, ensure_ascii=False, sort_keys=True).encode())
    return digest.hexdigest()


@pytest.mark.parametrize("kwargs", PART10_DRAWS, ids=_name)
def test_part10_bytes_and_truth_are_pinned(kwargs: dict[str, Any]) -> None:
    assert _digest(kwargs, part10=True) == PINNED[_name(kwargs)]


def test_truth_of_a_large_draw_is_pinned() -> None:
    assert _digest(TRUTH_DRAW, part10=False) == PINNED[_name(TRUTH_DRAW)]


if __name__ == "__main__":
    for draw in PART10_DRAWS:
        print(f"{_name(draw)!r}: {_digest(draw, part10=True)!r},")
    print(f"{_name(TRUTH_DRAW)!r}: {_digest(TRUTH_DRAW, part10=False)!r},")

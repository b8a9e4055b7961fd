"""The standard tables: metadata recorded, and every code cross-checked against the copy of
the DICOM standard that pydicom ships (an independent source)."""

from __future__ import annotations

import json

import pytest
from mapping_helpers import REPO_ROOT
from pydicom.sr._concepts_dict import concepts
from pydicom.sr.codedict import codes
from pydicom.uid import UID_dictionary

from bridge.mapping import load_tables

TABLES_DIR = REPO_ROOT / "mappings" / "tables"
TABLES = load_tables(TABLES_DIR)


@pytest.mark.parametrize(
    "name", ["body_parts", "modalities", "laterality", "sop_classes", "coding_schemes"]
)
def test_every_table_records_its_source_and_edition(name: str) -> None:
    data = json.loads((TABLES_DIR / f"{name}.json").read_text(encoding="utf-8"))
    assert "PS3." in data["source"]
    assert data["version"] == "2024x"
    assert data["entries"]


def test_tables_are_cached() -> None:
    assert load_tables(TABLES_DIR) is TABLES


def test_body_part_codes_and_meanings_match_the_standard() -> None:
    meanings: dict[str, set[str]] = {}
    for entries in concepts["SCT"].values():
        for code_value, (meaning, _cids) in entries.items():
            meanings.setdefault(code_value, set()).add(meaning.lower())
    assert len(TABLES.body_parts) >= 100
    for term, entry in TABLES.body_parts.items():
        assert len(term) <= 16 and term == term.upper(), term  # a CS value (PS3.5 6.2)
        assert entry.display.lower() in meanings.get(entry.code, set()), (term, entry)


def test_cid_4031_is_mostly_covered() -> None:
    # 94 of CID 4031's concepts have a Body Part Examined term here; the rest (e.g. "Apex of
    # Lung", "Bone of lower limb") are left to site maps until their Annex L terms are checked
    cid4031 = {getattr(codes.cid4031, k).value for k in codes.cid4031.dir()}
    ours = {entry.code for entry in TABLES.body_parts.values()}
    assert len(cid4031 & ours) >= 90


def test_modalities_match_cid_29_and_33() -> None:
    cid29 = {
        getattr(codes.cid29, k).value: getattr(codes.cid29, k).meaning for k in codes.cid29.dir()
    }
    cid33 = {
        getattr(codes.cid33, k).value: getattr(codes.cid33, k).meaning for k in codes.cid33.dir()
    }
    for code_value, meaning in {**cid33, **cid29}.items():
        term = TABLES.modalities[code_value]
        assert term.display == meaning
        assert term.acquisition == (code_value in cid29)


def test_sop_class_names_match_the_uid_registry() -> None:
    assert len(TABLES.sop_classes) >= 60
    for uid, name in TABLES.sop_classes.items():
        assert UID_dictionary[uid][0] == name
        assert UID_dictionary[uid][1] == "SOP Class"


def test_laterality_codes() -> None:
    assert {k: (v.code, v.display) for k, v in TABLES.laterality.items()} == {
        "L": ("7771000", "Left"),
        "R": ("24028007", "Right"),
        "B": ("51440002", "Right and left"),
    }

"""One reader of single DICOM JSON values and one StudyInstanceUID constant (issue 18):
the change sources, the archive client, the gateway, the STOW response and the CLI read
identifiers the same way."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from bridge.mapping.peek import first_int, first_str, values

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(("element", "text"), [
    ({"vr": "UI", "Value": ["1.2.3"]}, "1.2.3"),
    ({"vr": "IS", "Value": [12]}, "12"),          # IS/DS as JSON numbers (PS3.18 F.2.3.1)
    ({"vr": "UI"}, None),                          # zero-length (F.2.5)
    ({"vr": "UI", "Value": []}, None),
    ({"vr": "UI", "Value": [None]}, None),
    ({"vr": "PN", "Value": [{"Alphabetic": "A^B"}]}, None),  # a person name is no text
    ({"vr": "IS", "Value": [True]}, None),
    ("1.2.3", None),                               # not an element
    ({"vr": "UI", "Value": "1.2.3"}, None),        # Value not an array
])
def test_first_str_reads_text_or_nothing(element: Any, text: str | None) -> None:
    assert first_str({"0020000D": element}, "0020000D") == text


def test_first_int_and_values() -> None:
    ds = {"00201206": {"vr": "IS", "Value": ["3"]}, "00080061": {"vr": "CS", "Value": ["CT"]},
          "00201208": {"vr": "IS", "Value": ["x"]}}
    assert first_int(ds, "00201206") == 3
    assert first_int(ds, "00201208") is None
    assert values(ds, "00080061") == ["CT"]
    assert values(ds, "00100010") == []


def _literals(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
            and isinstance(n.value, str)}


def test_the_study_uid_tag_is_spelled_in_one_place() -> None:
    spelled = sorted(name for room in ("bridge", "smart_app")
                     for p in (ROOT / room).rglob("*.py")
                     if "0020000D" in _literals(p)
                     for name in [str(p.relative_to(ROOT))])
    assert spelled == ["bridge/mapping/tags.py"]

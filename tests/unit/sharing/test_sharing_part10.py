"""The manifest's Part 10 writer: what pydicom reads back equals what was written; data
it does not write is refused naming the tag."""

from __future__ import annotations

import io

import pydicom
import pytest

from bridge.sharing.errors import ManifestDataError
from bridge.sharing.part10 import part10

BASE = {
    "00080016": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.88.59"]},
    "00080018": {"vr": "UI", "Value": ["1.2.3.4.5"]},
}


def round_trip(ds: dict[str, object]) -> dict[str, object]:
    return pydicom.dcmread(io.BytesIO(part10(ds))).to_json_dict()


def test_every_vr_a_manifest_uses_reads_back_the_same() -> None:
    ds = {
        **BASE,
        "00080005": {"vr": "CS", "Value": ["ISO_IR 192"]},
        "00080020": {"vr": "DA", "Value": ["20240101"]},
        "00080030": {"vr": "TM", "Value": ["101010.5"]},
        "00080050": {"vr": "SH"},
        "00080090": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jo", "Ideographic": "山田^太郎"}]},
        "00081190": {"vr": "UR", "Value": ["https://a.example.org/dicom-web/studies/1.2"]},
        "00100020": {"vr": "LO", "Value": ["odd"]},
        "00101010": {"vr": "AS", "Value": ["042Y"]},
        "00200011": {"vr": "IS", "Value": [9999]},
        "00280010": {"vr": "US", "Value": [512]},
        "00400031": {"vr": "UT", "Value": ["RIS A"]},
        "0040A730": {"vr": "SQ", "Value": [
            {"0040A010": {"vr": "CS", "Value": ["CONTAINS"]},
             "00081199": {"vr": "SQ", "Value": [{"00081155": {"vr": "UI", "Value": ["1.2"]}}]}},
            {"0040A010": {"vr": "CS", "Value": ["CONTAINS"]}},
        ]},
        "00081111": {"vr": "SQ", "Value": []},
        "00081030": {"vr": "LO", "Value": ["a", "b"]},
    }
    assert round_trip(ds) == ds


@pytest.mark.parametrize(("element", "label"), [
    ({"vr": "OB", "BulkDataURI": "http://x/1"}, "(7FE0,0010)"),
    ({"vr": "OW", "Value": [1]}, "(7FE0,0010)"),
])
def test_data_a_manifest_never_holds_is_refused(element: dict[str, object], label: str) -> None:
    with pytest.raises(ManifestDataError) as caught:
        part10({**BASE, "7FE00010": element})
    assert caught.value.tag == label


def test_a_value_too_long_for_a_short_vr_is_refused() -> None:
    with pytest.raises(ManifestDataError, match=r"\(0008,1030\) is longer"):
        part10({**BASE, "00081030": {"vr": "LO", "Value": ["x" * 70000]}})


def test_person_name_groups_are_joined_by_equals_signs() -> None:
    name = {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jo", "Phonetic": "do^jo"}]}
    assert b"Doe^Jo==do^jo " in part10({**BASE, "00100010": name})
